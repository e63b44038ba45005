import { execFileSync } from 'node:child_process';
import { copyFile, mkdir, readFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import { parseAperioXml } from '../../server/annotations/index.js';
import { openOriginalName } from '../../server/ingest/linkage.js';
import { parseSlideName } from '../../server/ingest/nomenclature.js';
import { type SlideTruth } from '../../server/wsi/generate/index.js';
import { makeSlide } from '../support/slides.js';
import { readDirectories } from '../../server/wsi/tiff/directory.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { Slide } from '../../server/wsi/index.js';
import { testDialect } from '../support/database.js';
import { ingestBench } from '../support/ingest.js';

const GOOD_ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

/** A small generated slide with label, macro, identifying fields and its XML, under `name`. */
async function generated(dir: string, name: string, seed: number): Promise<{ svs: string; xml: string; truth: SlideTruth }> {
  const made = await makeSlide({ width: 2400, height: 1800, seed, out: dir, name, tileSize: 240 });
  return { svs: made.svs, xml: made.xml, truth: JSON.parse(await readFile(made.truth, 'utf8')) as SlideTruth };
}

async function writeSheet(dir: string, rows: Record<string, string>[]): Promise<void> {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  await writeFile(path.join(dir, 'metadata.csv'), stringify(rows, { header: true, columns }));
}

/** Every tile or strip of every directory, as stored. */
async function storedChunks(file: string): Promise<Buffer[][]> {
  const handle = await RandomAccessFile.open(file);
  try {
    const directories = await readDirectories(handle);
    const out: Buffer[][] = [];
    for (const d of directories.filter((x) => x.tiled)) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < d.offsets.length; i++) chunks.push(await handle.read(d.offsets[i]!, d.byteCounts[i]!, 'tile'));
      out.push(chunks);
    }
    return out;
  } finally {
    await handle.close();
  }
}

