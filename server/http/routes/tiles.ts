import type { Context } from 'koa';
import { z } from 'zod';
import { parseIiifImagePath } from '../../tiles/iiif.js';
import type { TileResponse } from '../../tiles/tiles.service.js';
import type { AdmittedBy } from '../../tiles/tiles.service.js';
import { iiifInfo, tileCapabilityView, type TileCapabilityView } from '../../tiles/views.js';
import { CAPABILITY_PARAMETER } from '../../access/tile-capability.js';
import { AppError } from '../../errors.js';
import type { AssociatedName, TileFormat } from '../../wsi/index.js';
import { atLeast } from '../access.js';
import { notModified, sendCached } from '../cached-answer.js';
import { cacheControl, noStore } from '../middleware/cache-control.js';
import { capabilityOf, issuingBinding } from '../middleware/tile-capability.js';
import { idParam } from '../params.js';
import { route } from '../route.js';
import { SEGMENT, tileIndex } from '../schemas/tiles.js';
import { requesterOf } from '../requester.js';
import { viewable } from '../viewable.js';

/**
 * The viewer's pixels: Deep Zoom descriptors and tiles and the associated
 * images under /tiles/, the IIIF Image API 3.0 (level 1) under /iiif/.
 * Access: L1 or staff, declared on each route; the slide access policy then
 * decides per slide and per associated image (label and macro: staff only).
 * A path that names no slide, level, tile or image is a 404 that says which.
 */

/** Access-controlled, so `private`; a published slide never changes, so cacheable for a year. */
const immutable = cacheControl('private, max-age=31536000, immutable');

const FORMATS: Record<string, TileFormat> = { jpeg: 'jpeg', jpg: 'jpeg', png: 'png', webp: 'webp' };
const tileFormat = z
  .string()
  .refine((text) => text.toLowerCase() in FORMATS, { error: (issue) => `Tiles come as jpeg, png or webp, not "${String(issue.input)}"` })
  .transform((text) => FORMATS[text.toLowerCase()]!)
  .meta({ 'x-not-found': 'tile_not_found', override: { type: 'string', enum: Object.keys(FORMATS) } });

const ASSOCIATED = ['thumbnail', 'label', 'macro'] as const satisfies readonly AssociatedName[];

const slideOnly = z.strictObject({ slide: idParam('slide') });
const tileAddress = z.strictObject({ slide: idParam('slide'), level: tileIndex, col: tileIndex, row: tileIndex, format: tileFormat });
const associatedImage = z.strictObject({
  slide: idParam('slide'),
  image: z.enum(ASSOCIATED, { error: (issue) => `A slide has no "${String(issue.input)}" image; there are ${ASSOCIATED.join(', ')}` }).meta({ 'x-not-found': 'image_not_found' }),
});
/** The parts of an IIIF image path, as text: their syntax is IIIF's, whose errors are a 400 (iiif.ts). */
const iiifImagePath = z.strictObject({
  slide: idParam('slide'),
  region: z.string().meta({ description: 'full, square or x,y,w,h in level-0 pixels' }),
  size: z.string().meta({ description: 'max, w, ,h or w,h; prefixed with ^ to upscale' }),
  rotation: z.string().meta({ description: '0' }),
  quality: z.string().meta({ description: 'default (or color)' }),
  format: z.string().meta({ description: 'jpg, png or webp' }),
});

/** Fires when the client closes the connection before the answer is sent, so that the render it asked for can stop. */
function clientGone(ctx: Context): AbortSignal {
  const controller = new AbortController();
  ctx.res.once('close', () => {
    if (!ctx.res.writableFinished) controller.abort();
  });
  return controller.signal;
}

/** How this request was admitted, which decides how old a cached catalog row its slide may be answered from. */
function admittedBy(ctx: Context): AdmittedBy {
  return capabilityOf(ctx) ? 'capability' : 'session';
}

