import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ZipArchive } from 'archiver';
import sharp from 'sharp';
import { truthFromRelease } from '../../server/challenges/challenges.service.js';
import { maskSize, paintTruthBand, polygonRings } from '../../server/challenges/submissions/index.js';
import { createDatasetsService } from '../../server/datasets/index.js';
import type { Release } from '../../server/datasets/release.js';
import type { Config } from '../../server/config/index.js';
import type { Database } from '../../server/db/index.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/** A small challenge's data: two training and two test slides made by the generator (which knows their tumours), released as train@1 and test@1. */
export interface ChallengeData {
  train: Release;
  test: Release;
  /** Slide ids: training, then test. */
  trainIds: number[];
  testIds: number[];
}

export async function challengeData(config: Config, db: Database, work: string): Promise<ChallengeData> {
  const ids: number[] = [];
  for (const [i, seed] of [11, 12, 13, 14].entries()) {
    const made = await makeSlide({ width: 1200, height: 900, seed, out: path.join(work, `made-${i}`), tileSize: 240 });
    const name = `SB-CH-${i + 1}`;
    const slide = await registerSlide(db, made.svs, name);
    await db.knex('slides').where({ id: slide.id }).update({ sha256: createHash('sha256').update(await readFile(made.svs)).digest('hex'), annotation_path: made.xml, annotation_summary: JSON.stringify({ regionCount: 2, tumourLayerId: 1 }), histology: 'HCC', organ: 'LV', stain: 'HE' });
    ids.push(slide.id);
  }
  const datasets = createDatasetsService(config, db);
  await datasets.create('train');
  await datasets.add('train', { slides: ids.slice(0, 2) });
  const train = await datasets.release('train', '1', 'curator');
  await datasets.create('test');
  await datasets.add('test', { slides: ids.slice(2) });
  const test = await datasets.release('test', '1', 'curator');
  return { train, test, trainIds: ids.slice(0, 2), testIds: ids.slice(2) };
}

export type MaskKind = 'truth' | 'empty';

/** A submission archive for a segmentation challenge: one PNG mask per test slide (those in `slides`, default all), the truth itself or empty. */
export async function segmentationArchive(
  config: Config,
  release: Release,
  file: string,
  kind: MaskKind,
  { downsample = 16, slides = release.slides.map((s) => s.name), size }: { downsample?: number; slides?: string[]; size?: { width: number; height: number } } = {},
): Promise<string> {
  await mkdir(path.dirname(file), { recursive: true });
  const zip = new ZipArchive({ store: true });
  const done = new Promise<void>((resolve, reject) => {
    const out = createWriteStream(file);
    out.on('close', resolve);
    out.on('error', reject);
    zip.on('error', reject);
    zip.pipe(out);
  });
  for (const slide of release.slides.filter((s) => slides.includes(s.name))) {
    const { width, height } = size ?? maskSize({ width: slide.facts.width, height: slide.facts.height }, downsample);
    const data = new Uint8Array(width * height);
    if (kind === 'truth') {
      const truth = await truthFromRelease(slide, path.join(config.paths.data, 'releases', String(release.datasetId), release.version));
      paintTruthBand([{ polygons: truth.tumour.map((p) => polygonRings(p)), value: 1 }], { width, firstRow: 0, rows: height, data }, downsample);
    }
    const png = await sharp(Buffer.from(data), { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    zip.append(png, { name: `${slide.name}.png` });
  }
  await zip.finalize();
  await done;
  return file;
}
