// Toolbox jobs through the HTTP API: who may submit and see what, parameter validation, cancel, audited result downloads.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { createQueueWorker, type JobView } from '../../server/queue/index.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

async function setUp(t: Parameters<typeof startTestApp>[0]) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-queue-http-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var') } });
  const { svs } = await makeSlide({ width: 1600, height: 1200, levels: 2, seed: 8, out: root });
  const slide = await registerSlide(app.database.db, svs);
  return { app, slide };
}

function worker(app: TestApp) {
  return createQueueWorker(app.config, app.database.db, memoryLogger().log);
}

async function submit(client: Client, body: unknown) {
  return client.post<{ job: JobView; error: { code: string; message: string; details?: { problems: { field: string; message: string }[] } } }>('/api/jobs', body);
}

test('L1 may not submit (403); L2, L3 and staff may; anonymous gets 401', async (t) => {
  const { app, slide } = await setUp(t);
  const body = { type: 'tissue-mask', slideId: slide.id, parameters: {} };
  const l1 = await signedIn(app, { level: 'L1' });
  const refused = await submit(l1.session, body);
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'level_required');
  t.is((await fetch(app.url('/api/jobs'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status, 401);
  for (const spec of [{ level: 'L2' as const }, { level: 'L3' as const }, { level: 'L1' as const, roles: ['pathologist' as const] }]) {
    const who = await signedIn(app, spec);
    const answer = await submit(who.token, body);
    t.is(answer.status, 201, JSON.stringify(spec));
    t.like(answer.body.job, { type: 'tissue-mask', slideId: slide.id, status: 'queued', progress: 0, attempts: 0, maxAttempts: 3, results: [], owner: { id: who.user.id, email: who.user.email } });
    t.deepEqual(answer.body.job.parameters, { method: 'grey' });
  }
  t.is(await app.database.db.knex('queue_jobs').count({ n: '*' }).then((r) => Number((r[0] as { n: number }).n)), 3);
});

test('parameters out of range are refused at submit with a 400 naming the parameter, and nothing is queued', async (t) => {
  const { app, slide } = await setUp(t);
  const { token } = await signedIn(app, { level: 'L2' });
  const cases: [unknown, string, RegExp][] = [
    [{ type: 'patches', slideId: slide.id, parameters: { size: 0 } }, 'parameters.size', /at least 1/],
    [{ type: 'patches', slideId: slide.id, parameters: { tissueThreshold: 2 } }, 'parameters.tissueThreshold', /from 0 to 1/],
    [{ type: 'tissue-mask', slideId: slide.id, parameters: { downsample: 0.5 } }, 'parameters.downsample', /at least 1/],
    [{ type: 'tissue-mask', slideId: slide.id, parameters: { method: 'magic' } }, 'parameters.method', /grey or saturation/],
    [{ type: 'tissue-mask', slideId: slide.id, parameters: { colour: 'red' } }, 'parameters.colour', /is not a field here/],
    [{ type: 'heatmap', slideId: slide.id, parameters: { source: 999 } }, 'parameters.source', /no job 999/],
    [{ type: 'stitch', slideId: slide.id, parameters: { predictions: [] } }, 'parameters.predictions', /at least one/],
  ];
  // Whether the route's schema or the service (against the slide, the source job) refuses it, the answer has one shape.
  for (const [body, parameter, message] of cases) {
    const answer = await submit(token, body);
    t.is(answer.status, 400, JSON.stringify(body));
    t.is(answer.body.error.code, 'invalid_request');
    t.true(answer.body.error.message.startsWith(parameter), answer.body.error.message);
    t.regex(answer.body.error.message, message);
    t.is(answer.body.error.details!.problems[0]!.field, parameter);
  }
  const refusal = async (body: unknown) => {
    const answer = await submit(token, body);
    return { status: answer.status, code: answer.body.error.code, problems: answer.body.error.details?.problems };
  };
  t.like(await refusal({ type: 'sharpen', slideId: slide.id }), { status: 400, code: 'invalid_request', problems: [{ field: 'type', message: 'type must be one of tissue-mask, xml-masks, patches, stitch, heatmap' }] });
  t.like(await refusal({ type: 'tissue-mask', slideId: 'x' }), { status: 400, code: 'invalid_request', problems: [{ field: 'slideId', message: 'slideId must be a slide id (a positive whole number)' }] });
  t.like(await refusal({ slideId: slide.id }), { status: 400, code: 'invalid_request', problems: [{ field: 'type', message: 'type is missing' }] });
  t.like(await refusal({ type: 'heatmap', slideId: slide.id }), { status: 400, code: 'invalid_request', problems: [{ field: 'parameters', message: 'parameters is missing' }] });
  t.is((await submit(token, { type: 'tissue-mask', slideId: 99999 })).status, 404);

  // A slide in the catalog whose file cannot be read: refused at submit with the reason, not a 500 and not a job that can only fail.
  const damagedFile = path.join(path.dirname(slide.filePath), 'damaged.svs');
  await writeFile(damagedFile, Buffer.from('II*\0this is not a slide'));
  const damaged = await registerSlide(app.database.db, damagedFile);
  const unreadable = await submit(token, { type: 'patches', slideId: damaged.id, parameters: {} });
  t.is(unreadable.status, 409);
  t.is(unreadable.body.error.code, 'slide_unreadable');
  t.regex(unreadable.body.error.message, /cannot be read on the server/);
  t.is(await app.database.db.knex('queue_jobs').count({ n: '*' }).then((r) => Number((r[0] as { n: number }).n)), 0);
});

test('jobs are the owner\'s (admins see all); results download for the owner, audited; cancel rules', async (t) => {
  const { app, slide } = await setUp(t);
  const alice = await signedIn(app, { level: 'L2' });
  const bob = await signedIn(app, { level: 'L2' });
  const admin = await signedIn(app, { level: 'L1', roles: ['admin'] });
  const mine = (await submit(alice.token, { type: 'tissue-mask', slideId: slide.id, parameters: { method: 'saturation' } })).body.job;
  const other = (await submit(bob.token, { type: 'tissue-mask', slideId: slide.id, parameters: {} })).body.job;

  // Each sees their own; the admin everyone's, newest first, filtered by status.
  t.deepEqual((await alice.token.get<{ items: JobView[] }>(`/api/jobs?slide=${slide.id}`)).body.items.map((j) => j.id), [mine.id]);
  t.deepEqual((await admin.token.get<{ items: JobView[] }>(`/api/jobs?slide=${slide.id}`)).body.items.map((j) => j.id), [other.id, mine.id]);
  t.is((await alice.token.get(`/api/jobs/${other.id}`)).status, 404);
  t.is((await alice.token.post(`/api/jobs/${other.id}/cancel`)).status, 404);

  // Bob's is cancelled while queued; cancelling it again is a conflict.
  const cancelled = await bob.session.post<{ job: JobView }>(`/api/jobs/${other.id}/cancel`);
  t.is(cancelled.status, 200);
  t.is(cancelled.body.job.status, 'cancelled');
  t.is((await bob.session.post(`/api/jobs/${other.id}/cancel`)).status, 409);

  t.true(await worker(app).runOnce());
  const done = (await alice.token.get<{ job: JobView }>(`/api/jobs/${mine.id}`)).body.job;
  t.is(done.status, 'succeeded', done.error ?? '');
  t.deepEqual(done.results.map((r) => [r.name, r.url]), [
    ['tissue-mask.json', `/api/jobs/${mine.id}/results/tissue-mask.json`],
    ['tissue-mask.png', `/api/jobs/${mine.id}/results/tissue-mask.png`],
  ]);
  t.is((await alice.token.post(`/api/jobs/${mine.id}/cancel`)).status, 409);
  t.deepEqual((await admin.token.get<{ items: JobView[] }>('/api/jobs?status=succeeded')).body.items.map((j) => j.id), [mine.id]);

  const png = await alice.token.get<Buffer>(`/api/jobs/${mine.id}/results/tissue-mask.png`);
  t.is(png.status, 200);
  t.is(png.headers.get('content-type'), 'image/png');
  t.is(Number(png.headers.get('content-length')), done.results[1]!.size);
  const meta = await sharp(png.body).metadata();
  t.is(meta.format, 'png');
  const events = app.audit.of('job.result.download');
  t.is(events.length, 1);
  t.like(events[0], { actorId: alice.user.id, subjectType: 'queue_job', subjectId: mine.id, details: { slideId: slide.id, name: 'tissue-mask.png' } });

  // Others may not download it: not their job (404); an unknown name is a 404 and nothing is audited.
  t.is((await bob.token.get(`/api/jobs/${mine.id}/results/tissue-mask.png`)).status, 404);
  t.is((await alice.token.get(`/api/jobs/${mine.id}/results/..%2F..%2Fslidebank.sqlite`)).status, 404);
  t.is(app.audit.of('job.result.download').length, 1);
  // Heat maps publish overlays every viewer sees: a name published by somebody else (here by hand) is refused; one's own may be replaced.
  const curated = path.join(app.config.paths.cache, 'overlays', String(slide.id), 'curated');
  await mkdir(curated, { recursive: true });
  await writeFile(path.join(curated, 'curated.json'), JSON.stringify({ tool: 'heatmap', name: 'curated' }));
  const taken = await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: mine.id, name: 'curated' } });
  t.is(taken.status, 400);
  t.is(taken.body.error.details!.problems[0]!.field, 'parameters.name');
  t.regex(taken.body.error.message, /you did not publish/);
  const ownOverlay = await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: mine.id, name: 'mine' } });
  t.is(ownOverlay.status, 201);
  t.true(await worker(app).runOnce());
  t.is((await alice.token.get<{ job: JobView }>(`/api/jobs/${ownOverlay.body.job.id}`)).body.job.status, 'succeeded');
  t.is((await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: mine.id, name: 'mine' } })).status, 201, 'her own overlay she may replace');
  t.is((await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: mine.id, name: 'x' } })).body.error.details!.problems[0]!.field, 'parameters.source', 'nor may Bob colour Alice\'s results');

  // An L1 user cannot download at all, even their own listing is empty.
  const l1 = await signedIn(app, { level: 'L1' });
  t.is((await l1.token.get(`/api/jobs/${mine.id}/results/tissue-mask.png`)).status, 403);
  t.deepEqual((await l1.token.get<{ items: JobView[] }>('/api/jobs')).body.items, []);
});

