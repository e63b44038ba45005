import { readdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { pointInRing, type Vertex } from '../../server/annotations/index.js';
import { generatePatches, loadAnnotations, ToolboxError, type PatchesOptions } from '../../server/toolbox/index.js';
import { type SlideTruth } from '../../server/wsi/generate/index.js';
import { makeSlide } from '../support/slides.js';
import { Slide } from '../../server/wsi/index.js';
import { runCli } from '../support/cli.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-toolbox-patches-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

const slides = new Map<number, Promise<{ svs: string; xml: string; truth: SlideTruth }>>();
function generated(seed: number) {
  if (!slides.has(seed)) {
    slides.set(
      seed,
      (async () => {
        const result = await makeSlide({ width: 6000, height: 4000, seed, out: await tempDir() });
        return { svs: result.svs, xml: result.xml, truth: JSON.parse(await readFile(result.truth, 'utf8')) as SlideTruth };
      })(),
    );
  }
  return slides.get(seed)!;
}

/** Distance from a point to the nearest edge of a ring. */
function distanceToRing([px, py]: Vertex, ring: readonly Vertex[]): number {
  let best = Infinity;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [ax, ay] = ring[j]!;
    const [bx, by] = ring[i]!;
    const dx = bx - ax;
    const dy = by - ay;
    const s = Math.max(0, Math.min(1, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy || 1)));
    best = Math.min(best, Math.hypot(px - ax - s * dx, py - ay - s * dy));
  }
  return best;
}

for (const seed of [1, 5]) {
  test(`patches (seed ${seed}): labels agree with the true tumour regions; the index lists exactly the files written`, async (t) => {
    const { svs, xml, truth } = await generated(seed);
    const slide = await Slide.open(svs);
    const out = await tempDir();
    try {
      const size = 128;
      const progress: number[] = [];
      const result = await generatePatches(slide, { out, size, stride: 64, annotations: await loadAnnotations(xml), onProgress: (done) => progress.push(done) });
      const { patches } = result;
      t.true(patches.length > 100, `${patches.length} patches`);
      t.is(progress[progress.length - 1], patches.length);

      // Deep inside a tumour and away from its holes: tumour. Far from every tumour outline, or deep in a hole: not.
      let deepTumour = 0;
      let clearOfTumour = 0;
      for (const p of patches) {
        const centre: Vertex = [p.x + size / 2, p.y + size / 2];
        const margin = size; // a patch's half-diagonal is 0.71 × size
        const tumour = truth.tumours.find((r) => pointInRing(centre, r.outer as Vertex[]));
        const nearOutline = truth.tumours.some((r) => [r.outer, ...r.holes].some((ring) => distanceToRing(centre, ring as Vertex[]) < margin));
        if (nearOutline) continue;
        const inHole = tumour?.holes.some((h) => pointInRing(centre, h as Vertex[])) ?? false;
        if (tumour && !inHole) {
          deepTumour++;
          t.is(p.label, 'tumour', `patch at (${p.x}, ${p.y})`);
          t.true(p.tumourFraction! > 0.99);
        } else {
          clearOfTumour++;
          t.is(p.label, 'non-tumour', `patch at (${p.x}, ${p.y})`);
          t.is(p.tumourFraction, 0);
        }
      }
      t.true(deepTumour >= 5, `${deepTumour} patches deep in tumour`);
      t.true(clearOfTumour >= 50, `${clearOfTumour} patches clear of tumour`);
      // Kept patches lie on tissue: their centres are inside a tissue section or close to one.
      for (const p of patches) {
        const centre: Vertex = [p.x + size / 2, p.y + size / 2];
        t.true(truth.tissue.some((ring) => pointInRing(centre, ring as Vertex[]) || distanceToRing(centre, ring as Vertex[]) < size), `patch at (${p.x}, ${p.y}) off tissue`);
        t.true(p.tissueFraction >= 0.5);
      }

      // The index lists exactly the files written, in both forms.
      const written = (await readdir(path.join(out, 'patches'))).map((f) => `patches/${f}`).sort();
      t.deepEqual(patches.map((p) => p.file).sort(), written);
      const json = JSON.parse(await readFile(path.join(out, 'patches.json'), 'utf8'));
      t.is(json.count, patches.length);
      t.deepEqual(json.patches.map((p: { file: string }) => p.file).sort(), written);
      t.like(json.parameters, { level: 0, size: 128, stride: 64, tissueThreshold: 0.5, tumourThreshold: 0.5, labels: true, format: 'png', tumourLayer: { id: 2, name: 'viable' } });
      const csv = (await readFile(path.join(out, 'patches.csv'), 'utf8')).trim().split('\n');
      t.is(csv[0], 'file,x,y,level,size,level_x,level_y,tissue_fraction,tumour_fraction,label');
      t.deepEqual(csv.slice(1).map((line) => line.split(',')[0]).sort(), written);
      const row = csv[1]!.split(',');
      const first = patches.find((p) => p.file === row[0])!;
      t.deepEqual(row.slice(1, 5).map(Number), [first.x, first.y, 0, 128]);
      t.is(row[9], first.label ?? '');

      // A PNG patch holds exactly the slide's pixels there.
      const sample = patches[Math.floor(patches.length / 2)]!;
      const { data, info } = await sharp(path.join(out, sample.file)).raw().toBuffer({ resolveWithObject: true });
      t.deepEqual([info.width, info.height, info.channels], [128, 128, 3]);
      t.deepEqual(data, (await slide.readRegion(0, sample.x, sample.y, 128, 128)).data);
    } finally {
      await slide.close();
    }
  });
}

