// Slides only OpenSlide reads are converted at ingest (libvips' openslideload) into a tiled pyramidal
// TIFF that goes through the same de-identification and verification as any TIFF: a Hamamatsu VMS
// (an index file and its JPEGs) published with pixels close to OpenSlide's reads of the original
// and none of its identifiers; a converter that hangs or crashes quarantines the slide with the
// reason, publishes nothing and leaves no temporary file; an MRXS without its data folder is
// quarantined.
import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import { discoverFolder } from '../../server/ingest/discover.js';
import { Slide } from '../../server/wsi/index.js';
import { testDialect } from '../support/database.js';
import { ingestBench, type IngestBench } from '../support/ingest.js';
import { askOpenSlide, openslideProblem, psnr } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';
import { writeVms } from '../support/vms.js';

const GOOD_ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

const vipsProblem = ((): string | undefined => {
  try {
    execFileSync('vips', ['--version'], { stdio: 'ignore' });
    execFileSync('vipsheader', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'vips and vipsheader are not installed (apt-get install libvips-tools)';
  }
})();

async function ingestAll(bench: IngestBench, files: string[]) {
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify(files.map((file) => ({ file, ...GOOD_ROW })), { header: true }));
  return bench.service.ingestFolder(bench.inbox, { source: 'cli' });
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.relative(dir, path.join(e.parentPath, e.name))).sort();
}

/** A stand-in converter: a shell script given the converter's arguments. */
async function fakeConverter(bench: IngestBench, name: string, body: string): Promise<string> {
  const file = path.join(path.dirname(bench.inbox), `${name}.sh`);
  await writeFile(file, `#!/bin/sh\n${body}\n`);
  await chmod(file, 0o755);
  return file;
}

test('a VMS index and the JPEGs it names are one slide in the folder, its annotation named after the index', async (t) => {
  const bench = await ingestBench(t);
  const vms = await writeVms(bench.inbox, 'case-7');
  await writeFile(path.join(bench.inbox, 'case-7.xml'), '<Annotations/>');
  const folder = await discoverFolder(bench.inbox);
  t.deepEqual(folder.candidates.map((c) => c.fileName), ['case-7.vms']);
  t.deepEqual(folder.candidates[0]!.companions!.map((f) => path.basename(f)).sort(), vms.jpegs.map((f) => path.basename(f)).sort());
  t.is(folder.candidates[0]!.xml, path.join(bench.inbox, 'case-7.xml'));
  t.deepEqual(folder.ignored, [], 'the JPEGs are not offered as other files');
});

testNeeding([vipsProblem, openslideProblem], `a VMS only OpenSlide reads is converted to a tiled TIFF and published: pixels close to OpenSlide's, identifiers gone, MPP and objective carried over, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const vms = await writeVms(bench.inbox, 'case-vms');
  const stages = new Set<string>();
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify([{ file: 'case-vms.vms', ...GOOD_ROW }], { header: true }));
  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli', onProgress: (p) => stages.add(p.stage) });
  const result = results[0]!;
  t.is(result.outcome, 'published', result.reason ?? '');
  t.true(stages.has('converting'), 'conversion reports progress');
  t.like(result.report, { originalFormat: 'vms', conversion: { reEncoded: true, vendor: 'hamamatsu', format: 'vms', quality: 90 } });
  t.true(result.report.checks!.every((c) => c.passed), JSON.stringify(result.report.checks));

  const published = path.join(bench.config.paths.slides, `${result.name}.tif`);
  t.deepEqual(await filesUnder(bench.config.paths.slides), [`${result.name}.tif`], 'the published TIFF only: no temporary folder left');
  const bytes = await readFile(published);
  for (const [key, value] of Object.entries(vms.identifiers)) t.false(bytes.includes(Buffer.from(value, 'latin1')), `the original's ${key} is gone`);
  t.false(bytes.includes(Buffer.from('case-vms')), 'the original file name is gone');
  const scan = result.report.checks!.find((c) => c.name === 'no identifying value anywhere in the file')!;
  t.regex(scan.detail, /searched \d+ bytes for \d+ values/);

  const row = await bench.database.db.knex('slides').where({ id: result.slideId }).first();
  t.like(row, { width: vms.width, height: vms.height, objective_power: 20, scanner_vendor: 'hamamatsu', original_format: 'vms' });
  t.true(Math.abs(Number(row.mpp_x) - 0.5) < 1e-3, `MPP carried over (${row.mpp_x})`);

  const regions: [number, number, number, number, number][] = [
    [0, 0, 0, 512, 384],
    [0, 300, 200, 600, 500],
  ];
  const original = await askOpenSlide(vms.index, { regions });
  const reread = await askOpenSlide(published, { regions });
  t.is(reread.vendor, 'generic-tiff');
  t.true(Object.keys(reread.associated).length === 0, 'no label, macro or thumbnail');
  const slide = await Slide.open(published);
  t.teardown(() => slide.close());
  for (const [i, [level, x, y, w, h]] of regions.entries()) {
    const theirs = await readFile(original.regions[i]!.file);
    const quality = psnr(theirs, await readFile(reread.regions[i]!.file));
    t.true(quality > 35, `region ${i}: OpenSlide reads the published TIFF within ${quality.toFixed(1)} dB of the original`);
    const engine = psnr(theirs, (await slide.readRegion(level, x, y, w, h)).data);
    t.true(engine > 35, `region ${i}: the engine reads it within ${engine.toFixed(1)} dB`);
  }
});

