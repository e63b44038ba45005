import type { Context } from 'koa';
import { z } from 'zod';
import { REVIEW_STATES, REVIEW_TEXT_MAX, comparison, reviewStatistics, slideReview, worklist, type GeoJsonInput, type OutlineSource, type Reviewer } from '../../annotation-review/index.js';
import { annotationGeoJson } from '../../catalog/views.js';
import { anyRole, atLeast, staffOnly } from '../access.js';
import { actorOf } from '../actor.js';
import { cacheControl } from '../middleware/cache-control.js';
import { idParam, idQuery, wholeQuery } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import { hiddenTruthGuard } from '../viewable.js';

/**
 * The annotation review, for staff: AI proposals and manual outlines, a
 * pathologist's corrections, confirmation and a colleague's cross-check, the
 * released version becoming the slide's annotation; versions as GeoJSON and
 * Aperio XML, comparisons, the worklist, and the agreement statistics for every
 * L1 reader. Researchers never edit; the review service checks that edits and
 * cross-checks come from pathologists, and every change names the workflow
 * revision it was made against (409 when somebody changed it first).
 */

const revision = z
  .number({ error: 'revision must be the whole number the outline was loaded at' })
  .int('revision must be the whole number the outline was loaded at')
  .min(0, 'revision must be the whole number the outline was loaded at')
  .meta({ description: "The workflow's revision when the outline was loaded" });

function text(name: string, max: number) {
  return z.string({ error: `${name} must be text` }).max(max, `${name} is longer than ${max} characters`);
}

/** The outline: GeoJSON (checked in full by the review service, against the slide) or Aperio XML text. */
const outline = {
  geojson: z
    .union([z.string(), z.looseObject({ type: z.enum(['FeatureCollection', 'Feature']) })], {
      error: 'geojson must be a GeoJSON FeatureCollection or Feature, or its text',
    })
    .optional()
    .meta({ description: 'The outline as GeoJSON in level-0 pixels: a FeatureCollection of Polygons and MultiPolygons, or its text' }),
  xml: z.string({ error: 'xml must be Aperio XML text' }).optional().meta({ description: 'The outline as Aperio XML text' }),
};
const hasOutline = (body: { geojson?: unknown; xml?: unknown }) => body.geojson !== undefined || body.xml !== undefined;
const giveOutline = { message: 'give the outline as geojson (a FeatureCollection) or xml (Aperio XML text)' };

function outlineOf(body: { geojson?: GeoJsonInput; xml?: string }): OutlineSource {
  return body.geojson !== undefined ? { geojson: body.geojson } : { xml: body.xml ?? '' };
}

const proposal = z
  .strictObject({
    method: z.enum(['ai', 'manual'], { error: 'method must be "ai" or "manual"' }).default('ai'),
    model: text('model', REVIEW_TEXT_MAX.model).nullish().meta({ description: 'The model that made an AI proposal (required with method ai)' }),
    note: text('note', REVIEW_TEXT_MAX.note).nullish(),
    ...outline,
  })
  .refine(hasOutline, giveOutline)
  .meta({ id: 'AnnotationProposal' });
const edit = z
  .strictObject({ ...outline, revision, note: text('note', REVIEW_TEXT_MAX.note).nullish() })
  .refine(hasOutline, giveOutline)
  .meta({ id: 'AnnotationEdit' });
const confirmation = z.strictObject({ revision }).meta({ id: 'AnnotationConfirmation' });
const approval = z.strictObject({ revision, comment: text('comment', REVIEW_TEXT_MAX.comment).nullish() }).meta({ id: 'AnnotationApproval' });
const sendBack = z
  .strictObject({ revision, comment: text('comment', REVIEW_TEXT_MAX.comment).meta({ description: 'What to correct' }) })
  .meta({ id: 'AnnotationReturn' });

const slide = z.strictObject({ id: idParam('slide') });
const versionFile = z.strictObject({ id: idParam('slide'), version: idParam('version') });

const compareQuery = z.strictObject({
  a: idQuery('a').meta({ description: 'A version of the slide' }),
  b: idQuery('b').meta({ description: 'Another version of the slide' }),
  downsample: z
    .string({ error: 'downsample must be a whole number from 1' })
    .regex(/^[1-9]\d{0,8}$/, 'downsample must be a whole number from 1')
    .transform(Number)
    .optional()
    .meta({ description: 'Level-0 pixels per grid cell; by default the smallest that keeps the comparison within its bounds. Too fine for the slide is a 400 naming the smallest that would do' }),
});

