import { z } from 'zod';
import { MANAGED_PAGE, REASON_MAX } from '../../catalog/slide-status.service.js';
import { SLIDE_STATUSES } from '../../catalog/slide-status.repository.js';
import { managedSlide, managedSlideList } from '../../catalog/views.js';
import { anyRole } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idParam, textQuery, wholeQuery } from '../params.js';
import { route } from '../route.js';

/**
 * Slides of every status, for administrators and curators: the list, and
 * withdrawing a published slide (with a reason) and publishing it again,
 * each audited. Quarantined ingests are not slides: see
 * `GET /api/ingest/records?outcome=quarantined`.
 */

const slideId = z.strictObject({ id: idParam('slide') });

const listQuery = z.strictObject({
  status: z
    .enum(['', ...SLIDE_STATUSES], { error: `status must be one of ${SLIDE_STATUSES.join(', ')}` })
    .optional()
    .transform((status) => status || undefined)
    .meta({ description: 'Only slides of this status; all when absent', override: { type: 'string', enum: [...SLIDE_STATUSES] } }),
  q: textQuery('q', 200).meta({ description: 'Part of the name' }),
  limit: wholeQuery('limit', MANAGED_PAGE.default, 1, MANAGED_PAGE.max),
  offset: wholeQuery('offset', 0, 0, Number.MAX_SAFE_INTEGER),
});

const withdrawal = z
  .strictObject({
    reason: z
      .string({ error: 'reason must be text: why the slide is withdrawn' })
      .trim()
      .min(1, 'A withdrawal needs a reason (a non-empty text)')
      .max(REASON_MAX, `The reason may have at most ${REASON_MAX} characters`)
      .meta({ description: 'Why, for the audit log and the other curators' }),
  })
  .meta({ id: 'Withdrawal' });

const tag = 'Slide administration';
const curators = anyRole('admin', 'curator');

export const adminSlideRoutes = [
  route({
    method: 'get',
    path: '/api/admin/slides',
    tag,
    summary: 'Slides of every status, by name, with the reason of each withdrawal',
    access: curators,
    query: listQuery,
    before: [noStore],
    response: { description: 'A window of slides and their total', schema: managedSlideList },
    handle: ({ query: { status, q, limit, offset } }, ctx) => ctx.services.slideStatus.list({ status, name: q, limit, offset }),
  }),
  route({
    method: 'post',
    path: '/api/admin/slides/{id}/withdraw',
    tag,
    summary: 'Withdraw a published slide from the catalog, the viewer and the downloads at once (409 unless published)',
    description:
      'Tiles, overlays, files, bundles, job results and dataset bags stop serving it at once (404 slide_not_found, as for a slide that does not exist). Audited as slide.withdrawn with the reason; a slide that is not published is 409 slide_status_conflict.',
    access: curators,
    params: slideId,
    body: withdrawal,
    before: [noStore],
    response: { description: 'The slide, withdrawn', schema: managedSlide },
    handle: ({ params, body }, ctx) => ctx.services.slideStatus.withdraw(params.id, body.reason, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/slides/{id}/publish',
    tag,
    summary: 'Publish a withdrawn slide again (409 unless withdrawn)',
    description: 'Audited as slide.republished; a slide that is not withdrawn is 409 slide_status_conflict.',
    access: curators,
    params: slideId,
    before: [noStore],
    response: { description: 'The slide, published', schema: managedSlide },
    handle: ({ params }, ctx) => ctx.services.slideStatus.publish(params.id, actorOf(ctx)),
  }),
];