test(`a generated slide with its XML is published de-identified, named, catalogued and thumbnailed on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const { svs, xml, truth } = await generated(bench.inbox, 'case-0001', 7);
  await writeSheet(bench.inbox, [{ file: 'case-0001.svs', ...GOOD_ROW, pathology_info: 'trabecular pattern', collection_date: '2012-01', consent: '' }]);
  const originalBytes = await readFile(svs);

  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  t.is(results.length, 1);
  const [result] = results;
  t.is(result!.outcome, 'published', result!.reason ?? '');
  t.truthy(result!.name);

  const published = path.join(bench.config.paths.slides, `${result!.name}.svs`);
  const bytes = await readFile(published);
  for (const [key, value] of Object.entries(truth.identifying)) {
    t.false(bytes.includes(Buffer.from(value, 'latin1')), `the original's ${key} is gone`);
  }
  t.false(bytes.includes(Buffer.from('case-0001')), 'the original file name is gone');

  const slide = await Slide.open(published);
  t.teardown(() => slide.close());
  t.deepEqual(slide.associatedImages, ['thumbnail'], 'label and macro are removed');
  t.deepEqual(slide.levels.map((l) => [l.width, l.height]), truth.levels.map((l) => [l.width, l.height]));
  t.is(slide.mpp?.x, truth.mpp);
  t.is(slide.objectivePower, truth.objectivePower);
  t.deepEqual(await storedChunks(published), await storedChunks(svs), 'every tile of every level is byte for byte the original');

  const parsed = parseSlideName(result!.name!);
  t.like(parsed, { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD' });

  const row = await bench.database.db.knex('slides').where({ id: result!.slideId }).first();
  t.like(row, { name: result!.name, organ: 'LV', histology: 'HCC', stain: 'HE', differentiation: 'MD', annotation_method: 'M', dataset: 'test', pathology_info: 'trabecular pattern', status: 'published' });
  t.is(row.sha256, result!.report.sha256);
  t.is(Number(row.file_size), bytes.length);
  t.is(row.original_sha256, (await import('node:crypto')).createHash('sha256').update(originalBytes).digest('hex'));
  const summary = JSON.parse(row.annotation_summary as string) as { layers: { id: number; regions: number; holes: number }[]; tumourAreaPx: number };
  t.deepEqual(summary.layers.map((l) => l.id), [1, 2]);
  t.true(Math.abs(summary.tumourAreaPx - truth.areas.wholeTumour) / truth.areas.wholeTumour < 0.01, 'tumour area from the XML matches the truth');

  const scrubbed = await readFile(path.join(bench.config.paths.slides, `${result!.name}.xml`), 'utf8');
  t.is(parseAperioXml(scrubbed).layers.length, parseAperioXml(await readFile(xml, 'utf8')).layers.length);

  const thumbnails = (await readdir(bench.config.paths.thumbnails)).sort();
  t.deepEqual(thumbnails, [`${result!.slideId}-large.jpeg`, `${result!.slideId}-small.jpeg`]);
  t.deepEqual(await readdir(bench.config.paths.originals), [`${row.original_sha256}.svs`, `${row.original_sha256}.xml`]);
  t.true((await stat(svs)).isFile(), 'a CLI ingest leaves the curator’s folder alone');

  const record = await bench.repository.forSlide(result!.slideId!);
  const report = record!.report as { directories: { role: string; action: string }[]; checks: { name: string; passed: boolean }[] };
  t.deepEqual(
    report.directories.map((d) => `${d.role}:${d.action}`),
    ['level:copied', 'thumbnail:copied', 'level:copied', 'label:removed', 'macro:removed'],
  );
  t.true(report.checks.length >= 5 && report.checks.every((c) => c.passed));
  t.false(JSON.stringify(report).includes(truth.identifying.Filename!), 'the report names fields, never their values');
  t.is(await bench.database.db.knex('slide_linkage').count({ n: '*' }).then((r) => Number(r[0]!.n)), 0, 'no linkage without a key');

  const again = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  t.is(again.results[0]!.outcome, 'duplicate');
  t.regex(again.results[0]!.reason!, new RegExp(`already published as ${result!.name}`));
  t.is(await bench.repository.slideCount(), 1);
});

test(`bad slides and annotations are quarantined with their reason while the rest of the batch is published on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const dir = bench.inbox;
  await generated(dir, 'good', 1);
  const cut = await generated(dir, 'truncated', 2);
  await truncate(cut.svs, Math.floor((await stat(cut.svs)).size * 0.6));
  await writeFile(path.join(dir, 'notatiff.svs'), 'this is a text file with a slide extension\n');
  const badXml = await generated(dir, 'badxml', 3);
  await writeFile(badXml.xml, '<Annotations><Annotation Id="1"><Regions><Region Id="1"><Vertices><Vertex X="1" Y="2"/>');
  const outside = await generated(dir, 'outside', 4);
  await writeFile(outside.xml, (await readFile(outside.xml, 'utf8')).replace(/X="(\d+)/g, (_, x: string) => `X="${Number(x) + 50_000}`));
  await writeSheet(
    dir,
    ['good', 'truncated', 'notatiff', 'badxml', 'outside'].map((file) => ({ file, ...GOOD_ROW })),
  );

  const { results } = await bench.service.ingestFolder(dir, { source: 'cli' });
  const by = Object.fromEntries(results.map((r) => [r.file, r]));
  t.is(by['good.svs']!.outcome, 'published');
  t.is(by['truncated.svs']!.outcome, 'quarantined');
  t.regex(by['truncated.svs']!.reason!, /cannot be read as a slide: .*(truncated|past the end|directory)/);
  t.is(by['notatiff.svs']!.outcome, 'quarantined');
  t.regex(by['notatiff.svs']!.reason!, /not a TIFF file/);
  t.is(by['badxml.svs']!.outcome, 'quarantined');
  t.regex(by['badxml.svs']!.reason!, /^annotation XML: /);
  t.is(by['outside.svs']!.outcome, 'quarantined');
  t.regex(by['outside.svs']!.reason!, /annotation XML does not fit the 2400×1800 slide/);
  for (const r of results) t.false(r.reason?.includes(dir) ?? false, 'reasons do not carry the folder path');

  const store = await readdir(bench.config.paths.slides);
  t.deepEqual(store.sort(), [`${by['good.svs']!.name}.svs`, `${by['good.svs']!.name}.xml`].sort(), 'nothing partial in the store');
  const quarantined = results.filter((r) => r.outcome === 'quarantined');
  for (const r of quarantined) {
    t.truthy(r.quarantinePath);
    t.is((await readFile(path.join(r.quarantinePath!, 'reason.txt'), 'utf8')).trim(), r.reason!);
    t.true((await readdir(r.quarantinePath!)).includes(r.file), 'the original waits in quarantine');
  }
  t.is(await bench.repository.slideCount(), 1);
  const records = await bench.repository.list();
  t.deepEqual(records.map((r) => r.outcome).sort(), ['published', 'quarantined', 'quarantined', 'quarantined', 'quarantined']);
});