const worklistQuery = z.strictObject({
  state: z
    .string({ error: 'state must be text' })
    .optional()
    .transform((text, ctx) => {
      const states = text === undefined || text === '' ? [] : text.split(',');
      const unknown = states.find((s) => !(REVIEW_STATES as readonly string[]).includes(s));
      if (unknown !== undefined) {
        ctx.addIssue({ code: 'custom', message: `state must be among ${REVIEW_STATES.join(', ')}, got "${unknown}"` });
        return z.NEVER;
      }
      return states as (typeof REVIEW_STATES)[number][];
    })
    .meta({ description: `Comma-separated states among ${REVIEW_STATES.join(', ')}; every state when absent` }),
  limit: wholeQuery('limit', 50, 1, 500),
  offset: wholeQuery('offset', 0, 0, 1_000_000_000),
});

function reviewerOf(ctx: Context): Reviewer {
  return { ...actorOf(ctx), roles: requesterOf(ctx).roles };
}

const tag = 'Annotation review';
const privateNoCache = cacheControl('private, no-cache');

export const annotationReviewRoutes = [
  route({
    method: 'get',
    path: '/api/slides/{id}/annotations/review',
    tag,
    summary: "A slide's review: its workflow, every version and every event",
    access: staffOnly,
    params: slide,
    before: [hiddenTruthGuard],
    response: { description: 'The review', schema: slideReview },
    handle: ({ params }, ctx) => ctx.services.annotationReview.review(params.id),
  }),
  route({
    method: 'post',
    path: '/api/slides/{id}/annotations/versions',
    tag,
    summary: 'Add an AI proposal or a manual outline: the first version of a new round',
    description:
      'An AI proposal names its model (400 model_required) and puts the slide in `proposed`; a manual outline goes to `in-review`. Refused with 409 under_cross_check while a confirmed version waits for its cross-check.',
    access: anyRole('admin', 'curator', 'pathologist'),
    params: slide,
    body: proposal,
    before: [hiddenTruthGuard],
    response: { status: 201, description: 'The review with the new version', schema: slideReview },
    handle: ({ params, body }, ctx) =>
      ctx.services.annotationReview.propose(params.id, { outline: outlineOf(body), method: body.method, model: body.model, note: body.note }, reviewerOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/slides/{id}/annotations/edits',
    tag,
    summary: "Save a pathologist's corrected outline as a new version",
    description:
      'Pathologists only. The version is `corrected` when its round began with an AI proposal, else `manual`; the slide goes to `in-review`. 409 under_cross_check while under cross-check.',
    access: staffOnly,
    params: slide,
    body: edit,
    before: [hiddenTruthGuard],
    response: { status: 201, description: 'The review with the new version', schema: slideReview },
    handle: ({ params, body }, ctx) =>
      ctx.services.annotationReview.save(params.id, { outline: outlineOf(body), revision: body.revision, note: body.note }, reviewerOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/slides/{id}/annotations/confirm',
    tag,
    summary: "Confirm the current version: it goes to a colleague's cross-check",
    description:
      'Pathologists only, from `proposed` or `in-review` (else 409 not_in_review). Its agreement with the newest AI proposal before it is computed and stored for the statistics.',
    access: staffOnly,
    params: slide,
    body: confirmation,
    before: [hiddenTruthGuard],
    response: { description: 'The review, under cross-check', schema: slideReview },
    handle: ({ params, body }, ctx) => ctx.services.annotationReview.confirm(params.id, body, reviewerOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/slides/{id}/annotations/approve',
    tag,
    summary: "Approve a colleague's confirmed version: it is released as the slide's annotation",
    description:
      'A pathologist other than the one who confirmed (403 own_confirmation), while under cross-check (else 409 not_in_cross_check). The version becomes the slide\'s annotation file, and the catalog\'s annotation method follows: `A` when an AI proposal led to it, else `M`.',
    access: staffOnly,
    params: slide,
    body: approval,
    before: [hiddenTruthGuard],
    response: { description: 'The review, released', schema: slideReview },
    handle: ({ params, body }, ctx) => ctx.services.annotationReview.approve(params.id, body, reviewerOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/slides/{id}/annotations/return',
    tag,
    summary: 'Send a confirmed version back with what to correct: a new round begins',
    description: 'A pathologist other than the one who confirmed (403 own_confirmation); the comment is required (400 comment_required). The slide goes back to `in-review`.',
    access: staffOnly,
    params: slide,
    body: sendBack,
    before: [hiddenTruthGuard],
    response: { description: 'The review, in review again', schema: slideReview },
    handle: ({ params, body }, ctx) => ctx.services.annotationReview.returnForCorrection(params.id, body, reviewerOf(ctx)),
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}/annotations/versions/{version}.geojson',
    tag,
    summary: 'A version as GeoJSON, while the slide may leave the server',
    access: staffOnly,
    params: versionFile,
    before: [hiddenTruthGuard, privateNoCache],
    response: { description: 'The outline in level-0 pixels, as a FeatureCollection', schema: annotationGeoJson, contentType: 'application/geo+json' },
    handle: async ({ params }, ctx) => {
      await ctx.services.slideRelease.assertMayLeave(params.id);
      ctx.type = 'application/geo+json';
      ctx.body = await ctx.services.annotationReview.versionGeoJson(params.id, params.version);
    },
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}/annotations/versions/{version}.xml',
    tag,
    summary: 'A version as Aperio XML, while the slide may leave the server',
    access: staffOnly,
    params: versionFile,
    before: [hiddenTruthGuard, privateNoCache],
    response: { description: 'The outline as ImageScope reads it', contentType: 'application/xml' },
    handle: async ({ params }, ctx) => {
      await ctx.services.slideRelease.assertMayLeave(params.id);
      ctx.type = 'application/xml';
      ctx.body = await ctx.services.annotationReview.versionXml(params.id, params.version);
    },
  }),
  route({
    method: 'get',
    path: '/api/slides/{id}/annotations/compare',
    tag,
    summary: 'Compare two versions of a slide: IoU per layer, mIoU and edit figures',
    description:
      'Both versions are rasterised on one grid of the slide: by default the finest with at most 4,000,000 cells over the part of the slide the two outlines cover (the cells beyond are background in both) whose work stays within the bound below. The areas added and removed are measured again, as finely as those bounds allow, over the part where the outlines differ. A given downsample runs from 1 to the slide\'s longer side (else 400 invalid_downsample); one whose grid would pass 16,000,000 cells, or whose rasterising work would pass 400,000,000 units (about a second of one core), is a 400 downsample_too_fine with `details.smallestDownsample`. Areas are in level-0 pixels².',
    access: staffOnly,
    params: slide,
    query: compareQuery,
    before: [hiddenTruthGuard],
    response: { description: 'The comparison', schema: comparison },
    handle: ({ params, query }, ctx) => ctx.services.annotationReview.compare(params.id, query.a, query.b, query.downsample),
  }),
  route({
    method: 'get',
    path: '/api/annotations/worklist',
    tag,
    summary: "Each published slide's review state, most recently changed first",
    access: anyRole('pathologist', 'admin'),
    query: worklistQuery,
    before: [cacheControl('private, no-store')],
    response: { description: 'A page of the worklist', schema: worklist },
    handle: ({ query }, ctx) => ctx.services.annotationReview.worklist({ states: query.state, limit: query.limit, offset: query.offset }),
  }),
  route({
    method: 'get',
    path: '/api/annotations/statistics',
    tag,
    summary: 'Manual and AI-assisted outlines and the AI proposals’ agreement with what pathologists confirmed, per organ',
    description:
      'Released outlines per organ, `manual` and `aiAssisted` with their rates, and `proposals`: each confirmation compared with the newest AI proposal before it, as mean mIoU overall and per round. The figures are computed once, when a version is confirmed, and stored; `pending` counts confirmations not compared yet, which are compared in the background after the request that finds them.',
    access: atLeast('L1'),
    query: z.strictObject({}),
    response: { description: 'The statistics', schema: reviewStatistics },
    handle: (_input, ctx) => ctx.services.annotationReview.statistics(),
  }),
];