test('patches: at a lower level, as JPEG, without annotations: level-0 coordinates, no labels', async (t) => {
  const { svs } = await generated(1);
  const slide = await Slide.open(svs);
  const out = await tempDir();
  try {
    const result = await generatePatches(slide, { out, magnification: 5, size: 64, format: 'jpeg', quality: 80, limit: 20 });
    t.is(result.parameters.level, 1);
    t.is(result.patches.length, 20);
    for (const p of result.patches) {
      t.is(p.level, 1);
      t.is(p.x, p.levelX * 4);
      t.is(p.y, p.levelY * 4);
      t.is(p.label, null);
      t.is(p.tumourFraction, null);
      t.regex(p.file, /^patches\/L1_x\d+_y\d+\.jpg$/);
      const meta = await sharp(path.join(out, p.file)).metadata();
      t.deepEqual([meta.format, meta.width, meta.height], ['jpeg', 64, 64]);
    }
    t.is((await readdir(path.join(out, 'patches'))).length, 20);
  } finally {
    await slide.close();
  }
});

test('patches: bad parameters are refused, naming the parameter, and nothing is written', async (t) => {
  const { svs, xml } = await generated(1);
  const slide = await Slide.open(svs);
  const annotations = await loadAnnotations(xml);
  const out = path.join(await tempDir(), 'never');
  try {
    const cases: [Partial<PatchesOptions>, string, RegExp][] = [
      [{ size: 0 }, 'size', /from 1/],
      [{ stride: 0 }, 'stride', /from 1/],
      [{ stride: 7000 }, 'stride', /larger than level 0 \(6000×4000\)/],
      [{ size: 300, level: 2 }, 'level', /from 0 to 1/],
      [{ size: 1200, level: 1 }, 'size', /larger than level 1 \(1500×1000\)/],
      [{ magnification: 7 }, 'magnification', /not a stored level.*20×, 5×/],
      [{ tissueThreshold: 1.5 }, 'tissueThreshold', /from 0 to 1/],
      [{ labels: true }, 'labels', /annotation XML/],
      [{ annotations, tumourLayer: 9 }, 'tumourLayer', /layer 9.*1, 2/],
      [{ annotations, tumourLayer: 'stroma' }, 'tumourLayer', /not a layer name/],
      [{ annotations, maskDownsample: 0 }, 'maskDownsample', /from 1/],
      [{ tissueOptions: { downsample: 0.5 } }, 'tissue.downsample', /from 1/],
      [{ format: 'tiff' as never }, 'format', /png or jpeg/],
    ];
    for (const [options, parameter, problem] of cases) {
      const error = await t.throwsAsync(() => generatePatches(slide, { out, ...options }), { instanceOf: ToolboxError }, JSON.stringify(Object.keys(options)));
      t.is(error.parameter, parameter);
      t.regex(error.problem, problem);
    }
    await t.throwsAsync(() => stat(out), { code: 'ENOENT' });
  } finally {
    await slide.close();
  }
});

test('slidebank toolbox patches: writes patches and the index; bad options exit 2 with one line before any work', async (t) => {
  const { svs, xml } = await generated(1);
  const dir = await tempDir();
  const out = path.join(dir, 'run');
  const ok = await runCli(['toolbox', 'patches', svs, '--xml', xml, '--size', '256', '--format', 'jpeg', '--out', out]);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(ok.stdout.trim().split('\n'), [path.join(out, 'patches.json'), path.join(out, 'patches.csv')]);
  const json = JSON.parse(await readFile(path.join(out, 'patches.json'), 'utf8'));
  t.is(json.count, (await readdir(path.join(out, 'patches'))).length);
  t.true(json.patches.some((p: { label: string }) => p.label === 'tumour'));
  const again = await runCli(['toolbox', 'patches', svs, '--out', out]);
  t.is(again.code, 2);
  t.regex(again.stderr, /--out .* already holds/);

  for (const [args, reason] of [
    [['--size', '0'], '--size must be a whole number from 1 to 8192, got 0'],
    [['--stride', '0'], '--stride must be a whole number from 1 up, got 0'],
    [['--stride', '9000'], '--stride 9000 is larger than level 0 (6000×4000)'],
    [['--labels'], "--labels needs the slide's annotations: give --xml FILE"],
    [['--xml', xml, '--tumour-layer', '5'], '--tumour-layer names layer 5, but the XML has layer(s) 1, 2'],
    [['--size', 'big'], '--size must be a whole number, got "big"'],
    [['--tissue-downsample', '0'], '--tissue-downsample must be a number from 1 to 6000, got 0'],
    [['--xml', xml, '--mask-downsample', '0.5'], '--mask-downsample must be a number from 1 to 6000, got 0.5'],
  ] as const) {
    const refused = await runCli(['toolbox', 'patches', svs, ...args, '--out', path.join(dir, 'refused')]);
    t.is(refused.code, 2, refused.stderr);
    t.is(refused.stderr.trim(), `slidebank: ${reason}`);
  }
  await t.throwsAsync(() => stat(path.join(dir, 'refused')), { code: 'ENOENT' });

  const help = await runCli(['toolbox', 'patches', '--help']);
  for (const flag of ['--out', '--level', '--magnification', '--size', '--stride', '--tissue-threshold', '--tissue-downsample', '--tissue-method', '--xml', '--labels', '--no-labels', '--layers', '--tumour-layer', '--tumour-threshold', '--mask-downsample', '--format', '--quality', '--limit']) {
    t.true(help.stdout.includes(flag), flag);
  }
  t.regex(help.stdout, /slide ids/i);
});