test(`metadata problems and name clashes refuse a slide with the rule, and publish nothing for it, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const dir = bench.inbox;
  await generated(dir, 'norow', 1);
  await generated(dir, 'badorgan', 2);
  await generated(dir, 'nomarker', 3);
  await generated(dir, 'consent', 4);
  await generated(dir, 'named', 5);
  const twin = await generated(dir, 'twin', 6);
  await copyFile(twin.svs, path.join(dir, 'twin.tif'));
  await writeSheet(dir, [
    { file: 'badorgan', ...GOOD_ROW, organ: 'Spleen' },
    { file: 'nomarker', ...GOOD_ROW, stain: 'IHC' },
    { file: 'consent', ...GOOD_ROW, collection_date: '2019-03', consent: 'no' },
    { file: 'named', ...GOOD_ROW, pathology_info: 'seen by Dr. Hwang' },
    { file: 'twin', ...GOOD_ROW },
  ]);
  const { results } = await bench.service.ingestFolder(dir, { source: 'cli' });
  const reason = (file: string) => results.find((r) => r.file === file)!;
  t.like(reason('norow.svs'), { outcome: 'refused' });
  t.regex(reason('norow.svs').reason!, /no metadata: add a row/);
  t.regex(reason('badorgan.svs').reason!, /unknown organ "Spleen"; allowed: LV \(Liver\)/);
  t.regex(reason('nomarker.svs').reason!, /rule: stain IHC requires a marker/);
  t.regex(reason('consent.svs').reason!, /rule: consent required for specimens collected from 2013-02/);
  t.regex(reason('named.svs').reason!, /pathology_info looks like it holds an identifier/);
  t.like(reason('twin.svs'), { outcome: 'refused' });
  t.regex(reason('twin.tif').reason!, /name clash: twin.svs and twin.tif share the base name/);
  t.true(results.every((r) => r.outcome === 'refused'));
  t.deepEqual(await readdir(bench.config.paths.slides).catch(() => []), []);

  const fallback = await bench.service.ingestFolder(path.join(dir), {
    source: 'cli',
    fallback: { organ: 'KI', histology: 'RCC', stain: 'HE', marker: null, differentiation: null, pathologyInfo: null, annotationMethod: null, dataset: null },
  });
  t.is(fallback.results.find((r) => r.file === 'norow.svs')!.outcome, 'published', 'a slide without a row takes the folder-wide metadata');
});

test(`with a linkage key the original name is kept sealed, and opens only with the key, on ${testDialect}`, async (t) => {
  const key = 'a'.repeat(64);
  const bench = await ingestBench(t, { SLIDEBANK_INGEST_LINKAGE_KEY: key });
  await generated(bench.inbox, 'linked-case', 9);
  await writeSheet(bench.inbox, [{ file: 'linked-case', ...GOOD_ROW }]);
  const [result] = (await bench.service.ingestFolder(bench.inbox, { source: 'cli' })).results;
  t.is(result!.outcome, 'published');
  const row = await bench.database.db.knex('slide_linkage').where({ slide_id: result!.slideId }).first();
  t.false(String(row.original_name_sealed).includes('linked'), 'sealed, not readable');
  t.is(openOriginalName(row.original_name_sealed as string, key), 'linked-case.svs');
  t.throws(() => openOriginalName(row.original_name_sealed as string, 'b'.repeat(64)));
});

/** A real full disk: a 3 MiB tmpfs as the slide store. Needs root (CI runs as root); skips elsewhere. */
function mountSmallDisk(dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return (error as { stderr?: Buffer }).stderr?.toString().trim() || (error as Error).message;
  }
}

test(`a full disk while writing fails the slide with ENOSPC, publishes nothing and leaves the original, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const store = bench.config.paths.slides;
  await mkdir(store, { recursive: true });
  const problem = mountSmallDisk(store);
  if (problem) {
    if (process.env.SLIDEBANK_REQUIRE_FIXTURES === '1') t.fail(`cannot mount a small tmpfs: ${problem}`);
    else t.log(`skipped: cannot mount a small tmpfs (${problem})`);
    t.pass();
    return;
  }
  t.teardown(() => {
    execFileSync('umount', [store]);
  });
  const big = await makeSlide({ width: 9000, height: 6000, seed: 11, out: bench.inbox, name: 'big', quality: 95 });
  const small = await generated(bench.inbox, 'small', 12);
  t.true((await stat(big.svs)).size > 3 * 1024 * 1024, 'the big slide cannot fit');
  await writeSheet(bench.inbox, ['big', 'small'].map((file) => ({ file, ...GOOD_ROW })));

  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  const bigResult = results.find((r) => r.file === 'big.svs')!;
  t.is(bigResult.outcome, 'failed');
  t.regex(bigResult.reason!, /the disk is full \(ENOSPC\) while writing the de-identified copy; nothing was published/);
  t.is(results.find((r) => r.file === 'small.svs')!.outcome, 'published', 'the rest of the batch carries on');
  const left = await readdir(store);
  t.false(left.some((f) => f.includes('partial')), `no partial file is left: ${left.join(', ')}`);
  t.true((await stat(big.svs)).isFile());
  t.true((await stat(small.svs)).isFile());
  t.is(await bench.repository.slideCount(), 1);
});

