/**
 * One gate for every download path. `downloads.concurrentPerUser` and
 * `downloads.bytesPerDay` hold for single files, ZIP bundles, dataset bags
 * (the ZIP, complete or holey, and the mirror's holey bag) and toolbox job
 * results alike, and what one path sent counts against the others: a user
 * cannot pass the allowance by switching from files to bags or results.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { createDatasetsService } from '../../server/datasets/index.js';
import { createQueueWorker, type JobView } from '../../server/queue/index.js';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface Origin {
  app: TestApp;
  /** An L3 member: may download files, take bags and run toolbox jobs. */
  member: Client;
  slide: { id: number; size: number };
  /** A succeeded tissue-mask job of the slide, and its PNG result's size. */
  job: { id: number; pngSize: number };
}

async function sha256(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** A server with the given download limits, one published slide released as dataset liver 1, and a finished toolbox job of the member's. */
async function origin(t: ExecutionContext, env: Record<string, string>): Promise<Origin> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-download-gate-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var'), ...env } });
  const { svs } = await makeSlide({ width: 1600, height: 1200, seed: 71, out: root, name: 'case-0', tileSize: 240 });
  const record = await registerSlide(app.database.db, svs, 'SB1-LV-HCC-HE-MD-71-71-0000000071');
  await app.database.db.knex('slides').where({ id: record.id }).update({ sha256: await sha256(svs) });
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('liver');
  await datasets.add('liver', { slides: [record.id] });
  await datasets.release('liver', '1', 'curator');

  const { token: member } = await signedIn(app, { level: 'L3' });
  const submitted = await member.post<{ job: JobView }>('/api/jobs', { type: 'tissue-mask', slideId: record.id, parameters: {} });
  t.is(submitted.status, 201);
  t.true(await createQueueWorker(app.config, app.database.db, memoryLogger().log).runOnce());
  const done = (await member.get<{ job: JobView }>(`/api/jobs/${submitted.body.job.id}`)).body.job;
  t.is(done.status, 'succeeded', done.error ?? '');
  const png = done.results.find((r) => r.name === 'tissue-mask.png')!;
  return { app, member, slide: { id: record.id, size: record.fileSize }, job: { id: done.id, pngSize: png.size } };
}

/** Every download path there is, as the member asks for it. */
function paths({ member, slide, job }: Origin): [string, () => ReturnType<Client['get']>][] {
  return [
    ['the slide file', () => member.get(`/api/slides/${slide.id}/files/slide`)],
    ['a ZIP bundle', () => member.post('/api/downloads', { slides: [slide.id] })],
    ['the bag as a ZIP', () => member.get('/api/datasets/liver/bag.zip?version=1')],
    ['the holey bag as a ZIP', () => member.get('/api/datasets/liver/bag.zip?version=1&holey=1')],
    ['the mirror\'s holey bag', () => member.get('/api/datasets/liver/bag?version=1')],
    ['a toolbox job result', () => member.get(`/api/jobs/${job.id}/results/tissue-mask.png`)],
  ];
}

test(`downloads.concurrentPerUser: while one download runs, every other path answers 429 with Retry-After, then each is served, on ${testDialect}`, async (t) => {
  t.timeout(5 * 60_000);
  const setup = await origin(t, { SLIDEBANK_DOWNLOADS_CONCURRENT_PER_USER: '1' });
  const { app, member } = setup;
  // A 64 MiB file, so that a paused download stays running (socket buffers cannot take it all).
  const bigFile = path.join(app.config.paths.data, 'big.svs');
  await writeFile(bigFile, '');
  await truncate(bigFile, 64 * 1024 * 1024);
  const big = await registerSlide(app.database.db, bigFile, 'SB1-LV-HCC-HE-MD-72-72-0000000072');
  const held = await new Promise<http.ClientRequest>((resolve, reject) => {
    const request = http.get(app.url(`/api/slides/${big.id}/files/slide`), { headers: { authorization: `Bearer ${member.token!}` } }, (response) => {
      if (response.statusCode !== 200) reject(new Error(`the held download answered ${response.statusCode}`));
      response.once('data', () => {
        response.pause();
        resolve(request);
      });
    });
    request.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
  });

  for (const [what, ask] of paths(setup)) {
    const answer = await ask();
    t.is(answer.status, 429, what);
    t.like(answer.body, { error: { code: 'too_many_downloads' } }, what);
    t.is(answer.headers.get('retry-after'), '30', what);
  }

  held.destroy();
  for (const [what, ask] of paths(setup)) {
    let answer = await ask();
    // The held download's slot is freed when the server sees the connection close.
    for (let i = 0; answer.status === 429 && i < 200; i++) {
      await sleep(50);
      answer = await ask();
    }
    t.is(answer.status, 200, what);
  }
});

test(`downloads.bytesPerDay: once a file has used the allowance, bags, bundles and job results are refused (429 until midnight UTC; 413 when larger than a whole day's), on ${testDialect}`, async (t) => {
  t.timeout(5 * 60_000);
  // The slide file fits, with 100 bytes to spare; anything else then passes the allowance.
  const probe = await origin(t, {});
  t.true(probe.job.pngSize > 100, `the mask PNG is ${probe.job.pngSize} bytes`);
  const setup = await origin(t, { SLIDEBANK_DOWNLOADS_BYTES_PER_DAY: String(probe.slide.size + 100) });
  t.is(setup.slide.size, probe.slide.size, 'the same generated slide');
  t.is((await setup.member.get(`/api/slides/${setup.slide.id}/files/slide`)).status, 200);
  // The complete bag carries the slide and its metadata files: larger than the whole allowance.
  const larger = new Set(['the bag as a ZIP']);
  for (const [what, ask] of paths(setup).slice(1)) {
    const answer = await ask();
    if (larger.has(what)) {
      t.is(answer.status, 413, what);
      t.like(answer.body, { error: { code: 'exceeds_daily_allowance' } }, what);
    } else {
      t.is(answer.status, 429, what);
      t.like(answer.body, { error: { code: 'daily_allowance_used' } }, what);
      t.regex(answer.headers.get('retry-after') ?? '', /^\d+$/, what);
    }
  }
});

test(`downloads.bytesPerDay: what a bag sent counts against the files, on ${testDialect}`, async (t) => {
  t.timeout(5 * 60_000);
  const probe = await origin(t, {});
  // Room for the bag (the slide and its small files) and not for the slide file after it.
  const setup = await origin(t, { SLIDEBANK_DOWNLOADS_BYTES_PER_DAY: String(2 * probe.slide.size - 1) });
  const bag = await setup.member.get<Buffer>('/api/datasets/liver/bag.zip?version=1');
  t.is(bag.status, 200);
  t.true(bag.body.length > setup.slide.size);
  const after = await setup.member.get(`/api/slides/${setup.slide.id}/files/slide`);
  t.is(after.status, 429);
  t.like(after.body, { error: { code: 'daily_allowance_used' } });
});
