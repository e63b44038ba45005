// Export bags with the DICOM form of each slide (`slidebank export --dicom`).
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { validateBag } from '../../server/bagit/index.js';
import { readSlideFacts } from '../../server/catalog/slide-facts.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { loadConfig } from '../../server/config/index.js';
import { createDatasetsService, createExportService, ensureSiteKey } from '../../server/datasets/index.js';
import { createDicomExportService } from '../../server/dicom/export/index.js';
import { sha256File } from '../../server/lib/hashing.js';
import { packageRoot } from '../../server/package-info.js';
import { Slide } from '../../server/wsi/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { makeSlide } from '../support/slides.js';

test(`an export bag with --dicom carries each slide's DICOM series in data/dicom/<slide>/, byte for byte what dicom export writes; not with --holey (${testDialect})`, async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-bag-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var') } });
  await mkdir(config.paths.slides, { recursive: true });

  const made = await makeSlide({ width: 1100, height: 733, tileSize: 240, levels: 2, seed: 6, out: path.join(root, 'made') });
  const names = ['SB1-LV-HCC-HE-MD-00-00-DCM00001', 'SB1-LV-HCC-HE-MD-00-00-DCM00002'];
  const ids: number[] = [];
  for (const name of names) {
    const file = path.join(config.paths.slides, `${name}.svs`);
    await copyFile(made.svs, file);
    const slide = await new SlidesRepository(database.db.knex).create({ name, filePath: `${name}.svs`, sha256: await sha256File(file), ...(await readSlideFacts(file)) });
    ids.push(slide.id);
  }
  const datasets = createDatasetsService(config, database.db);
  await datasets.create('liver');
  await datasets.add('liver', { slides: ids });
  await datasets.release('liver', '1', 'test');

  const out = path.join(root, 'bags');
  const exporter = createExportService(config, database.db);
  const { bags } = await exporter.export({ dataset: 'liver', version: '1', out, dicom: true });
  const bag = bags[0]!.dir;
  const validated = await validateBag(bag, { trustedKeys: [{ name: 'us', publicKey: ensureSiteKey(config.paths.data).publicKey }] });
  t.truthy(validated);
  t.deepEqual((await readdir(out)).sort(), ['liver_1'], 'no scratch folder is left beside the bag');

  for (const [i, name] of names.entries()) {
    const dir = path.join(bag, 'data', 'dicom', name);
    t.deepEqual((await readdir(dir)).sort(), ['level-0.dcm', 'level-1.dcm', 'thumbnail.dcm']);
    const alone = path.join(root, `alone-${i}`);
    await createDicomExportService(config, database.db).exportSlide(ids[i]!, alone);
    for (const file of await readdir(dir)) t.true((await readFile(path.join(dir, file))).equals(await readFile(path.join(alone, file))), `${name}/${file}`);
    const series = await Slide.open(dir);
    t.deepEqual([series.width, series.height, series.levels.length], [1100, 733, 2]);
    await series.close();
  }
  // The two copies of one file are two slides: their series have different UIDs.
  t.false((await readFile(path.join(bag, 'data', 'dicom', names[0]!, 'level-0.dcm'))).equals(await readFile(path.join(bag, 'data', 'dicom', names[1]!, 'level-0.dcm'))));

  const holey = await t.throwsAsync(exporter.export({ dataset: 'liver', version: '1', out: path.join(root, 'holey'), dicom: true, holey: true }));
  t.regex(holey!.message, /--dicom cannot be combined with --holey/);
});
