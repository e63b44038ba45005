import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { validateBag } from '../server/bagit/index.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { loadConfig, type Config } from '../server/config/index.js';
import { createDatasetsService, createExportService, createImportService, ensureSiteKey } from '../server/datasets/index.js';
import { migrateToLatest, openDatabase, type Database } from '../server/db/index.js';
import { sha256File } from '../server/lib/hashing.js';
import { createLogger } from '../server/logging.js';
import { packageRoot } from '../server/package-info.js';
import { makeSlide } from '../server/wsi/generate/index.js';
import { benchSlide } from './slide.js';

const run = promisify(execFile);
const COPIES = 4;

interface Measured {
  what: string;
  bytes: number;
  seconds: number;
}

/**
 * Export and import of four generated slides as a signed BagIt bag, next to
 * `cp` and `sha256sum` of the same four files in the same run. Export copies
 * (checksums come from the catalog); import verifies every checksum, then
 * copies into the mirror's store; so export should track `cp`, and import
 * `sha256sum` plus `cp`.
 *
 * The slide is the benchmarks' 60000×40000 SVS (bench/slide.ts, ~154 MiB);
 * `BENCH_BAGIT_SLIDE=WxH` generates a slide of another size instead (e.g.
 * 24000x16000 for a quick run). Both sites use SQLite.
 */
export async function bagitBenchmark(): Promise<void> {
  const slide = await chooseSlide();
  const xml = slide.replace(/\.svs$/, '.xml');
  const size = (await stat(slide)).size;
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-bagit-'));
  const log = createLogger('warn');
  const origin = site(path.join(work, 'origin'));
  const originDb = openDatabase(origin.database.target, { log });
  const mirrorConfig = site(path.join(work, 'mirror'), ensureSiteKey(await made(origin.paths.data)).publicKey);
  const mirrorDb = openDatabase(mirrorConfig.database.target, { log });
  try {
    await migrateToLatest(originDb);
    await migrateToLatest(mirrorDb);
    await mkdir(origin.paths.slides, { recursive: true });
    await mkdir(mirrorConfig.paths.slides, { recursive: true });
    const sha256 = await sha256File(slide);
    const files: string[] = [];
    for (let i = 0; i < COPIES; i++) {
      const name = `SB1-LV-HCC-HE-MD-00-00-BENCH${String(i).padStart(5, '0')}`;
      const file = path.join(origin.paths.slides, `${name}.svs`);
      await copyFile(slide, file);
      files.push(file);
      await register(originDb, name, file, size, sha256, xml, i);
    }
    const datasets = createDatasetsService(origin, originDb);
    await datasets.create('bench');
    await datasets.add('bench', { slides: [1, 2, 3, 4] });
    await datasets.release('bench', '1', 'bench');

    const total = size * COPIES;
    await run('sync');
    const results: Measured[] = [];
    results.push(await measure('cp (4 files)', total, () => cpInto(files, path.join(work, 'cp-target'))));
    results.push(await measure('sha256sum (4 files)', total, () => run('sha256sum', files)));
    const out = path.join(work, 'bags');
    results.push(await measure('export (copy into a signed bag)', total, () => createExportService(origin, originDb).export({ dataset: 'bench', version: '1', out })));
    const bag = path.join(out, 'bench_1');
    results.push(await measure('validate (structure, oxum, signature, every checksum)', total, () => validateBag(bag, { trustedKeys: mirrorConfig.mirror.trustedKeys })));
    results.push(await measure('import (validate, copy, register, thumbnails)', total, () => createImportService(mirrorConfig, mirrorDb, log).import([bag])));

    console.log(`\nbagit: ${COPIES} copies of a generated slide (${path.basename(slide)}, ${(size / 2 ** 20).toFixed(0)} MiB each, ${(total / 2 ** 20).toFixed(0)} MiB together); page cache warm after the first pass`);
    console.log('| what | MiB | s | MB/s |');
    console.log('| --- | --- | --- | --- |');
    for (const m of results) console.log(`| ${m.what} | ${(m.bytes / 2 ** 20).toFixed(0)} | ${m.seconds.toFixed(2)} | ${(m.bytes / 1e6 / m.seconds).toFixed(0)} |`);
  } finally {
    await originDb.close();
    await mirrorDb.close();
    await rm(work, { recursive: true, force: true });
  }
}

async function chooseSlide(): Promise<string> {
  const wanted = process.env.BENCH_BAGIT_SLIDE;
  if (!wanted) return benchSlide();
  const match = /^(\d+)x(\d+)$/.exec(wanted);
  if (!match) throw new Error(`BENCH_BAGIT_SLIDE must be WIDTHxHEIGHT, not ${wanted}`);
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `bagit-${wanted}-seed5`;
  const file = path.join(dir, `${name}.svs`);
  if (!existsSync(file)) {
    await mkdir(dir, { recursive: true });
    await makeSlide({ width: Number(match[1]), height: Number(match[2]), seed: 5, out: dir, name });
  }
  return file;
}

function site(root: string, trustedKey?: string): Config {
  return loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: {
      SLIDEBANK_PATHS_DATA: path.join(root, 'var'),
      SLIDEBANK_SITE_NAME: 'Bench Hospital',
      ...(trustedKey ? { SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify([{ name: 'origin', publicKey: trustedKey }]) } : {}),
    },
  }).config;
}

async function made(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

async function register(db: Database, name: string, file: string, size: number, sha256: string, xml: string, i: number): Promise<void> {
  await new SlidesRepository(db.knex).create(
    { name, filePath: path.basename(file), fileSize: size, sha256, vendor: 'aperio', width: 1, height: 1, levelCount: 1, mppX: 0.5, mppY: 0.5, objectivePower: 20 },
    new Date(),
    {
      metadata: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'bench' },
      originalSha256: `${sha256.slice(0, 58)}${String(i).padStart(6, '0')}`,
      annotationPath: xml,
      annotationSummary: null,
    },
  );
}

async function cpInto(files: string[], dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run('cp', [...files, dir]);
}

async function measure(what: string, bytes: number, work: () => Promise<unknown>): Promise<Measured> {
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  console.log(`${what}: ${(bytes / 1e6 / seconds).toFixed(0)} MB/s`);
  return { what, bytes, seconds };
}
