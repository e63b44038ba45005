import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import {
  parsePredictions,
  stitch,
  stitchGrid,
  stitchToFloat,
  STITCH_WINDOWS,
  ToolboxError,
  windowAt,
  type Prediction,
  type StitchGrid,
} from '../../server/toolbox/index.js';
import { makeSlide } from '../support/slides.js';
import { runCli } from '../support/cli.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-toolbox-stitch-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/** A smooth synthetic field over level 0, in [0.1, 0.9]. */
const field = (x: number, y: number) => 0.5 + 0.4 * Math.sin(x / 53) * Math.cos(y / 37);

/** Patch origins along a side: every stride, plus one flush with the far edge so the whole side is covered. */
function origins(side: number, size: number, stride: number): number[] {
  const out: number[] = [];
  for (let v = 0; v + size <= side; v += stride) out.push(v);
  if (out[out.length - 1]! + size < side) out.push(side - size);
  return out;
}

/** The identity predictor: each patch's probability image is the field at the level-0 pixels it covers. */
function identityPredictions(level0: { width: number; height: number }, size: number, stride: number): Prediction[] {
  const out: Prediction[] = [];
  for (const y of origins(level0.height, size, stride)) {
    for (const x of origins(level0.width, size, stride)) {
      const data = new Float32Array(size * size);
      for (let j = 0; j < size; j++) for (let i = 0; i < size; i++) data[j * size + i] = field(x + i, y + j);
      out.push({ where: `patch (${x}, ${y})`, x, y, width: size, height: size, image: { width: size, height: size, data, scale: 1 } });
    }
  }
  return out;
}

/** What the map should hold: the field at the level-0 pixel under each map pixel's centre. */
function expected(grid: StitchGrid, i: number, j: number): number {
  return Math.fround(field(Math.floor((i + 0.5) * grid.downsample.x), Math.floor((j + 0.5) * grid.downsample.y)));
}

for (const window of STITCH_WINDOWS) {
  for (const downsample of [1, 2]) {
    test(`stitching an identity predictor reconstructs the field to 1e-6 (${window} window, downsample ${downsample})`, async (t) => {
      const level0 = { width: 600, height: 424 };
      const grid = stitchGrid(level0, downsample);
      const { probability, weight } = await stitchToFloat(identityPredictions(level0, 64, 40), grid, { window, stripHeight: 50 });
      let worst = 0;
      for (let j = 0; j < grid.height; j++) {
        for (let i = 0; i < grid.width; i++) {
          t.true(weight[j * grid.width + i]! > 0);
          worst = Math.max(worst, Math.abs(probability[j * grid.width + i]! - expected(grid, i, j)));
        }
      }
      t.true(worst <= 1e-6, `largest error ${worst}`);
    });
  }
}

test('windows: 1 at the centre (uniform everywhere), symmetric, fading towards the edges', (t) => {
  for (const window of STITCH_WINDOWS) {
    t.true(Math.abs(windowAt(window, 0.5) - 1) < 1e-12, window);
    for (const u of [0.05, 0.2, 0.37]) t.true(Math.abs(windowAt(window, u) - windowAt(window, 1 - u)) < 1e-12, `${window} at ${u}`);
    if (window !== 'uniform') t.true(windowAt(window, 0.05) < windowAt(window, 0.3), window);
  }
  // The spline's two parabolas meet at a quarter of the patch.
  t.true(Math.abs(windowAt('spline', 0.25) - 0.5) < 1e-12);
});

test('the 16-bit PNG holds the reconstructed field to within quantisation, and the sidecar describes it', async (t) => {
  const out = await tempDir();
  const level0 = { width: 300, height: 200 };
  const result = await stitch(identityPredictions(level0, 64, 32), level0, { out, downsample: 2, window: 'spline', stripHeight: 16 });
  const { data, info } = await sharp(result.png).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height, info.channels], [150, 100, 1]);
  const values = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  const grid = result.grid;
  let worst = 0;
  for (let j = 0; j < grid.height; j++) for (let i = 0; i < grid.width; i++) worst = Math.max(worst, Math.abs(values[j * grid.width + i]! / 65535 - expected(grid, i, j)));
  t.true(worst <= 0.5 / 65535 + 1e-6, `largest error ${worst}`);

  const sidecar = JSON.parse(await readFile(result.json, 'utf8')) as Record<string, unknown>;
  t.like(sidecar, { tool: 'stitch', level0, map: { width: 150, height: 100, file: 'probability.png' }, downsample: { x: 2, y: 2 }, window: 'spline', patches: result.patches, coveredPixels: 15000 });
  t.true(Math.abs((sidecar.min as number) - 0.1) < 0.01 && Math.abs((sidecar.max as number) - 0.9) < 0.01);
  t.true(Math.abs((sidecar.mean as number) - result.mean!) < 1e-12);
});