test(`two ingests of the same original at once publish it once; the other reports a duplicate and leaves nothing behind on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const other = path.join(bench.inbox, '..', 'other');
  await mkdir(other);
  const { svs } = await generated(bench.inbox, 'twice', 31);
  await copyFile(svs, path.join(other, 'twice.svs'));
  for (const dir of [bench.inbox, other]) await writeSheet(dir, [{ file: 'twice', ...GOOD_ROW }]);

  const [a, b] = await Promise.all([bench.service.ingestFolder(bench.inbox, { source: 'cli' }), bench.service.ingestFolder(other, { source: 'inbox' })]);
  const outcomes = [a.results[0]!, b.results[0]!];
  t.deepEqual(outcomes.map((r) => r.outcome).sort(), ['duplicate', 'published']);
  t.regex(outcomes.find((r) => r.outcome === 'duplicate')!.reason!, /already published as|at the same moment/);
  t.is(await bench.repository.slideCount(), 1);
  const published = outcomes.find((r) => r.outcome === 'published')!;
  const store = await readdir(bench.config.paths.slides);
  t.true(store.includes(`${published.name}.svs`));
  t.true(store.every((f) => f.startsWith(`${published.name}.`) && !f.endsWith('.partial')), `only the published slide is in the store: ${store.join(', ')}`);
});
