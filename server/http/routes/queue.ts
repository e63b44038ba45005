import { z } from 'zod';
import { JOB_STATUSES, JOB_TYPES, RESULT_NAME, jobAnswer, jobList } from '../../queue/index.js';
import { PARAMETER_SCHEMAS } from '../../queue/tasks/index.js';
import { atLeast } from '../access.js';
import { actorOf } from '../actor.js';
import { settleWhenDone } from '../deliver.js';
import { noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { idParam, idQuery, MAX_ID } from '../params.js';
import { requesterOf } from '../requester.js';
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
    description: [
      'Parameters are checked at once, also against the slide: a bad one, or one the slide cannot take (a patch larger than its level), is a 400 invalid_request whose `details.problems` name it (`parameters.size`). A job whose estimated output passes queue.maxOutputCount or queue.maxOutputBytes is a 413 job_too_large naming the limit, with the estimate in `details`; past queue.maxQueuedPerUser waiting jobs the answer is 429 queue_quota; a slide that is not there is a 404 slide_not_found, one whose file cannot be read a 409 slide_unreadable; xml-masks and labelled patches of a slide whose annotation is the hidden truth of a challenge, 403 truth_hidden (administrators excepted).',
      '',
      'A heat map claims its overlay `name` for you when it is accepted (a random `heatmap-…` name when none is given, echoed in `parameters`): a name somebody else\'s job holds or published under is refused, unless you are an administrator, who takes it over; the worker publishes only under a name the job\'s owner holds.',
      '',
      '| type | parameters, besides their defaults | results |',
      '| --- | --- | --- |',
      '| tissue-mask | `downsample` or `mpp` (default about 8 µm per mask pixel) | `tissue-mask.png` (0/255), `tissue-mask.json` |',
      '| xml-masks | `layers`: a preset (`paip2019`) or `ID=NAME` pairs; default every layer with a shape | `mask-<id>-<name>.png` per layer, `xml-masks.json`; fails when the slide has no annotation |',
      '| patches | `level` or `magnification`; `labels` needs the slide\'s annotation | `patches.json`, `patches.csv`, `patches.tar` (the patch images) |',
      '| stitch | `predictions`: each a level-0 position, a size in pixels of its level and a score | `probability.png` (16-bit, 65535 = 1), `probability.json` |',
      '| heatmap | `source`: one of your succeeded jobs of the same slide; `file`: its PNG to colour (default the first) | the overlay at `/tiles/<slide>/overlays/<name>.dzi`, `<name>.png` (overview), `<name>.json` |',
    ].join('\n'),
    access: toolboxUser,
    body: submission,
    before: [noStore],
    response: { status: 201, description: 'The queued job', schema: jobAnswer },
    handle: async ({ body }, ctx) => {
      await ctx.services.slideAccess.assertCanView(ctx, body.slideId);
      // Masks and labelled patches are made from the slide's annotation: refused while it is a challenge's hidden truth.
      if (body.type === 'xml-masks' || (body.type === 'patches' && body.parameters.labels)) await ctx.services.hiddenTruth.assertVisible(requesterOf(ctx), body.slideId);
      return { job: await ctx.services.queue.submit(requesterOf(ctx), body) };
    },
  }),
  route({
    method: 'get',
    path: '/api/jobs',
    tag,
    summary: 'Your toolbox jobs (administrators: everyone’s), newest first',
    description: 'At most 200.',
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
    description:
      'A queued job is cancelled at once, and a heat map\'s overlay name is free again. A running one stays running, with the cancel recorded, until its worker stops it at its next progress report and removes its partial results. Once finished: 409 job_finished.',
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
    description:
      'Sent as an attachment and audited as job.result.download; counts against the same download limits as slide downloads (429 with Retry-After). 404 result_not_found for a name the job does not list, and slide_not_found once the job\'s slide is withdrawn.',
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
