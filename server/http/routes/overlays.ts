import { z } from 'zod';
import { OVERLAY_NAME } from '../../tiles/overlays.service.js';
import { overlayList } from '../../tiles/views.js';
import { atLeast } from '../access.js';
import { sendCached } from '../cached-answer.js';
import { cacheControl } from '../middleware/cache-control.js';
import { idParam } from '../params.js';
import { route } from '../route.js';
import { SEGMENT, tileIndex } from '../schemas/tiles.js';
import { annotationViewable } from '../viewable.js';

/**
 * Heat-map overlays of a slide (overlays.service.ts): the list, each
 * overlay's Deep Zoom descriptor and its PNG tiles. Access as the slide's own
 * tiles: L1, then the slide access policy. Names are [a-z0-9-]{1,64} and
 * numbers plain decimal, so that no path can leave an overlay's folder;
 * anything else is a 404. Matched before the slide's own tiles, whose
 * `/tiles/{slide}/{image}` would take the list's path.
 */

/** Access-controlled, so `private`; an overlay can be republished, so kept for five minutes and then revalidated by ETag. */
const fiveMinutes = cacheControl('private, max-age=300');

const overlayName = z
  .string()
  .regex(OVERLAY_NAME, 'An overlay name is 1 to 64 lower-case letters, digits and hyphens')
  .meta({ 'x-not-found': 'overlay_not_found' });

const tag = 'Tiles';
const viewer = atLeast('L1');

export const overlayRoutes = [
  route({
    method: 'get',
    path: '/tiles/{slide}/overlays',
    tag,
    summary: "A slide's heat-map overlays",
    description:
      'What heatmap jobs published for the slide, and what an operator wrote into `<paths.cache>/overlays/<slide id>/<name>/` with `slidebank toolbox heatmap`; an overlay is listed once its .dzi is written, which is last. Cache-Control: private, no-cache.',
    access: viewer,
    params: z.strictObject({ slide: idParam('slide') }),
    before: [cacheControl('private, no-cache')],
    response: { description: 'The overlays, by name', schema: overlayList },
    handle: async ({ params }, ctx) => ctx.services.overlays.list(await annotationViewable(ctx, params.slide)),
  }),
  route({
    method: 'get',
    path: '/tiles/{slide}/overlays/{overlay}.dzi',
    pattern: new RegExp(`^/tiles/(?<slide>${SEGMENT})/overlays/(?<overlay>${SEGMENT})\\.dzi$`),
    tag,
    summary: "An overlay's Deep Zoom descriptor: the slide's own grid, in PNG",
    description: 'Cache-Control: private, max-age=300, then revalidated by ETag: an overlay can be published again under its name.',
    access: viewer,
    params: z.strictObject({ slide: idParam('slide'), overlay: overlayName }),
    before: [fiveMinutes],
    response: { description: 'The Deep Zoom XML, with an ETag', contentType: 'application/xml' },
    handle: async ({ params }, ctx) => sendCached(ctx, await ctx.services.overlays.descriptor(await annotationViewable(ctx, params.slide), params.overlay)),
  }),
  route({
    method: 'get',
    path: '/tiles/{slide}/overlays/{overlay}_files/{level}/{col}_{row}.png',
    pattern: new RegExp(`^/tiles/(?<slide>${SEGMENT})/overlays/(?<overlay>${SEGMENT})_files/(?<level>${SEGMENT})/(?<col>[^/_]+)_(?<row>[^/.]+)\\.png$`),
    tag,
    summary: 'One tile of an overlay',
    description: 'RGBA PNG; fully transparent tiles are written too, so a viewer never meets a 404 inside the grid. Cached as the descriptor is.',
    access: viewer,
    params: z.strictObject({ slide: idParam('slide'), overlay: overlayName, level: tileIndex, col: tileIndex, row: tileIndex }),
    before: [fiveMinutes],
    response: { description: 'The tile as PNG with transparency, with an ETag', contentType: 'image/png' },
    handle: async ({ params: { slide, overlay, level, col, row } }, ctx) =>
      sendCached(ctx, await ctx.services.overlays.tile(await annotationViewable(ctx, slide), overlay, level, col, row)),
  }),
];
