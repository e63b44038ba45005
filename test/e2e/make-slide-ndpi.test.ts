import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { SlideTruth } from '../../server/wsi/generate/index.js';
import { Slide } from '../../server/wsi/index.js';
import { runCli, runCliInProcess } from '../support/cli.js';

test('make-slide --format ndpi writes an NDPI that the slide engine reads as hamamatsu', async (t) => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-make-slide-ndpi-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const result = await runCli(['make-slide', '--format', 'ndpi', '--width', '1000', '--height', '700', '--levels', '2', '--restart-interval', '8', '--seed', '4', '--out', out, '--name', 'scan']);
  t.is(result.code, 0, result.stderr);
  const expected = ['scan.ndpi', 'scan.xml', 'scan.truth.json'].map((f) => path.join(out, f));
  t.deepEqual(result.stdout.trim().split('\n'), expected);
  t.regex(result.stderr, /^make-slide: 1000x700, 2 level\(s\), [\d.]+ MB in [\d.]+ s$/m);
  const truth = JSON.parse(await readFile(expected[2]!, 'utf8')) as SlideTruth;
  t.like(truth, { width: 1000, height: 700, seed: 4, tiff: 'ndpi' });
  const slide = await Slide.open(expected[0]!);
  t.teardown(() => slide.close());
  t.is(slide.vendor, 'hamamatsu');
  t.deepEqual([slide.width, slide.height], [1000, 700]);
  // 125 MCUs a row: the largest interval of at most 8 MCUs that divides it is 5 (40 pixels).
  t.is(slide.properties['openslide.level[0].tile-width'], '40');
  t.is(slide.properties['hamamatsu.NDP.S/N'], truth.ndpi!.serial);
  t.is(slide.properties['hamamatsu.Created'], truth.ndpi!.created);
});

test('make-slide refuses a bad --format or --restart-interval, naming the flag', async (t) => {
  const format = await runCliInProcess(['make-slide', '--format', 'mrxs', '--width', '512', '--height', '512', '--out', os.tmpdir()]);
  t.is(format.code, 2);
  t.regex(format.stderr, /--format must be one of svs, ndpi, got mrxs/);
  const interval = await runCliInProcess(['make-slide', '--format', 'ndpi', '--restart-interval', '0', '--width', '512', '--height', '512', '--out', os.tmpdir()]);
  t.is(interval.code, 2);
  t.regex(interval.stderr, /--restart-interval must be a whole number from 1 to 4096 MCUs, got 0/);
});
