/**
 * `slidebank ingest` of DICOM whole-slide series as an operator runs it (the
 * built command on ../shared/fixtures/dicom): a series folder and a single
 * file published as series folders, a folder mixing two series quarantined
 * with the reason; the exit code says so.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../support/cli.js';
import { createTestDatabase } from '../support/database.js';
import { fixture, fixturesDir, fixtureTest } from '../support/fixtures.js';

const ROW = 'Liver,HCC,H&E,,MD,,manual,fixtures,2010,';

fixtureTest('slidebank ingest takes a DICOM series folder and a .dcm file, publishes each as a series folder, and quarantines a folder of two series', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ingest-dicom-e2e-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const inbox = path.join(root, 'in');
  await mkdir(path.join(inbox, 'case-3dhistech'), { recursive: true });
  const wg26 = path.join(fixturesDir, 'dicom/wg26-bpaec');
  for (const name of await readdir(wg26)) await copyFile(path.join(wg26, name), path.join(inbox, 'case-3dhistech', name));
  await copyFile(fixture('dicom/wsi2dcm/jpeg2000.dicom'), path.join(inbox, 'case-j2k.dicom'));
  await mkdir(path.join(inbox, 'case-mixed'));
  await copyFile(fixture('dicom/wsi2dcm/jpeg.dicom'), path.join(inbox, 'case-mixed', 'a.dcm'));
  await copyFile(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'), path.join(inbox, 'case-mixed', 'b.dcm'));
  await writeFile(
    path.join(inbox, 'metadata.csv'),
    ['file,organ,histology,stain,marker,differentiation,pathology_info,annotation_method,dataset,collection_date,consent', ...['case-3dhistech', 'case-j2k.dicom', 'case-mixed'].map((f) => `${f},${ROW}`)].join('\n') + '\n',
  );
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') };

  const run = await runCli(['ingest', inbox, '--json'], { env, timeoutMs: 180_000 });
  t.is(run.code, 1, 'a quarantined slide makes the command exit 1');
  const { results } = JSON.parse(run.stdout) as { results: { file: string; outcome: string; name: string | null; reason: string | null }[] };
  const byFile = new Map(results.map((r) => [r.file, r]));
  t.deepEqual([...byFile.keys()].sort(), ['case-3dhistech', 'case-j2k.dicom', 'case-mixed']);
  t.is(byFile.get('case-3dhistech')!.outcome, 'published', byFile.get('case-3dhistech')!.reason ?? '');
  t.is(byFile.get('case-j2k.dicom')!.outcome, 'published', byFile.get('case-j2k.dicom')!.reason ?? '');
  t.is(byFile.get('case-mixed')!.outcome, 'quarantined');
  t.regex(byFile.get('case-mixed')!.reason!, /mixes instances of 2 series/);

  const slides = path.join(root, 'var', 'slides');
  t.deepEqual((await readdir(path.join(slides, byFile.get('case-3dhistech')!.name!))).length, 8);
  t.deepEqual(await readdir(path.join(slides, byFile.get('case-j2k.dicom')!.name!)), ['level-0.dcm']);
  // The folder's name is itself identifying: it is nowhere in the published bytes.
  for (const result of [byFile.get('case-3dhistech')!, byFile.get('case-j2k.dicom')!]) {
    for (const file of await readdir(path.join(slides, result.name!))) {
      const bytes = await readFile(path.join(slides, result.name!, file));
      t.false(bytes.includes(Buffer.from(result.file.replace(/\.dicom$/, ''), 'latin1')), `${result.file}/${file}`);
    }
  }
});
