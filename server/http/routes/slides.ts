import { createReadStream } from 'node:fs';
import { z } from 'zod';
import { THUMBNAIL_SIZES, type ThumbnailSize } from '../../catalog/thumbnails.js';
import { annotationGeoJson, catalogPage, catalogSlide, catalogSummary } from '../../catalog/views.js';
import { isStaff } from '../../access/levels.js';
import { slideDicomweb } from '../../dicom/viewer-link.js';
import { atLeast } from '../access.js';
import { sendCached } from '../cached-answer.js';
import { cacheControl } from '../middleware/cache-control.js';
import { idParam, once } from '../params.js';
import { route } from '../route.js';
import { catalogQuery } from '../schemas/catalog.js';
import { requesterOf } from '../requester.js';
import { annotationViewable, viewable } from '../viewable.js';

/**
 * The catalog for L1 and staff: the search with its facets, the summary
 * tables, one slide, its thumbnail and its annotation for the viewer. One
 * slide and what is made of it also ask the slide access policy, as the
 * tiles do.
 */

/** Access-controlled, so `private`; a thumbnail can be made again, so revalidated after an hour. */
const privateHour = cacheControl('private, max-age=3600');

const slideId = z.strictObject({ id: idParam('slide') });
/** One slide: the catalog's view and its DICOMweb facts. */
const slideDetail = catalogSlide.extend({ dicomweb: slideDicomweb.nullable().meta({ description: 'Null when DICOMweb does not serve the slide' }) }).meta({ id: 'SlideDetail' });
const SIZES = Object.keys(THUMBNAIL_SIZES) as [ThumbnailSize, ...ThumbnailSize[]];
const thumbnailQuery = z.strictObject({
  size: once('size')
    .pipe(z.enum(SIZES, { error: (issue) => `size must be one of ${SIZES.join(', ')}, not ${JSON.stringify(issue.input)}` }))
    .optional()
    .transform((size) => size ?? 'small')
    .meta({ description: 'small (the default) or large', override: { type: 'string', enum: SIZES } }),
});

const tag = 'Catalog';
const viewer = atLeast('L1');

export const slideRoutes = [
  route({
    method: 'get',
    path: '/api/slides',
    tag,
    summary: 'Search the published slides by facets and text, a page at a time, with the facet counts',
    description:
      'Values of one facet are OR-ed, facets AND-ed with each other and with q (e.g. `?organ=CO,LV&stain=IHC&q=adeno`). Each facet is counted with every other filter applied but its own, so the counts say what ticking one more value would add. Page with page and pageSize or with offset and limit, not both.',
    access: viewer,
    query: catalogQuery,
    response: { description: 'One page of matching slides, their total and each facet’s counts', schema: catalogPage },
    handle: async ({ query }, ctx) => {
      // What the slides came from (scanner vendor, original format) is counted for staff only.
      const page = await ctx.services.catalog.search(query, { staff: isStaff(requesterOf(ctx)) });
      // The annotation summary (tumour area) of a challenge's hidden truth is left out.
      const hidden = await ctx.services.hiddenTruth.hiddenFor(requesterOf(ctx), page.items.map((s) => s.id));
      return hidden.size === 0 ? page : { ...page, items: page.items.map((s) => (hidden.has(s.id) ? { ...s, annotation: null } : s)) };
    },
  }),
  route({
    method: 'get',
    path: '/api/slides/summary',
    tag,
    summary: 'Published slides counted by organ and histology, and by organ and annotation method',
    access: viewer,
    response: { description: 'The two summary tables', schema: catalogSummary },
    handle: (_input, ctx) => ctx.services.catalog.summary(),
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}',
    tag,
    summary: 'One published slide',
    description: 'As the search lists it, and how DICOMweb (/dicomweb/) serves it: its study and series, and the link to the DICOMweb viewer dicom.viewerUrl names (null when none is); dicomweb is null when DICOMweb does not serve the slide.',
    access: viewer,
    params: slideId,
    response: { description: 'The slide', schema: slideDetail },
    handle: async ({ params }, ctx) => {
      const slide = await ctx.services.catalog.get(await viewable(ctx, params.id));
      const dicomweb = await ctx.services.dicomViewer.of(slide.id, `${ctx.protocol}://${ctx.host}/dicomweb`);
      const hidden = (await ctx.services.hiddenTruth.hiddenFor(requesterOf(ctx), [slide.id])).size > 0;
      return { ...slide, ...(hidden ? { annotation: null } : {}), dicomweb };
    },
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}/thumbnail',
    tag,
    summary: "A published slide's thumbnail; a matching If-None-Match is a 304",
    description: 'Cache-Control: private, max-age=3600 (a thumbnail can be made again).',
    access: viewer,
    params: slideId,
    query: thumbnailQuery,
    before: [privateHour],
    response: { description: 'The thumbnail, with a strong ETag', contentType: 'image/jpeg' },
    handle: async ({ params, query }, ctx) => {
      const { file, etag, length } = await ctx.services.catalog.thumbnail(await viewable(ctx, params.id), query.size);
      sendCached(ctx, { etag, contentType: 'image/jpeg', length, body: () => createReadStream(file) });
    },
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}/annotation.geojson',
    tag,
    summary: "A published slide's annotation as GeoJSON in level-0 pixels, for the viewer's overlay",
    description:
      'The slide\'s de-identified Aperio XML as GeoJSON: one Polygon per shape (rectangles and ellipses too) with the holes cut from it as inner rings, one LineString per ruler or arrow; y grows downwards, as in the slide. A slide without an annotation is a 404 annotation_not_found; the hidden truth of a challenge is 403 truth_hidden except to administrators. Cache-Control: private, max-age=3600.',
    access: viewer,
    params: slideId,
    before: [privateHour],
    response: { description: 'The annotation’s shapes as a FeatureCollection', schema: annotationGeoJson, contentType: 'application/geo+json' },
    handle: async ({ params }, ctx) => {
      ctx.body = await ctx.services.annotations.geoJson(await annotationViewable(ctx, params.id));
      ctx.type = 'application/geo+json';
    },
  }),
];