test('a small strip height gives the same map as one strip for the whole slide', async (t) => {
  const level0 = { width: 530, height: 371 };
  const grid = stitchGrid(level0, 3);
  const predictions: Prediction[] = [];
  for (const y of origins(371, 96, 48)) for (const x of origins(400, 96, 48)) predictions.push({ where: 'p', x, y, width: 96, height: 96, score: ((x * 7 + y * 3) % 100) / 100 });
  const whole = await stitchToFloat(predictions, grid, { window: 'hann', stripHeight: 100000 });
  for (const stripHeight of [1, 7, 33]) {
    const strips = await stitchToFloat(predictions, grid, { window: 'hann', stripHeight });
    t.deepEqual(strips.probability, whole.probability, `strip height ${stripHeight}`);
    t.deepEqual(strips.weight, whole.weight);
  }
  // Columns past x = 400 are covered by no patch: 0, and Σw = 0.
  t.is(whole.weight[grid.width - 1], 0);
  t.is(whole.probability[grid.width - 1], 0);

  const out = await tempDir();
  const a = await stitch(predictions, level0, { out, name: 'a', downsample: 3, window: 'hann', stripHeight: 1 });
  const b = await stitch(predictions, level0, { out, name: 'b', downsample: 3, window: 'hann', stripHeight: 4096 });
  const [pa, pb] = await Promise.all([a.png, b.png].map((f) => sharp(f).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer()));
  t.true(pa!.equals(pb!));
});

test('probability images come from 8- and 16-bit PNGs named in a CSV', async (t) => {
  const dir = await tempDir();
  const level0 = { width: 256, height: 128 };
  const lines = ['x,y,size,probability'];
  for (const [k, [x, y]] of [[0, 0], [64, 0], [128, 0], [192, 0], [0, 64], [64, 64], [128, 64], [192, 64], [32, 32]].entries()) {
    const sixteen = k % 2 === 0;
    // sharp takes 16-bit raw input as a Uint16Array.
    const raw = sixteen ? new Uint16Array(64 * 64) : new Uint8Array(64 * 64);
    for (let j = 0; j < 64; j++) {
      for (let i = 0; i < 64; i++) {
        const p = field(x! + i, y! + j);
        raw[j * 64 + i] = Math.round(p * (sixteen ? 65535 : 255));
      }
    }
    const name = `p${k}.png`;
    await sharp(raw, { raw: { width: 64, height: 64, channels: 1, ...(sixteen ? { depth: 'ushort' as const } : {}) } }).toColourspace(sixteen ? 'grey16' : 'b-w').png().toFile(path.join(dir, name));
    lines.push(`${x},${y},64,${name}`);
  }
  await writeFile(path.join(dir, 'predictions.csv'), `${lines.join('\n')}\n`);
  const out = path.join(dir, 'out');
  const cli = await runCli(['toolbox', 'stitch', path.join(dir, 'predictions.csv'), '--slide', await smallSlide(), '--out', out, '--downsample', '1', '--window', 'uniform']);
  t.is(cli.code, 0, cli.stderr);
  t.deepEqual(cli.stdout.trim().split('\n'), [path.join(out, 'probability.png'), path.join(out, 'probability.json')]);
  const { data, info } = await sharp(path.join(out, 'probability.png')).toColourspace('grey16').raw({ depth: 'ushort' }).toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height], [1000, 800]);
  const values = new Uint16Array(data.buffer, data.byteOffset, data.length / 2);
  let worst = 0;
  for (let y = 0; y < level0.height; y++) for (let x = 0; x < level0.width; x++) worst = Math.max(worst, Math.abs(values[y * 1000 + x]! / 65535 - field(x, y)));
  t.true(worst <= 0.5 / 255 + 1 / 65535, `largest error ${worst}`);
  t.is(values[300 * 1000 + 300], 0, 'no patch there');
  const sidecar = JSON.parse(await readFile(path.join(out, 'probability.json'), 'utf8')) as { coveredPixels: number; patches: number };
  t.like(sidecar, { coveredPixels: 256 * 128, patches: 9 });

  // An RGB image (a patch, not a probability) is refused with its line.
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ff0000' } }).png().toFile(path.join(dir, 'rgb.png'));
  await writeFile(path.join(dir, 'rgb.csv'), 'x,y,size,file\n0,0,64,p0.png\n64,0,64,rgb.png\n');
  const refused = await runCli(['toolbox', 'stitch', path.join(dir, 'rgb.csv'), '--slide', await smallSlide(), '--out', path.join(dir, 'rgb')]);
  t.is(refused.code, 2, refused.stderr);
  t.regex(refused.stderr, /line 3: rgb\.png is not a grey probability image \(3 colour channels\)/);
  t.deepEqual(await readdir(path.join(dir, 'rgb')), [], 'no partial map is left behind');
});

