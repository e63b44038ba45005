// A job whose disk fills: failed at once with the reason, and nothing of it left on the disk.
import { execFile } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { PARAMETER_SCHEMAS } from '../../server/queue/tasks/index.js';
import { queueBench } from './bench.js';

const run = promisify(execFile);

/** A small tmpfs: a real full disk. Needs the right to mount (root in CI's container); elsewhere the test says why it did not run. */
async function smallDisk(folder: string, size: string): Promise<string | null> {
  await mkdir(folder, { recursive: true });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', folder]);
    return null;
  } catch (error) {
    return `cannot mount a tmpfs (${(error as Error).message.split('\n')[0]})`;
  }
}

test('a heat map whose disk fills fails with "the disk is full", is not retried, and leaves no partial overlay', async (t) => {
  const bench = await queueBench(t);
  const overlays = path.join(bench.config.paths.cache, 'overlays');
  const problem = await smallDisk(overlays, '64k');
  if (problem !== null) {
    if (process.env.SLIDEBANK_REQUIRE_FIXTURES === '1') t.fail(problem);
    else t.log(`not run: ${problem}`);
    t.pass();
    return;
  }
  t.teardown(() => run('umount', [overlays]).then(() => undefined));
  const slide = await bench.slide({ width: 2400, height: 1800, seed: 41 });
  const mask = await bench.repository.insert({ type: 'tissue-mask', slideId: slide.id, parameters: { method: 'grey' }, ownerId: null, maxAttempts: 3 });
  t.true(await bench.worker().runOnce());
  t.is((await bench.repository.findById(mask.id))!.status, 'succeeded');

  const parameters = PARAMETER_SCHEMAS.heatmap.parse({ source: mask.id, name: 'full', sampling: 'bilinear' });
  const job = await bench.repository.insert({ type: 'heatmap', slideId: slide.id, parameters, ownerId: null, maxAttempts: 3 });
  t.true(await bench.worker().runOnce());
  const done = (await bench.repository.findById(job.id))!;
  t.is(done.status, 'failed', done.error ?? '');
  t.is(done.attempts, 1, 'a full disk is not retried');
  t.regex(done.error ?? '', /^the disk is full \(ENOSPC\)/);
  t.is(done.results, null);
  // No descriptor, no tiles: nothing that the tile routes would list.
  const left = await readdir(path.join(overlays, String(slide.id), 'full')).catch(() => [] as string[]);
  t.deepEqual(left.filter((f) => f.endsWith('.dzi') || f.includes('_files')), []);
  t.deepEqual(await readdir(path.join(bench.config.paths.data, 'results')), [String(mask.id)], 'no partial results of the heat map');
});
