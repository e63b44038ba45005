import { mkdir, mkdtemp, readdir, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { makeSlide } from '../support/slides.js';
import { runCli, runCliInProcess } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';

test('cron run inbox-ingest takes in settled slides, quarantines bad ones, leaves files still being copied, and cron list shows the run', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-cron-'));
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') };
  const inbox = path.join(root, 'var', 'inbox');
  await mkdir(inbox, { recursive: true });
  const settled = await makeSlide({ width: 2000, height: 1500, seed: 21, out: inbox, name: 'settled' });
  await makeSlide({ width: 2000, height: 1500, seed: 22, out: inbox, name: 'copying' });
  await writeFile(path.join(inbox, 'broken.svs'), 'not a slide at all');
  await writeFile(
    path.join(inbox, 'metadata.csv'),
    ['file,organ,histology,stain,collection_date', 'settled,KI,RCC,HE,2011', 'copying,KI,RCC,HE,2011', 'broken,KI,RCC,HE,2011'].join('\n'),
  );
  const old = new Date(Date.now() - 5 * 60_000);
  for (const file of [settled.svs, settled.xml, path.join(inbox, 'broken.svs')]) await utimes(file, old, old);

  const list = await runCli(['cron', 'list'], { env });
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^inbox-ingest\s+on demand\s+never run/m);

  const run = await runCli(['cron', 'run', 'inbox-ingest'], { env, timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  t.like(JSON.parse(run.stdout), { job: 'inbox-ingest', status: 'succeeded', summary: { slides: 2, published: 1, quarantined: 1, unsettled: 1 } });

  const left = (await readdir(inbox)).sort();
  t.true(left.includes('copying.svs'), 'a slide still being copied waits for the next run');
  t.false(left.includes('settled.svs') || left.includes('settled.xml'), 'the published original left the inbox');
  t.false(left.includes('broken.svs'), 'the quarantined original left the inbox');
  t.true(left.includes('metadata.csv'));
  const originals = await readdir(path.join(root, 'var', 'originals'));
  t.is(originals.filter((f) => f.endsWith('.svs')).length, 1, 'kept under its hash in paths.originals');
  const quarantine = await readdir(path.join(root, 'var', 'quarantine'));
  t.is(quarantine.length, 1);
  t.true((await readdir(path.join(root, 'var', 'quarantine', quarantine[0]!))).includes('broken.svs'));

  const after = await runCli(['cron', 'list'], { env });
  t.regex(after.stdout, /^inbox-ingest\s+on demand\s+last run \S+ succeeded/m);
});

test('cron run refuses an unknown job and a malformed --now with exit code 2', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-cron-'));
  const env = { SLIDEBANK_PATHS_DATA: path.join(root, 'var') };
  const unknown = await runCliInProcess(['cron', 'run', 'no-such-job'], { env });
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /no job "no-such-job"; the jobs are: inbox-ingest/);
  const badNow = await runCliInProcess(['cron', 'run', 'inbox-ingest', '--now', 'next tuesday'], { env });
  t.is(badNow.code, 2);
  t.regex(badNow.stderr, /--now: "next tuesday" is not an ISO date/);
  const badSchedule = await runCliInProcess(['cron', 'list'], { env: { ...env, SLIDEBANK_INGEST_INBOX_SCHEDULE: 'every minute' } });
  t.is(badSchedule.code, 2);
  t.regex(badSchedule.stderr, /ingest\.inboxSchedule \(env SLIDEBANK_INGEST_INBOX_SCHEDULE\): must be a cron expression/);
});