/** A tile capability for the requester (session or token) and one slide they may view, bound to that session or token. */
async function issueCapability(ctx: Context, slideId: number): Promise<TileCapabilityView> {
  await viewable(ctx, slideId);
  await ctx.services.tiles.assertPublished(slideId);
  const requester = requesterOf(ctx);
  const binding = requester.user && (requester.via === 'session' || requester.via === 'token') ? issuingBinding(ctx, requester.via) : undefined;
  if (!requester.user || !binding) throw new AppError(401, 'unauthenticated', 'A tile capability is issued to a logged-in session or a personal access token');
  const { tileCapabilities } = ctx.services.access;
  const issued = tileCapabilities.issue(requester.user.id, slideId, binding);
  return {
    slide: slideId,
    capability: issued.capability,
    parameter: CAPABILITY_PARAMETER,
    expiresAt: new Date(issued.expiresAt * 1000).toISOString(),
    lifetimeSeconds: tileCapabilities.lifetimeSeconds,
  };
}

function sendTile(ctx: Context, { body, contentType, etag, made }: TileResponse): void {
  sendCached(ctx, { body, contentType, etag, headers: made ? { 'X-Tile-Source': made } : {} });
}

const tag = 'Tiles';
const viewer = atLeast('L1');

export const tileRoutes = [
  route({
    method: 'get',
    path: '/api/slides/{id}/tile-capability',
    tag,
    summary: "A tile capability for one slide: tile URLs that carry it are checked without reading the database",
    description:
      'For the viewer: add `?cap=<capability>` to the slide’s Deep Zoom descriptor and tile URLs, its thumbnail and IIIF images, and send them with the same session cookie (or bearer token) that asked for it; ask for a new one before `expiresAt`. It names the user and the slide, is signed with the session secret, and lives tiles.capabilityMinutes (at most 60): a withdrawn slide, a disabled account or a lowered level stops it within that time. A tile URL with an expired capability is a 401 capability_expired; a malformed or altered one, or one issued to another session or token, a 403 capability_invalid; one for another slide a 403 capability_wrong_slide. Tile URLs without `cap` are checked through the session as before. Cache-Control: no-store.',
    access: viewer,
    params: z.strictObject({ id: idParam('slide') }),
    before: [noStore],
    response: { description: 'The capability and when it expires', schema: tileCapabilityView },
    handle: ({ params }, ctx) => issueCapability(ctx, params.id),
  }),
  route({
    method: 'get',
    path: '/tiles/{slide}.dzi',
    pattern: new RegExp(`^/tiles/(?<slide>${SEGMENT})\\.dzi$`),
    tag,
    summary: "A slide's Deep Zoom descriptor: its size and the grid its tiles come in",
    description: 'Cache-Control: private, max-age=31536000, immutable (a published slide never changes).',
    access: viewer,
    params: slideOnly,
    before: [immutable],
    response: { description: 'The Deep Zoom XML, with a strong ETag', contentType: 'application/xml' },
    handle: async ({ params }, ctx) => sendTile(ctx, await ctx.services.tiles.descriptor(await viewable(ctx, params.slide), admittedBy(ctx))),
  }),
  route({
    method: 'get',
    path: '/tiles/{slide}_files/{level}/{col}_{row}.{format}',
    pattern: new RegExp(`^/tiles/(?<slide>${SEGMENT})_files/(?<level>${SEGMENT})/(?<col>[^/_]+)_(?<row>[^/.]+)\\.(?<format>[^/.]+)$`),
    tag,
    summary: 'One Deep Zoom tile; a matching If-None-Match is a 304 without rendering',
    description:
      'X-Tile-Source says how the tile was made: stored (passed through), scaled (stored tiles decoded at reduced size) or rendered. A tile off the grid is a 404 tile_not_found; one that would decode more than tiles.maxRenderSourcePixels of a stored level (the low levels of a slide stored without a pyramid) is a 400 render_too_large. Cache-Control: private, max-age=31536000, immutable (a published slide never changes).',
    access: viewer,
    params: tileAddress,
    before: [immutable],
    response: { description: 'The tile in the format asked for (jpeg or jpg, png, webp), with a strong ETag', contentType: 'image/*' },
    handle: async ({ params: { slide, level, col, row, format } }, ctx) => {
      const tile = await ctx.services.tiles.tile(await viewable(ctx, slide), level, col, row, format, admittedBy(ctx));
      if (notModified(ctx, tile.etag)) return;
      sendTile(ctx, await tile.response());
    },
  }),
  route({
    method: 'get',
    path: '/tiles/{slide}/{image}',
    pattern: new RegExp(`^/tiles/(?<slide>${SEGMENT})/(?<image>${SEGMENT})$`),
    tag,
    summary: "A slide's thumbnail, label or macro image (label and macro for staff only: they may identify a patient)",
    description:
      'Anyone but staff asking for the label or macro gets a 403 staff_only. Ingest removes both from published slides, so for those they are a 404 image_not_found. A slide without a stored thumbnail gets one rendered from its pixels. Cache-Control: private, max-age=31536000, immutable (a published slide never changes).',
    access: viewer,
    params: associatedImage,
    before: [immutable],
    response: { description: 'The image as JPEG, at most 1024 pixels on its longer side', contentType: 'image/jpeg' },
    handle: async ({ params: { slide, image } }, ctx) => {
      await ctx.services.slideAccess.assertCanViewAssociated(ctx, await viewable(ctx, slide), image);
      sendTile(ctx, await ctx.services.tiles.associated(slide, image, admittedBy(ctx)));
    },
  }),
  route({
    method: 'get',
    path: '/iiif/{slide}',
    tag,
    summary: "The IIIF image service's base address: redirects to its info.json",
    access: viewer,
    params: slideOnly,
    response: { status: 303, description: 'See /iiif/{slide}/info.json' },
    handle: ({ params }, ctx) => {
      ctx.status = 303;
      ctx.redirect(`/iiif/${params.slide}/info.json`);
    },
  }),
  route({
    method: 'get',
    path: '/iiif/{slide}/info.json',
    tag,
    summary: 'The IIIF image information of a slide: offers only the tiles and sizes this server renders',
    description:
      '`sizes` lists the whole image at each stored level\'s size and `tiles` the scale factors whose 512-pixel tiles render within tiles.maxRenderSourcePixels; `maxArea` is the smaller of 16,777,216 pixels and that bound.',
    access: viewer,
    params: slideOnly,
    before: [cacheControl('private, max-age=3600')],
    response: { description: 'The info.json (JSON-LD)', schema: iiifInfo, contentType: 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"' },
    handle: async ({ params }, ctx) => {
      ctx.body = await ctx.services.tiles.iiifInfo(await viewable(ctx, params.slide), `${ctx.protocol}://${ctx.host}/iiif/${params.slide}`, admittedBy(ctx));
      ctx.type = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"';
    },
  }),
  route({
    method: 'get',
    path: '/iiif/{slide}/{region}/{size}/{rotation}/{quality}.{format}',
    pattern: new RegExp(`^/iiif/(?<slide>${SEGMENT})/(?<region>${SEGMENT})/(?<size>${SEGMENT})/(?<rotation>${SEGMENT})/(?<quality>[^/.]+)\\.(?<format>[^/.]+)$`),
    tag,
    summary: 'An IIIF image of a slide: a region at a size, within tiles.maxRenderSourcePixels',
    description:
      'IIIF Image API 3.0, level 1, in JPEG, PNG or WebP. Malformed parts and features beyond level 1 are a 400 (invalid_iiif_request, unsupported_iiif_feature), as the IIIF Image API asks. An image is read from the coarsest stored level that has at least the pixels asked for (with half a pixel of slack for rounded level sizes) and may decode at most tiles.maxRenderSourcePixels of it; beyond, 400 render_too_large says what it would need (ask for a smaller region or size). `max` is the largest size that renders within that bound and maxArea. A render stops when its client goes away, and IIIF images take at most half the render slots at once, so that Deep Zoom tiles keep the rest. Cache-Control: private, max-age=31536000, immutable (a published slide never changes).',
    access: viewer,
    params: iiifImagePath,
    before: [immutable],
    response: { description: 'The image, with a strong ETag', contentType: 'image/*' },
    handle: async ({ params }, ctx) => {
      const image = parseIiifImagePath(params);
      sendTile(ctx, await ctx.services.tiles.iiifImage(await viewable(ctx, params.slide), image, clientGone(ctx), admittedBy(ctx)));
    },
  }),
];