test('stitch CLI: --help documents every option; bad options and rows exit 2 before any work', async (t) => {
  const help = await runCli(['toolbox', 'stitch', '--help']);
  t.is(help.code, 0);
  for (const option of ['--slide', '--out', '--downsample', '--window', '--strip-height', '--name', 'uniform, spline']) t.true(help.stdout.includes(option), option);
  const dir = await tempDir();
  const csv = path.join(dir, 'scores.csv');
  await writeFile(csv, 'x,y,size,score\n0,0,256,0.5\n900,600,256,0.5\n');
  const slide = await smallSlide();
  for (const [args, message] of [
    [['--window', 'box'], /--window must be one of uniform, spline, gaussian, hann/],
    [['--downsample', '0.5'], /--downsample must be a number from 1/],
    [['--strip-height', '0'], /--strip-height must be a whole number from 1 up/],
    [['--strip-height', '2.5'], /--strip-height must be a whole number/],
    [[], /PREDICTIONS line 3: the patch \[900, 1156\) × \[600, 856\) reaches outside the 1000×800 slide/],
  ] as [string[], RegExp][]) {
    const out = path.join(dir, `out-${args.join('')}`);
    const run = await runCli(['toolbox', 'stitch', csv, '--slide', slide, '--out', out, ...args]);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, message);
    t.false(await readFile(path.join(out, 'probability.png')).then(() => true, () => false));
  }
  const missing = await runCli(['toolbox', 'stitch', csv, '--out', dir]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /--slide is required/);
});

let slideFile: Promise<string> | undefined;
function smallSlide(): Promise<string> {
  return (slideFile ??= tempDir().then(async (dir) => (await makeSlide({ width: 1000, height: 800, seed: 3, levels: 2, out: dir })).svs));
}

test('predictions that do not fit the grid are refused with their line', (t) => {
  const level0 = { width: 1000, height: 800 };
  const cases: [string, RegExp][] = [
    ['x,y,size,score\n0,0,256,0.5\n900,0,256,0.5\n', /^predictions line 3: the patch \[900, 1156\) × \[0, 256\) reaches outside the 1000×800 slide$/],
    ['x,y,size,score\n-1,0,256,0.5\n', /line 2: the patch at \(-1, 0\) has a negative position/],
    ['x,y,size,score\n0,0,256,0.5\n0,0,0,0.5\n', /line 3: the patch size must be above 0/],
    ['x,y,size,score\n0,0,256,NaN\n', /line 2: the score must be a number from 0 to 1, got NaN/],
    ['x,y,size,score\n0,0,256,abc\n', /line 2: the score must be a number from 0 to 1, got NaN/],
    ['x,y,size,score\n0,0,256,1.5\n', /line 2: the score must be a number from 0 to 1, got 1\.5/],
    ['x,y,size,score\n0,zero,256,0.5\n', /line 2: y is not a number/],
    ['x,y,size,score\n0,0,256\n', /line 2: 3 fields where the header has 4/],
    ['x,y,size,score\n0,0,256,0.5\n\n0,0,128,0.5,extra\n', /line 4: 5 fields/],
    ['a,b,c\n', /line 1: the CSV header must name x, y and size/],
    ['x,y,size\n0,0,256\n', /line 1: the CSV header names no score/],
  ];
  for (const [csv, message] of cases) {
    const error = t.throws(() => parsePredictions(csv, 'csv', { level0 }), { instanceOf: ToolboxError });
    t.regex(error.message, message);
  }
  const json = t.throws(() => parsePredictions('[{"x":0,"y":0,"size":64,"score":0.2},{"x":0,"y":0,"size":64,"score":null}]', 'json', { level0 }), { instanceOf: ToolboxError });
  t.regex(json.message, /entry 2: has neither a score nor a probability image/);
  // The patches index with a score added; sizes of level 1 are scaled to level 0.
  const index = JSON.stringify({ patches: [{ file: 'patches/a.png', x: 0, y: 0, level: 1, size: 100, score: 0.75 }] });
  t.like(parsePredictions(index, 'json', { level0, levelDownsamples: [{ x: 1, y: 1 }, { x: 4, y: 4 }] })[0], { x: 0, y: 0, width: 400, height: 400, score: 0.75 });
  t.throws(() => parsePredictions(index, 'json', { level0 }), { message: /entry 1: level 1 is not a level of the slide/ });
});
