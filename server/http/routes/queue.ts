import { z } from 'zod';
import { JOB_STATUSES, JOB_TYPES, RESULT_NAME, jobAnswer, jobList } from '../../queue/index.js';
import { PARAMETER_SCHEMAS } from '../../queue/tasks/index.js';
import { atLeast } from '../access.js';
import { actorOf } from '../actor.js';
import { retryAfter, settleWhenDone } from '../deliver.js';
import { noStore } from '../middleware/cache-control.js';
import { requesterOf } from '../middleware/permissions.js';
import { idParam, idQuery, MAX_ID } from '../params.js';
import { route } from '../route.js';

/**
 * Toolbox jobs: researchers with L2 or L3 (a DUA or a membership) and staff
 * submit jobs on slides they may view, follow and cancel them, and download
 * their results (every download audited as `job.result.download`). A job is
 * visible to its owner and administrators only; to others it is a 404.
 */

const slideId = z
  .number({ error: 'slideId must be a slide id (a positive whole number)' })
  .int('slideId must be a slide id (a positive whole number)')
  .min(1, 'slideId must be a slide id (a positive whole number)')
  .max(MAX_ID, 'slideId must be a slide id (a positive whole number)');

/** Each type with its own parameters (server/queue/tasks/parameters.ts); types whose parameters all have defaults may leave them out. */
const submission = z
  .discriminatedUnion(
    'type',
    [
      z.strictObject({ type: z.literal('tissue-mask'), slideId, parameters: PARAMETER_SCHEMAS['tissue-mask'].prefault({}) }),
      z.strictObject({ type: z.literal('xml-masks'), slideId, parameters: PARAMETER_SCHEMAS['xml-masks'].prefault({}) }),
      z.strictObject({ type: z.literal('patches'), slideId, parameters: PARAMETER_SCHEMAS.patches.prefault({}) }),
      z.strictObject({ type: z.literal('stitch'), slideId, parameters: PARAMETER_SCHEMAS.stitch }),
      z.strictObject({ type: z.literal('heatmap'), slideId, parameters: PARAMETER_SCHEMAS.heatmap }),
    ],
    { error: (issue) => (issue.code === 'invalid_union' ? `type must be one of ${JOB_TYPES.join(', ')}` : undefined) },
  )
  .meta({ id: 'ToolboxJobSubmission' });

const listQuery = z.strictObject({
  slide: idQuery('slide').optional().meta({ description: "Only this slide's jobs" }),
  status: z.enum(JOB_STATUSES, { error: `status must be one of ${JOB_STATUSES.join(', ')}` }).optional(),
});

const jobId = z.strictObject({ id: idParam('job') });
const resultFile = z.strictObject({
  id: idParam('job'),
  name: z.string().regex(RESULT_NAME, 'No result with that name').meta({ description: "A result file's name, as the job lists it", 'x-not-found': 'result_not_found' }),
});

const tag = 'Toolbox jobs';
const toolboxUser = atLeast('L2', { orStaff: true });

export const queueRoutes = [
  route({
    method: 'post',
    path: '/api/jobs',
    tag,
    summary: 'Submit a toolbox job on a slide you may view',
    description:
      'Parameters are checked at once, against the slide and the output budget too (413 job_too_large); past queue.maxQueuedPerUser waiting jobs the answer is 429 queue_quota. A heat map claims its overlay name for you.',
    access: toolboxUser,
    body: submission,
    before: [noStore],
    response: { status: 201, description: 'The queued job', schema: jobAnswer },
    handle: async ({ body }, ctx) => {
      await ctx.services.slideAccess.assertCanView(ctx, body.slideId);
      return { job: await ctx.services.queue.submit(requesterOf(ctx), body) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs',
    tag,
    summary: 'Your toolbox jobs (administrators: everyone’s), newest first',
    access: atLeast('L1'),
    query: listQuery,
    before: [noStore],
    response: { description: 'The jobs', schema: jobList },
    handle: ({ query }, ctx) => ctx.services.queue.list(requesterOf(ctx), query),
  }),
  route({
    method: 'get',
    path: '/api/jobs/{id}',
    tag,
    summary: 'One of your toolbox jobs: status, progress, log and result files',
    access: atLeast('L1'),
    params: jobId,
    before: [noStore],
    response: { description: 'The job', schema: jobAnswer },
    handle: async ({ params }, ctx) => ({ job: await ctx.services.queue.get(requesterOf(ctx), params.id) }),
  }),
  route({
    method: 'post',
    path: '/api/jobs/{id}/cancel',
    tag,
    summary: 'Cancel a job that has not finished (409 once it has)',
    access: atLeast('L1'),
    params: jobId,
    before: [noStore],
    response: { description: 'The job, cancelled or asked to stop', schema: jobAnswer },
    handle: async ({ params }, ctx) => ({ job: await ctx.services.queue.cancel(requesterOf(ctx), params.id) }),
  }),
  route({
    method: 'get',
    path: '/api/jobs/{id}/results/{name}',
    tag,
    summary: "Download a result file of a job that succeeded, while its slide may leave the server; audited",
    description: 'Counts against the same download limits as slide downloads (429 with Retry-After).',
    access: toolboxUser,
    params: resultFile,
    before: [noStore, retryAfter],
    response: { description: 'The file (PNG, JSON, CSV, TIFF or TAR)', contentType: 'application/octet-stream' },
    handle: async ({ params }, ctx) => {
      const { queue, slideAccess } = ctx.services;
      const requester = requesterOf(ctx);
      await slideAccess.assertCanView(ctx, await queue.slideOf(requester, params.id));
      const delivery = await queue.result(requester, params.id, params.name, actorOf(ctx));
      ctx.type = contentType(delivery.name);
      ctx.length = delivery.size;
      ctx.set('Content-Disposition', `attachment; filename="${delivery.name}"`);
      ctx.body = delivery.body;
      settleWhenDone(ctx, delivery.settle);
    },
  }),
];

function contentType(name: string): string {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  return { png: 'image/png', json: 'application/json', csv: 'text/csv; charset=utf-8', tar: 'application/x-tar', tif: 'image/tiff', tiff: 'image/tiff' }[ext] ?? 'application/octet-stream';
}
