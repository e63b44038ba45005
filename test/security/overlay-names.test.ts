// Heat-map overlays are seen by every viewer of a slide: their names belong to their publisher, through the API, the worker and the command line.
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { createQueueWorker, QueueRepository, type JobView } from '../../server/queue/index.js';
import { PARAMETER_SCHEMAS } from '../../server/queue/tasks/index.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { runCli } from '../support/cli.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface Answer {
  job: JobView;
  error: { code: string; message: string; details?: { problems: { field: string; message: string }[] } };
}

async function setUp(t: Parameters<typeof startTestApp>[0]) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-overlay-names-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const data = path.join(root, 'var');
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const { svs } = await makeSlide({ width: 1600, height: 1200, levels: 2, seed: 23, out: root });
  const slide = await registerSlide(app.database.db, svs);
  const overlays = path.join(app.config.paths.cache, 'overlays', String(slide.id));
  return { app, slide, svs, root, data, overlays };
}

const submit = (client: Client, body: unknown) => client.post<Answer>('/api/jobs', body);
const run = (app: TestApp) => createQueueWorker(app.config, app.database.db, memoryLogger().log).runOnce();
const jobOf = async (client: Client, id: number) => (await client.get<{ job: JobView }>(`/api/jobs/${id}`)).body.job;
const sidecar = async (overlays: string, name: string) => JSON.parse(await readFile(path.join(overlays, name, `${name}.json`), 'utf8')) as { job?: number; colormap?: string };

/** A user with a succeeded tissue mask of the slide to colour. */
async function researcher(app: TestApp, slideId: number) {
  const who = await signedIn(app, { level: 'L2' });
  const mask = (await submit(who.token, { type: 'tissue-mask', slideId, parameters: {} })).body.job;
  await run(app);
  return { ...who, mask: mask.id };
}

test(`two users cannot queue heat maps under one name: the later is refused at once; the holder's overlay is what viewers get, and the holder may replace it (${testDialect})`, async (t) => {
  const { app, slide, overlays } = await setUp(t);
  const alice = await researcher(app, slide.id);
  const bob = await researcher(app, slide.id);
  const first = await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } });
  t.is(first.status, 201);
  // Neither is published yet: the name was claimed when Alice's job was accepted.
  const second = await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: bob.mask, name: 'tumour' } });
  t.is(second.status, 400);
  t.is(second.body.error.details!.problems[0]!.field, 'parameters.name');
  t.regex(second.body.error.message, /^parameters\.name "tumour" is claimed by another user's heat-map job on this slide; choose another name/);
  t.notRegex(second.body.error.message, new RegExp(alice.user.email), 'who holds it stays private');

  t.true(await run(app));
  t.is((await jobOf(alice.token, first.body.job.id)).status, 'succeeded');
  t.is((await sidecar(overlays, 'tumour')).job, first.body.job.id);
  const again = await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: bob.mask, name: 'tumour' } });
  t.is(again.status, 400);
  t.regex(again.body.error.message, /"tumour" is an overlay of this slide that you did not publish/);

  // What a publisher killed mid-way left: swept once two days old; a fresh one may still be in use.
  const stale = path.join(overlays, '.staging-job99-1-0000');
  const fresh = path.join(overlays, '.staging-job98-1-0000');
  await mkdir(stale);
  await mkdir(fresh);
  const old = new Date(Date.now() - 3 * 24 * 3600 * 1000);
  await utimes(stale, old, old);
  const rerun = await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour', colormap: 'viridis' } });
  t.is(rerun.status, 201, 'her own overlay she may replace');
  t.true(await run(app));
  t.is((await jobOf(alice.token, rerun.body.job.id)).status, 'succeeded');
  t.like(await sidecar(overlays, 'tumour'), { job: rerun.body.job.id, colormap: 'viridis' });
  t.deepEqual((await readdir(overlays)).sort(), ['.staging-job98-1-0000', 'tumour'], 'no staging or replaced folders are left but the fresh one');
});

test(`a heat-map job that reaches the worker under a name somebody else holds publishes nothing and fails with the reason (${testDialect})`, async (t) => {
  const { app, slide, overlays } = await setUp(t);
  const alice = await researcher(app, slide.id);
  const bob = await researcher(app, slide.id);
  const published = (await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } })).body.job;
  t.true(await run(app));
  const dzi = path.join(overlays, 'tumour', 'tumour.dzi');
  const before = await stat(dzi);
  // Bob's job is in the queue under Alice's name without passing the API's check (as one accepted before names were claimed).
  const repository = new QueueRepository(app.database.db.knex, app.database.db.dialect);
  const parameters = PARAMETER_SCHEMAS.heatmap.parse({ source: bob.mask, name: 'tumour', colormap: 'viridis' });
  const hijack = await repository.insert({ type: 'heatmap', slideId: slide.id, parameters, ownerId: bob.user.id, maxAttempts: 3 });
  t.true(await run(app));
  const failed = await jobOf(bob.token, hijack.id);
  t.is(failed.status, 'failed');
  t.is(failed.attempts, 1, 'not retried');
  t.regex(failed.error ?? '', /^parameters\.name: the overlay "tumour" of slide \d+ belongs to somebody else; nothing was published/);
  t.deepEqual(failed.results, []);
  const after = await stat(dzi);
  t.is(after.ino, before.ino, 'Alice\'s overlay was not replaced');
  t.like(await sidecar(overlays, 'tumour'), { job: published.id, colormap: 'jet' });
  t.deepEqual(await readdir(overlays), ['tumour'], 'Bob\'s staged pyramid is gone');
});

