import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Slide } from '../../server/wsi/index.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { runCli, runCliInProcess } from '../support/cli.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { dciodvfy, dciodvfyProblem } from '../support/dciodvfy.js';
import { testNeeding } from '../support/requirements.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/** `slidebank dicom export <slide> --out DIR`, as an operator runs it. */
testNeeding([dciodvfyProblem], `dicom export writes a published slide as a DICOM series the DICOM reader opens with the slide's levels; the same UIDs twice; refusals (${testDialect})`, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const made = await makeSlide({ width: 1301, height: 999, tileSize: 256, levels: 2, seed: 4, out: dir, name: 'LV-0001-HE' });
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const slide = await registerSlide(database.db, made.svs, 'LV-0001-HE');
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(dir, 'var'), SLIDEBANK_PATHS_SLIDES: dir };

  const out = path.join(dir, 'series');
  const run = await runCli(['dicom', 'export', String(slide.id), '--out', out], { env });
  t.is(run.code, 0, run.stderr);
  t.deepEqual((await readdir(out)).sort(), ['level-0.dcm', 'level-1.dcm', 'thumbnail.dcm']);
  t.regex(run.stdout, /level-0\.dcm\tvolume 0, 24 frame\(s\), YBR_FULL_422, 1\.2\.840\.10008\.1\.2\.4\.50, \d+ bytes/);
  for (const file of await readdir(out)) t.deepEqual((await dciodvfy(path.join(out, file))).errors, [], file);

  const original = await Slide.open(made.svs);
  const copy = await Slide.open(out);
  t.deepEqual(
    copy.levels.map((l) => [l.width, l.height, l.tileWidth, l.tileHeight]),
    original.levels.map((l) => [l.width, l.height, l.tileWidth, l.tileHeight]),
  );
  await copy.close();
  await original.close();

  // Again, under a configured UID root: the same slide names the same study each time.
  const rooted = { ...env, SLIDEBANK_DICOM_UID_ROOT: '1.2.826.0.1.3680043.10.999' };
  const first = await runCli(['dicom', 'export', String(slide.id), '--out', path.join(dir, 'a')], { env: rooted });
  const second = await runCli(['dicom', 'export', String(slide.id), '--out', path.join(dir, 'b')], { env: rooted });
  t.is(first.code, 0, first.stderr);
  t.regex(first.stderr, /study 1\.2\.826\.0\.1\.3680043\.10\.999\.\d+, series 1\.2\.826\.0\.1\.3680043\.10\.999\.\d+/);
  t.is(first.stderr.split('\n').find((l) => l.startsWith('study')), second.stderr.split('\n').find((l) => l.startsWith('study')));

  // Refusals: a slide that is not published, an unknown one (exit 1), not an id, a bad UID root (exit 2).
  const withdrawn = await new SlidesRepository(database.db.knex).create({
    name: 'LV-0002-HE', filePath: made.svs, sha256: null, fileSize: 1, vendor: 'aperio', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null, status: 'withdrawn',
  });
  const notPublished = await runCli(['dicom', 'export', String(withdrawn.id), '--out', path.join(dir, 'none')], { env });
  t.is(notPublished.code, 1);
  t.regex(notPublished.stderr, /LV-0002-HE\) is withdrawn, not published/);
  const unknown = await runCli(['dicom', 'export', '999', '--out', path.join(dir, 'none')], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /no slide 999/);
  const notId = await runCliInProcess(['dicom', 'export', 'LV-0001-HE', '--out', path.join(dir, 'none')], { env });
  t.is(notId.code, 2);
  t.regex(notId.stderr, /slide id/);
  const badRoot = await runCliInProcess(['dicom', 'export', String(slide.id), '--out', path.join(dir, 'none')], { env: { ...env, SLIDEBANK_DICOM_UID_ROOT: '1.02.x' } });
  t.is(badRoot.code, 2);
  t.regex(badRoot.stderr, /dicom\.uidRoot/);
});
