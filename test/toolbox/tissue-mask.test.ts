import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { pointInRing, type Vertex } from '../../server/annotations/index.js';
import { saveTissueMask, tissueMask, ToolboxError, type TissueMask } from '../../server/toolbox/index.js';
import { type SlideTruth } from '../../server/wsi/generate/index.js';
import { makeSlide } from '../support/slides.js';
import { Slide } from '../../server/wsi/index.js';
import { runCli } from '../support/cli.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-toolbox-tissue-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function generated(seed: number): Promise<{ svs: string; truth: SlideTruth }> {
  const result = await makeSlide({ width: 6000, height: 4000, seed, out: await tempDir() });
  return { svs: result.svs, truth: JSON.parse(await readFile(result.truth, 'utf8')) as SlideTruth };
}

/** The truth's tissue polygons rasterised at the mask's pixel centres, independently of the toolbox. */
function iouWithTruth(mask: TissueMask, truth: SlideTruth): number {
  let both = 0;
  let either = 0;
  const rings = truth.tissue as Vertex[][];
  for (let j = 0; j < mask.height; j++) {
    for (let i = 0; i < mask.width; i++) {
      const p: Vertex = [(i + 0.5) * mask.downsample.x, (j + 0.5) * mask.downsample.y];
      const expected = rings.some((ring) => pointInRing(p, ring));
      const actual = mask.data[j * mask.width + i] === 255;
      if (expected && actual) both++;
      if (expected || actual) either++;
    }
  }
  return either === 0 ? 1 : both / either;
}

for (const seed of [1, 7]) {
  for (const method of ['grey', 'saturation'] as const) {
    test(`tissue-mask (${method}, seed ${seed}): IoU with the true tissue at least 0.95`, async (t) => {
      const { svs, truth } = await generated(seed);
      const slide = await Slide.open(svs);
      try {
        const mask = await tissueMask(slide, { method });
        // About 8 µm/px on a 0.499 µm/px slide: downsample ≈ 16.
        t.true(Math.abs(mask.downsample.x - 8 / 0.499) < 0.1, `downsample ${mask.downsample.x}`);
        t.deepEqual([mask.width, mask.height], [Math.round(6000 / (8 / 0.499)), Math.round(4000 / (8 / 0.499))]);
        t.deepEqual(mask.level0, { width: 6000, height: 4000 });
        const iou = iouWithTruth(mask, truth);
        t.true(iou >= 0.95, `IoU ${iou.toFixed(4)} (${mask.rule})`);
        t.log(`IoU ${iou.toFixed(4)}, ${mask.rule}`);
      } finally {
        await slide.close();
      }
    });
  }
}

test('tissue-mask: a finer downsample still matches; the PNG and sidecar describe the mask', async (t) => {
  const { svs, truth } = await generated(3);
  const slide = await Slide.open(svs);
  try {
    const mask = await tissueMask(slide, { downsample: 5, minObjectArea: 0, minHoleArea: 0 });
    t.deepEqual([mask.width, mask.height], [1200, 800]);
    t.deepEqual(mask.downsample, { x: 5, y: 5 });
    t.is(mask.parameters.minObjectPixels, 0);
    t.true(iouWithTruth(mask, truth) >= 0.95);
    const dir = await tempDir();
    const { png, json } = await saveTissueMask(mask, dir);
    const meta = await sharp(png).metadata();
    t.deepEqual([meta.width, meta.height, meta.channels], [1200, 800, 1]);
    t.deepEqual(await sharp(png).toColourspace('b-w').raw().toBuffer(), Buffer.from(mask.data));
    const sidecar = JSON.parse(await readFile(json, 'utf8'));
    t.deepEqual(sidecar.level0, { width: 6000, height: 4000 });
    t.deepEqual(sidecar.mask, { width: 1200, height: 800, file: 'tissue-mask.png' });
    t.deepEqual(sidecar.downsample, { x: 5, y: 5 });
    t.is(sidecar.method, 'grey');
    t.is(sidecar.threshold, mask.threshold);
    t.is(sidecar.rule, `grey <= ${mask.threshold}`);
    t.is(sidecar.parameters.areaUnit, 'um2');
  } finally {
    await slide.close();
  }
});

test('tissue-mask: small objects go with the minimum area (given in level-0 µm²)', async (t) => {
  const { svs } = await generated(1);
  const slide = await Slide.open(svs);
  try {
    const kept = await tissueMask(slide, { minObjectArea: 0 });
    // Larger than every section: 6000×4000 px at 0.499 µm/px is about 6 mm²; no section is 3 mm².
    const none = await tissueMask(slide, { minObjectArea: 3_000_000 });
    t.true(kept.tissuePixels > 0);
    t.is(none.tissuePixels, 0);
    t.true(none.removedObjects >= 2);
  } finally {
    await slide.close();
  }
});

test('tissue-mask: options out of range are refused before any pixel is read', async (t) => {
  const { svs } = await generated(1);
  const slide = await Slide.open(svs);
  try {
    for (const [options, parameter] of [
      [{ downsample: 0.5 }, 'downsample'],
      [{ downsample: 10_000 }, 'downsample'],
      [{ mpp: 0.1 }, 'mpp'],
      [{ minObjectArea: -1 }, 'minObjectArea'],
      [{ method: 'hue' as never }, 'method'],
    ] as const) {
      const error = await t.throwsAsync(() => tissueMask(slide, options), { instanceOf: ToolboxError });
      t.is(error.parameter, parameter);
    }
  } finally {
    await slide.close();
  }
});

test('slidebank toolbox tissue-mask: writes the mask; --downsample below 1 exits 2 with one line', async (t) => {
  const { svs } = await generated(2);
  const out = await tempDir();
  const ok = await runCli(['toolbox', 'tissue-mask', svs, '--out', out, '--method', 'saturation']);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(ok.stdout.trim().split('\n'), [path.join(out, 'tissue-mask.png'), path.join(out, 'tissue-mask.json')]);
  const sidecar = JSON.parse(await readFile(path.join(out, 'tissue-mask.json'), 'utf8'));
  t.is(sidecar.method, 'saturation');
  t.regex(sidecar.rule, /^saturation > \d+$/);

  const refused = await runCli(['toolbox', 'tissue-mask', svs, '--out', path.join(out, 'no'), '--downsample', '0']);
  t.is(refused.code, 2);
  t.is(refused.stderr.trim(), 'slidebank: --downsample must be a number from 1 to 6000, got 0');
  const missing = await runCli(['toolbox', 'tissue-mask', '12', '--out', out]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /slide ids are not supported yet/);
  const help = await runCli(['toolbox', 'tissue-mask', '--help']);
  for (const flag of ['--out', '--method', '--downsample', '--mpp', '--area-unit', '--min-object', '--min-hole', '--name']) t.true(help.stdout.includes(flag), flag);
});