test('ids, filters and result names are read at the edge: what cannot exist is a 404, a bad filter a 400 naming it; the API description shows the submission as the task schemas define it', async (t) => {
  const { app, slide } = await setUp(t);
  const { token } = await signedIn(app, { level: 'L2' });
  const job = (await submit(token, { type: 'tissue-mask', slideId: slide.id, parameters: {} })).body.job;
  const error = async (path: string) => {
    const answer = await token.get<{ error: { code: string; message: string; details?: { problems: { field: string; message: string }[] } } }>(path);
    return { status: answer.status, code: answer.body.error.code, problems: answer.body.error.details?.problems };
  };
  for (const id of ['abc', '0', '99999999999', '1.5']) t.like(await error(`/api/jobs/${id}`), { status: 404, code: 'job_not_found' }, id);
  t.like(await error(`/api/jobs/${job.id}/results/..%2F..%2Fslidebank.sqlite`), { status: 404, code: 'result_not_found' });
  t.like(await error('/api/jobs?status=done'), { status: 400, code: 'invalid_query', problems: [{ field: 'status', message: 'status must be one of queued, running, succeeded, failed, cancelled' }] });
  t.like(await error('/api/jobs?slide=x'), { status: 400, code: 'invalid_query', problems: [{ field: 'slide', message: 'slide must be a whole number from 1 to 2147483647' }] });
  t.like(await error('/api/jobs?owner=1'), { status: 400, code: 'invalid_query', problems: [{ field: 'owner', message: 'owner is not a parameter here' }] });
  t.deepEqual((await token.get<{ items: JobView[] }>(`/api/jobs?slide=${slide.id}&status=queued`)).body.items.map((j) => j.id), [job.id]);

  const description = (await (await fetch(app.url('/api/openapi.json'))).json()) as {
    paths: Record<string, Record<string, { 'x-access': string; requestBody?: { content: Record<string, { schema: { $ref: string } }> } }>>;
    components: { schemas: Record<string, { oneOf?: { properties: { type: { const: string }; parameters: unknown } }[] }> };
  };
  t.is(description.paths['/api/jobs']!.post!['x-access'], 'L2 or staff');
  t.is(description.paths['/api/jobs']!.get!['x-access'], 'L1');
  t.is(description.paths['/api/jobs']!.post!.requestBody!.content['application/json']!.schema.$ref, '#/components/schemas/ToolboxJobSubmission');
  const types = description.components.schemas.ToolboxJobSubmission!.oneOf!.map((option) => option.properties.type.const);
  t.deepEqual(types, ['tissue-mask', 'xml-masks', 'patches', 'stitch', 'heatmap']);
});
