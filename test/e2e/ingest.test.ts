/**
 * `slidebank ingest` on the real slides of ../shared/fixtures (they skip where
 * the folder is absent and fail when SLIDEBANK_REQUIRE_FIXTURES=1), checked
 * with OpenSlide as an outside reader.
 */
import { copyFile, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseSlideName } from '../../server/ingest/nomenclature.js';
import { runCli, runCliInProcess } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { fixture, fixtureTest } from '../support/fixtures.js';
import { askOpenSlide, openslideProblem } from '../support/openslide.js';
import { missingFails } from '../support/requirements.js';

/** Identifying values in the originals' descriptions; the label's text is in its pixels, removed with it. */
const IDENTIFYING = {
  'CMU-1-Small-Region.svs': ['CMU-1-Small-Region', 'CPAPERIOCS', '12/29/09', '09:59:15', 'b414003d-95c6-48b0-9369-8010ed517ba7', 'USM Filter', '1004486'],
  'aperio-synthetic-6000x4000.svs': ['aperio-synthetic', 'SYNTH-0001', '01/02/24', '10:11:12', '0b1e2c3d-0000-4000-8000-00000000beef', 'SS9999'],
  'tcga-cr-7395-01a-01-ts1.svs': ['tcga-cr-7395'],
} as const;

const SHEET = [
  'file,organ,histology,stain,marker,differentiation,pathology_info,annotation_method,dataset,collection_date,consent',
  'CMU-1-Small-Region.svs,Liver,Hepatocellular carcinoma,H&E,,Moderately differentiated,,manual,fixtures,2009-12,',
  'aperio-synthetic-6000x4000.svs,CO,ADC,IHC,Ki-67,WD,pT3 N1,AI-assisted,fixtures,2024-01,yes',
  'tcga-cr-7395-01a-01-ts1.svs,Kidney,RCC,HE,,,,manual,fixtures,2010,',
].join('\n');

const EXPECTED = {
  'CMU-1-Small-Region.svs': { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD' },
  'aperio-synthetic-6000x4000.svs': { organ: 'CO', histology: 'ADC', stain: 'IHC', marker: 'KI67', differentiation: 'WD' },
  'tcga-cr-7395-01a-01-ts1.svs': { organ: 'KI', histology: 'RCC', stain: 'HE', marker: null, differentiation: null },
};

fixtureTest('ingest of the fixture slides: label and macro gone for OpenSlide, no identifying value left, pixels unchanged, names parse back', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ingest-e2e-'));
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  await copyFile(fixture('CMU-1-Small-Region.svs'), path.join(inbox, 'CMU-1-Small-Region.svs'));
  await copyFile(fixture('generated/aperio-synthetic-6000x4000.svs'), path.join(inbox, 'aperio-synthetic-6000x4000.svs'));
  await copyFile(fixture('tcga-cr-7395-01a-01-ts1.svs'), path.join(inbox, 'tcga-cr-7395-01a-01-ts1.svs'));
  await writeFile(path.join(inbox, 'metadata.csv'), `${SHEET}\n`);
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') };

  const run = await runCli(['ingest', inbox, '--json'], { env, timeoutMs: 120_000 });
  t.is(run.code, 0, run.stderr);
  const { results } = JSON.parse(run.stdout) as { results: { file: keyof typeof IDENTIFYING; outcome: string; name: string; reason: string | null }[] };
  t.deepEqual(results.map((r) => `${r.file}: ${r.outcome}`).sort(), Object.keys(IDENTIFYING).map((f) => `${f}: published`).sort());

  for (const result of results) {
    t.like(parseSlideName(result.name), EXPECTED[result.file], `${result.file}: the name parses back to its metadata`);
    const published = path.join(root, 'var', 'slides', `${result.name}.svs`);
    const bytes = await readFile(published);
    for (const value of IDENTIFYING[result.file]) {
      t.false(bytes.includes(Buffer.from(value, 'latin1')), `${result.file}: "${value}" is not in the published bytes`);
    }
    if (openslideProblem) {
      if (missingFails()) t.fail(openslideProblem);
      else t.log(`the comparison with OpenSlide is skipped: ${openslideProblem}`);
      continue;
    }
    const original = path.join(inbox, result.file);
    const before = await askOpenSlide(original, {});
    const regions = before.levels.map(([w, h], level): [number, number, number, number, number] => [level, 0, 0, Math.min(w, 2048), Math.min(h, 2048)]);
    const [a, b] = await Promise.all([askOpenSlide(original, { regions }), askOpenSlide(published, { regions })]);
    t.is(b.vendor, 'aperio');
    t.false('label' in b.associated, `${result.file}: OpenSlide lists no label`);
    t.false('macro' in b.associated, `${result.file}: OpenSlide lists no macro`);
    t.deepEqual(b.levels, a.levels, `${result.file}: same pyramid`);
    t.is(b.properties['openslide.mpp-x'], a.properties['openslide.mpp-x']);
    for (const key of ['aperio.Filename', 'aperio.Date', 'aperio.Time', 'aperio.User', 'aperio.ScanScope ID', 'aperio.ImageID']) {
      t.false(key in b.properties, `${result.file}: ${key} is gone`);
    }
    for (let i = 0; i < regions.length; i++) {
      t.true((await readFile(a.regions[i]!.file)).equals(await readFile(b.regions[i]!.file)), `${result.file}: level ${i} reads the same pixels`);
    }
  }

  const again = await runCli(['ingest', inbox], { env, timeoutMs: 120_000 });
  t.is(again.code, 0, 'a second ingest only finds duplicates, which is not a failure');
  t.regex(again.stdout, /3 slide\(s\): 3 duplicate/);
  t.regex(again.stdout, /^duplicate\s+CMU-1-Small-Region\.svs\s+already published as SB1-LV-HCC-HE-MD-/m);
});

fixtureTest('ingest of an unreadable fixture quarantines it and exits 1 with the reason in the table', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ingest-e2e-'));
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  await copyFile(fixture('unopenable.tiff'), path.join(root, 'unopenable.tiff'));
  const run = await runCli(['ingest', root, '--organ', 'kidney', '--histology', 'renal cell carcinoma', '--stain', 'HE'], {
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') },
  });
  t.is(run.code, 1);
  t.regex(run.stdout, /^quarantined\s+unopenable\.tiff\s+cannot be read as a slide: level 0: unsupported compression 52479$/m);
  t.regex(run.stdout, /1 slide\(s\): 1 quarantined/);

  const bad = await runCliInProcess(['ingest', root, '--organ', 'spleen'], { env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') } });
  t.is(bad.code, 2);
  t.regex(bad.stderr, /the metadata options are not valid: .*unknown organ "spleen"; allowed: LV \(Liver\)/);
});