test(`default overlay names are random, not the job id, and are claimed when the job is accepted (${testDialect})`, async (t) => {
  const { app, slide, overlays } = await setUp(t);
  const alice = await researcher(app, slide.id);
  const jobs = [];
  for (let i = 0; i < 2; i++) jobs.push((await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask } })).body.job);
  const names = jobs.map((job) => job.parameters.name as string);
  for (const [k, name] of names.entries()) {
    t.regex(name, /^heatmap-[0-9a-f]{12}$/);
    t.not(name, `heatmap-${jobs[k]!.id}`);
  }
  t.not(names[0], names[1]);
  const bob = await researcher(app, slide.id);
  const guess = await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: bob.mask, name: names[1] } });
  t.is(guess.status, 400, 'a name seen in a job cannot be taken either');
  t.true(await run(app));
  t.true(await run(app));
  t.deepEqual((await readdir(overlays)).sort(), [...names].sort());
  t.deepEqual((await jobOf(alice.token, jobs[0]!.id)).results.map((r) => r.name), [`${names[0]}.json`, `${names[0]}.png`]);
});

test(`cancelling a heat map that published nothing frees its name (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t);
  const alice = await researcher(app, slide.id);
  const bob = await researcher(app, slide.id);
  const queued = (await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } })).body.job;
  t.is((await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: bob.mask, name: 'tumour' } })).status, 400);
  t.is((await alice.token.post(`/api/jobs/${queued.id}/cancel`)).status, 200);
  t.is((await submit(bob.token, { type: 'heatmap', slideId: slide.id, parameters: { source: bob.mask, name: 'tumour' } })).status, 201);
  t.is((await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } })).status, 400, 'now Bob holds it');
});

test(`the command line does not publish over a user's overlay without --replace; with it the overlay is the operator's, audited, and users' jobs cannot take the name (${testDialect})`, async (t) => {
  const { app, slide, svs, root, data, overlays } = await setUp(t);
  const alice = await researcher(app, slide.id);
  const job = (await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } })).body.job;
  t.true(await run(app));
  const map = path.join(root, 'map.png');
  await sharp(Buffer.alloc(160 * 120, 200), { raw: { width: 160, height: 120, channels: 1 } }).toColourspace('b-w').png().toFile(map);
  const env = { DATABASE_URL: app.database.url, SLIDEBANK_PATHS_DATA: data };
  const out = path.join(overlays, 'tumour');
  const refused = await runCli(['toolbox', 'heatmap', map, '--slide', svs, '--out', out, '--grid', 'openslide'], { env, timeoutMs: 120_000 });
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, new RegExp(`overlay "tumour" of slide ${slide.id} was published by ${alice.user.email.replace(/[.+]/g, '\\$&')} \\(job ${job.id}\\); add --replace to replace it`));
  t.is((await sidecar(overlays, 'tumour')).job, job.id, 'Alice\'s overlay is untouched');

  const replaced = await runCli(['toolbox', 'heatmap', map, '--slide', svs, '--out', out, '--grid', 'openslide', '--colormap', 'viridis', '--replace'], { env, timeoutMs: 120_000 });
  t.is(replaced.code, 0, replaced.stderr);
  t.is(replaced.stdout.trim().split('\n')[0], path.join(out, 'tumour.dzi'));
  t.like(await sidecar(overlays, 'tumour'), { colormap: 'viridis' });
  t.is((await sidecar(overlays, 'tumour')).job, undefined);
  t.deepEqual(await readdir(overlays), ['tumour']);
  const audited = await app.database.db.knex('audit_log').where({ action: 'overlay.replaced' }).select('subject_type', 'subject_id', 'details');
  t.is(audited.length, 1);
  t.like(audited[0], { subject_type: 'slide', subject_id: String(slide.id) });

  const retake = await submit(alice.token, { type: 'heatmap', slideId: slide.id, parameters: { source: alice.mask, name: 'tumour' } });
  t.is(retake.status, 400, 'the operator\'s overlay is not Alice\'s to replace');
  // A folder that is not <slide id>/<name> under the overlays is refused; the same command elsewhere writes plain files.
  const stray = await runCli(['toolbox', 'heatmap', map, '--slide', svs, '--out', path.join(overlays, 'a', 'b')], { env, timeoutMs: 120_000 });
  t.is(stray.code, 2);
  t.regex(stray.stderr, /--out inside .* must be .*\/<slide id>\/<name>/);
  const elsewhere = await runCli(['toolbox', 'heatmap', map, '--slide', svs, '--out', path.join(root, 'tumour'), '--grid', 'openslide'], { env, timeoutMs: 120_000 });
  t.is(elsewhere.code, 0, elsewhere.stderr);
});
