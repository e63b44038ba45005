// Toolbox jobs end to end: `slidebank serve` with its worker process, the HTTP API, and worker processes killed mid-job.
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import sharp from 'sharp';
import { QueueRepository, type JobView } from '../../server/queue/index.js';
import { logIn, type Client } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { collect, spawnCli } from '../support/cli.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const PASSWORD = 'grey heron over the river 42';

/** Poll a job until it has finished (the worker is another process); generous for a loaded machine. */
async function finished(client: Client, id: number, timeoutMs = 240_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await client.get<{ job: JobView }>(`/api/jobs/${id}`);
    if (['succeeded', 'failed', 'cancelled'].includes(body.job.status)) return body.job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${body.job.status} after ${timeoutMs} ms: ${JSON.stringify(body.job)}`);
    await sleep(250);
  }
}

test('a tissue mask and then a heat map of it, submitted through the API and run by the server\'s worker process', async (t) => {
  const site = await appliance(t);
  await site.serve();
  await site.cli(['user', 'add', '--email', 'researcher@hospital.example', '--password', PASSWORD, '--level', 'L2']);
  const { svs } = await makeSlide({ width: 2400, height: 1800, levels: 2, seed: 11, out: path.join(site.root, 'gen') });
  const slide = await registerSlide(site.database.db, svs);
  const client = await logIn(site.site, 'researcher@hospital.example', PASSWORD);

  const submitted = await client.post<{ job: JobView }>('/api/jobs', { type: 'tissue-mask', slideId: slide.id, parameters: { method: 'grey' } });
  t.is(submitted.status, 201);
  const mask = await finished(client, submitted.body.job.id);
  t.is(mask.status, 'succeeded', `${mask.error}\n${mask.log}`);
  t.is(mask.progress, 1);
  const png = mask.results.find((r) => r.name === 'tissue-mask.png')!;
  const download = await client.get<Buffer>(png.url);
  t.is(download.status, 200);
  const meta = await sharp(download.body).metadata();
  t.like(meta, { format: 'png', channels: 1 });
  const { info, data } = await sharp(download.body).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  t.true(info.width > 0 && info.height > 0);
  t.true(data.some((v) => v === 255) && data.some((v) => v === 0), 'the mask has tissue and background');

  const listed = await client.get<{ overlays: unknown[] }>(`/tiles/${slide.id}/overlays`);
  t.deepEqual(listed.body.overlays, []);
  const heat = await client.post<{ job: JobView }>('/api/jobs', { type: 'heatmap', slideId: slide.id, parameters: { source: mask.id, name: 'tissue', colormap: 'viridis' } });
  t.is(heat.status, 201, JSON.stringify(heat.body));
  const overlay = await finished(client, heat.body.job.id);
  t.is(overlay.status, 'succeeded', `${overlay.error}\n${overlay.log}`);
  t.deepEqual(overlay.results.map((r) => r.name), ['tissue.json', 'tissue.png']);
  const after = await client.get<{ overlays: { name: string; dzi: string; colormap: string }[] }>(`/tiles/${slide.id}/overlays`);
  t.like(after.body.overlays, [{ name: 'tissue', dzi: `/tiles/${slide.id}/overlays/tissue.dzi`, colormap: 'viridis' }]);
  const dzi = await client.get<Buffer>(`/tiles/${slide.id}/overlays/tissue.dzi`);
  const slideDzi = await client.get<Buffer>(`/tiles/${slide.id}.dzi`);
  t.is(dzi.body.toString(), slideDzi.body.toString().replace('Format="jpeg"', 'Format="png"'), 'the overlay lies on the slide\'s own grid');
  const tile = await client.get<Buffer>(`/tiles/${slide.id}/overlays/tissue_files/0/0_0.png`);
  t.is(tile.status, 200);
  t.is(tile.headers.get('content-type'), 'image/png');
});

test('a worker killed mid-job leaves it to another worker once the lease expires; SIGTERM gives a job back', async (t) => {
  const site = await appliance(t);
  // Migrate the database (and nothing else) through the CLI.
  await site.cli(['migrate']);
  const env = { ...site.env, SLIDEBANK_QUEUE_LEASE_SECONDS: '2', SLIDEBANK_QUEUE_POLL_SECONDS: '0.2', SLIDEBANK_LOG_LEVEL: 'warn' };
  const { svs } = await makeSlide({ width: 3000, height: 2000, levels: 2, seed: 12, out: path.join(site.root, 'gen') });
  // The slide store is where the catalog's relative paths point; an absolute path works as well.
  const slide = await registerSlide(site.database.db, svs);
  const repository = new QueueRepository(site.database.db.knex, site.database.db.dialect);
  const parameters = { size: 16, tissueThreshold: 0, format: 'png', limit: 1_000_000, labels: false, layers: 'paip2019', tumourLayer: 'viable', tumourThreshold: 0.5, maskDownsample: 16, quality: 90 };
  const job = await repository.insert({ type: 'patches', slideId: slide.id, parameters, ownerId: null, maxAttempts: 3 });

  const running = async (notOwner?: string) => {
    const deadline = Date.now() + 180_000;
    for (;;) {
      const now = (await repository.findById(job.id))!;
      if (now.status === 'running' && now.progress > 0 && now.leaseOwner !== notOwner) return now;
      if (now.status !== 'queued' && now.status !== 'running') throw new Error(`job ended ${now.status} before it could be interrupted: ${now.error}`);
      if (Date.now() > deadline) throw new Error(`job never ran: ${JSON.stringify(now)}`);
      await sleep(100);
    }
  };

  // SIGTERM: the worker stops the job, gives it back (attempt not counted) and exits 0.
  const first = spawnCli(['worker'], { env });
  const firstDone = collect(first, 300_000);
  t.teardown(() => void first.kill('SIGKILL'));
  const taken = await running();
  first.kill('SIGTERM');
  const firstExit = await firstDone;
  t.is(firstExit.code, 0, firstExit.stderr);
  const given = (await repository.findById(job.id))!;
  t.is(given.status, 'queued');
  t.is(given.attempts, 0);
  t.is(given.leaseOwner, null);
  t.regex(given.log ?? '', /given back: the worker shut down/);

  // SIGKILL: nothing is given back; the lease runs out and another worker takes the job up.
  const doomed = spawnCli(['worker'], { env });
  const doomedDone = collect(doomed, 300_000);
  t.teardown(() => void doomed.kill('SIGKILL'));
  const second = await running(taken.leaseOwner!);
  doomed.kill('SIGKILL');
  t.is((await doomedDone).signal, 'SIGKILL');
  t.is(second.attempts, 1);

  const rescuer = spawnCli(['worker'], { env });
  const rescuerDone = collect(rescuer, 600_000);
  t.teardown(() => void rescuer.kill('SIGKILL'));
  const deadline = Date.now() + 400_000;
  let last = (await repository.findById(job.id))!;
  while (!['succeeded', 'failed', 'cancelled'].includes(last.status) && Date.now() < deadline) {
    await sleep(250);
    last = (await repository.findById(job.id))!;
  }
  rescuer.kill('SIGTERM');
  await rescuerDone;
  t.is(last.status, 'succeeded', `${last.error}\n${last.log}`);
  t.is(last.attempts, 2, 'the killed attempt counts');
  t.regex(last.log ?? '', new RegExp(`attempt 1 of 3 on ${second.leaseOwner!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\s\\S]*attempt 2 of 3 on `));
  t.deepEqual(last.results!.map((r) => r.name), ['patches.csv', 'patches.json', 'patches.tar']);
});