for (const [what, body, reason] of [
  ['hangs', 'sleep 600', /did not finish within 2 s \(ingest\.conversionTimeoutSeconds\) and was stopped/],
  ['crashes', 'echo "out of cheese" >&2; : > "$TMPDIR/half-written.tif"; exit 3', /failed \(exit status 3: out of cheese\)/],
] as const) {
  testNeeding([vipsProblem, openslideProblem], `a converter that ${what} quarantines the slide with the reason, publishes nothing and leaves no temporary file, on ${testDialect}`, async (t) => {
    const probe = await ingestBench(t);
    const converter = await fakeConverter(probe, what, body);
    const bench = await ingestBench(t, { SLIDEBANK_INGEST_CONVERTER: converter, SLIDEBANK_INGEST_CONVERSION_TIMEOUT_SECONDS: '2' });
    await writeVms(bench.inbox, 'case-bad');
    const { results } = await ingestAll(bench, ['case-bad.vms']);
    const result = results[0]!;
    t.is(result.outcome, 'quarantined');
    t.regex(result.reason!, reason);
    t.like(result.report, { conversion: { reEncoded: true, vendor: 'hamamatsu', format: 'vms' } });
    t.deepEqual(await filesUnder(bench.config.paths.slides), [], 'nothing in the slide store, not even a temporary file');
    t.is(await bench.repository.slideCount(), 0);
    const waiting = await readdir(result.quarantinePath!);
    t.true(['case-bad.vms', 'case-bad.jpg', 'case-bad_map.jpg', 'case-bad_macro.jpg'].every((f) => waiting.includes(f)), 'the whole slide waits in quarantine');
    t.is((await readFile(path.join(result.quarantinePath!, 'reason.txt'), 'utf8')).trim(), result.reason!);
  });
}

test(`an MRXS without its data folder is quarantined with the reason, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  await writeFile(path.join(bench.inbox, 'case-mrxs.mrxs'), 'not much here');
  const { results, ignored } = await ingestAll(bench, ['case-mrxs.mrxs']);
  t.deepEqual(ignored, []);
  const result = results[0]!;
  t.is(result.outcome, 'quarantined');
  t.regex(result.reason!, /the MRXS index has no data folder case-mrxs\/ beside it/);
  t.deepEqual(await filesUnder(bench.config.paths.slides), []);
  t.is(await bench.repository.slideCount(), 0);
});

test(`an MRXS with its data folder is one slide: the folder goes with it into quarantine when OpenSlide cannot read it, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  await writeFile(path.join(bench.inbox, 'case-m.mrxs'), 'not much here');
  await mkdir(path.join(bench.inbox, 'case-m'));
  await writeFile(path.join(bench.inbox, 'case-m', 'Slidedat.ini'), '[GENERAL]\n');
  const { results } = await ingestAll(bench, ['case-m.mrxs']);
  const result = results[0]!;
  t.not(result.outcome, 'published');
  if (result.quarantinePath) t.deepEqual(await filesUnder(result.quarantinePath), ['case-m.mrxs', 'case-m/Slidedat.ini', 'reason.txt', 'report.json']);
  else t.regex(result.reason!, /install the Debian packages libvips-tools/);
});
