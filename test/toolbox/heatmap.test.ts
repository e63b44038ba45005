import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { colourOf, heatmap, loadProbabilityMap, ToolboxError, type ProbabilityMap } from '../../server/toolbox/index.js';
import { makeSlide } from '../support/slides.js';
import { DeepZoom, OPENSLIDE_GRID, Slide } from '../../server/wsi/index.js';
import { runCli } from '../support/cli.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-toolbox-heatmap-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function rgba(file: string) {
  return sharp(file).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
}

/** The colour and alpha of probability v as stored (16-bit). */
function expectedPixel(colormap: 'jet' | 'viridis', v: number): number[] {
  const q = Math.round(v * 65535) / 65535;
  return [...colourOf(colormap, q), Math.round(255 * q)];
}

function pixel(image: { data: Buffer; info: { width: number } }, x: number, y: number): number[] {
  const o = (y * image.info.width + x) * 4;
  return [...image.data.subarray(o, o + 4)];
}

for (const grid of [OPENSLIDE_GRID, { tileSize: 240, overlap: 0 }]) {
  test(`the overlay pyramid has the slide's Deep Zoom geometry (${grid.tileSize}/${grid.overlap})`, async (t) => {
    const dir = await tempDir();
    const { svs } = await makeSlide({ width: 1500, height: 1000, levels: 2, seed: 2, out: dir });
    const slide = await Slide.open(svs);
    t.teardown(() => slide.close());
    const map: ProbabilityMap = { width: 94, height: 63, data: new Uint16Array(94 * 63).map((_, i) => (i * 97) % 65536), level0: { width: slide.width, height: slide.height } };
    const out = path.join(dir, 'overlay');
    const result = await heatmap(map, { out, name: 'tumour', grid });
    const dz = new DeepZoom(slide, grid);
    t.is(result.levels.length, dz.levels.length);
    t.is(result.levels.length, 12); // ceil(log2(1500)) + 1
    for (const [level, expected] of dz.levels.entries()) {
      t.like(result.levels[level], { width: expected.width, height: expected.height, cols: expected.cols, rows: expected.rows });
      const files = await readdir(path.join(out, 'tumour_files', String(level)));
      t.is(files.length, expected.cols * expected.rows, `level ${level}`);
      for (let row = 0; row < expected.rows; row++) {
        for (let col = 0; col < expected.cols; col++) {
          const source = dz.source({ level, col, row });
          const meta = await sharp(path.join(out, 'tumour_files', String(level), `${col}_${row}.png`)).metadata();
          t.deepEqual([meta.width, meta.height, meta.channels], [source.outWidth, source.outHeight, 4], `tile ${level}/${col}_${row}`);
        }
      }
    }
    t.is(await readFile(result.dzi, 'utf8'), dz.descriptor('png'));
    t.false(await stat(`${result.tilesDir}.partial`).then(() => true, () => false));
  });
}

test('a known map gives known colours at known pixels (jet, viridis, cut-off, bilinear)', async (t) => {
  const dir = await tempDir();
  // A 4×2 map over a 400×200 slide: each map pixel is a 100×100 square of level 0.
  const values = [0, 0.25, 0.5, 1, 0.75, 1, 0, 0.5];
  const map: ProbabilityMap = { width: 4, height: 2, data: Uint16Array.from(values, (v) => Math.round(v * 65535)), level0: { width: 400, height: 200 } };
  t.deepEqual(colourOf('jet', 0), [0, 0, 128]);
  t.deepEqual(colourOf('jet', 0.5), [128, 255, 128]);
  t.deepEqual(colourOf('jet', 1), [128, 0, 0]);
  t.deepEqual(colourOf('viridis', 0), [0x44, 0x01, 0x54]);
  t.deepEqual(colourOf('viridis', 1), [0xfd, 0xe7, 0x25]);

  const jet = await heatmap(map, { out: path.join(dir, 'jet'), grid: { tileSize: 256, overlap: 0 } });
  // Top level (9: ceil(log2(400))): tiles 0_0 (256 wide) and 1_0 (144 wide).
  const top = await rgba(path.join(jet.tilesDir, '9', '0_0.png'));
  t.deepEqual(pixel(top, 50, 50), [0, 0, 128, 0], 'p = 0: transparent');
  t.deepEqual(pixel(top, 150, 50), expectedPixel('jet', 0.25));
  t.deepEqual(pixel(top, 250, 50), expectedPixel('jet', 0.5), 'map pixel (2, 0)');
  t.deepEqual(pixel(top, 50, 150), expectedPixel('jet', 0.75));
  const right = await rgba(path.join(jet.tilesDir, '9', '1_0.png'));
  t.deepEqual(pixel(right, 350 - 256, 50), [128, 0, 0, 255], 'p = 1: opaque dark red');
  const overview = await rgba(jet.overview);
  t.deepEqual([overview.info.width, overview.info.height], [4, 2]);
  t.deepEqual(pixel(overview, 3, 0), [128, 0, 0, 255]);
  t.like(JSON.parse(await readFile(jet.json, 'utf8')), { tool: 'heatmap', name: 'heatmap', colormap: 'jet', cutoff: 0, map: { width: 4, height: 2 } });

  const viridis = await heatmap(map, { out: path.join(dir, 'viridis'), grid: { tileSize: 256, overlap: 0 }, colormap: 'viridis', cutoff: 0.3 });
  const vTop = await rgba(path.join(viridis.tilesDir, '9', '0_0.png'));
  t.is(pixel(vTop, 150, 50)[3], 0, '0.25 is under the cut-off');
  t.deepEqual(pixel(vTop, 250, 50), expectedPixel('viridis', 0.5));
  t.deepEqual(pixel(await rgba(path.join(viridis.tilesDir, '9', '1_0.png')), 94, 50), [0xfd, 0xe7, 0x25, 255]);

  // Bilinear: halfway between the centres of map pixels (0, 0) = 0 and (1, 0) = 0.25, at the top row's centre line.
  const bilinear = await heatmap(map, { out: path.join(dir, 'bilinear'), grid: { tileSize: 512, overlap: 0 }, sampling: 'bilinear' });
  const bTop = await rgba(path.join(bilinear.tilesDir, '9', '0_0.png'));
  // Deep Zoom pixel 99.5 → map x 0.995 - 0.5 = 0.495; row 49 → map y 0.495 - 0.5 < 0, clamped to row 0.
  t.deepEqual(pixel(bTop, 99, 0), expectedPixel('jet', (0.495 * Math.round(0.25 * 65535)) / 65535));

  // A 0/255 mask reads as 0 and 1.
  const maskFile = path.join(dir, 'mask.png');
  await sharp(Buffer.from([0, 255, 255, 0]), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('b-w').png().toFile(maskFile);
  const mask = await loadProbabilityMap(maskFile, { width: 20, height: 20 });
  t.deepEqual([...mask.data], [0, 65535, 65535, 0]);
  await t.throwsAsync(() => heatmap(mask, { out: dir, name: 'Bad Name', grid: OPENSLIDE_GRID }), { instanceOf: ToolboxError, message: /^name must be 1 to 64 of a-z/ });
  await t.throwsAsync(() => loadProbabilityMap(maskFile, { width: 1, height: 1 }), { message: /larger than the 1×1 slide/ });
});

test('heatmap CLI: help, bad options exit 2, and a run writes the pyramid named after the --out folder', async (t) => {
  const help = await runCli(['toolbox', 'heatmap', '--help']);
  t.is(help.code, 0);
  for (const option of ['--slide', '--out', '--name', '--colormap', '--cutoff', '--sampling', '--grid', '--tile-size', '--overlap', 'overlays/<slide id>/<name>']) t.true(help.stdout.includes(option), option);
  const dir = await tempDir();
  const { svs } = await makeSlide({ width: 800, height: 600, levels: 1, seed: 4, out: dir });
  const mapFile = path.join(dir, 'map.png');
  await sharp(Buffer.alloc(80 * 60, 200), { raw: { width: 80, height: 60, channels: 1 } }).toColourspace('b-w').png().toFile(mapFile);
  for (const [args, message] of [
    [['--colormap', 'hot'], /--colormap must be one of jet, viridis/],
    [['--cutoff', '2'], /--cutoff must be a number from 0 to 1/],
    [['--name', 'A_B'], /--name must be 1 to 64/],
    [['--grid', 'custom', '--overlap', '-1'], /--overlap must be a whole number from 0/],
    [['--tile-size', '512'], /--tile-size and --overlap go with --grid custom/],
  ] as [string[], RegExp][]) {
    const run = await runCli(['toolbox', 'heatmap', mapFile, '--slide', svs, '--out', path.join(dir, 'refused'), ...args]);
    t.is(run.code, 2, args.join(' '));
    t.regex(run.stderr, message);
  }
  t.false(await stat(path.join(dir, 'refused')).then(() => true, () => false));
  const out = path.join(dir, 'overlays', '7', 'tumour-v2');
  const ok = await runCli(['toolbox', 'heatmap', mapFile, '--slide', svs, '--out', out, '--grid', 'openslide']);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout.trim().split('\n')[0], path.join(out, 'tumour-v2.dzi'));
  t.regex(await readFile(path.join(out, 'tumour-v2.dzi'), 'utf8'), /Format="png" Overlap="1" TileSize="254"/);
});
