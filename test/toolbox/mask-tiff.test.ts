import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { RegionType, type AperioLayer, type AperioRegion, type Vertex } from '../../server/annotations/index.js';
import { layerMask, maskTiffLevels, writeLayerMaskTiff, xmlMaskGrid } from '../../server/toolbox/index.js';
import { runCli } from '../support/cli.js';

function region(id: number, type: RegionType, vertices: Vertex[], negative = false): AperioRegion {
  return { id, type, negative, text: '', vertices, attributes: [], extra: {}, children: [] };
}

/** A polygon, an ellipse and a rectangle, with a hole in the polygon: every fill path, crossing many band boundaries. */
const LAYER: AperioLayer = {
  id: 1,
  name: 'Tumor',
  lineColor: 255,
  colour: '#ff0000',
  visible: true,
  type: 4,
  attributes: [],
  headers: [],
  plots: [],
  extra: {},
  children: [],
  regions: [
    region(1, RegionType.polygon, [[130, 70], [2900, 400], [2500, 2300], [700, 2700], [90, 1300]]),
    region(2, RegionType.polygon, [[1000, 1000], [1600, 1100], [1300, 1700]], true),
    region(3, RegionType.ellipse, [[3100, 300], [3900, 1900]]),
    region(4, RegionType.rectangle, [[200, 2800], [3800, 2800], [3800, 2950], [200, 2950]]),
  ],
};
const WIDTH = 4000;
const HEIGHT = 3000;

async function page(file: string, index: number): Promise<{ width: number; height: number; data: Buffer }> {
  const { data, info } = await sharp(file, { page: index }).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data };
}

test('a tiled pyramidal TIFF mask, built band by band, equals the in-memory mask at every level', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mask-tiff-'));
  const file = path.join(dir, 'mask.tif');
  const progress: number[] = [];
  const result = await writeLayerMaskTiff(LAYER, file, { width: WIDTH, height: HEIGHT, downsample: 3, tileSize: 64, onProgress: (done) => progress.push(done) });
  t.deepEqual(result.levels, maskTiffLevels(WIDTH, HEIGHT, 3, 64));
  t.deepEqual(result.levels.map((l) => l.downsample), [3, 6, 12, 24, 48, 96]);
  t.deepEqual((await readdir(dir)).sort(), ['mask.tif'], 'no partial file is left');
  t.is(progress.at(-1), result.levels.reduce((n, l) => n + Math.ceil(l.height / 64), 0));
  const meta = await sharp(file).metadata();
  t.is(meta.pages, result.levels.length);
  for (const [index, level] of result.levels.entries()) {
    const expected = layerMask(LAYER, 'tumor', xmlMaskGrid(WIDTH, HEIGHT, level.downsample));
    const actual = await page(file, index);
    t.deepEqual([actual.width, actual.height], [expected.width, expected.height]);
    t.true(Buffer.from(expected.data).equals(actual.data), `level ${index} (downsample ${level.downsample}) differs`);
    if (index === 0) t.is(result.pixels, expected.pixels);
  }
});

test('xml-masks --format auto writes a tiled TIFF when the mask would not fit in memory; png refuses it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mask-tiff-'));
  const xml = path.join(dir, 'big.xml');
  await writeFile(
    xml,
    '<Annotations MicronsPerPixel="0.25"><Annotation Id="1" Name="Tumor" LineColor="255"><Regions>' +
      '<Region Id="1" Type="1"><Vertices><Vertex X="1000" Y="1000"/><Vertex X="21000" Y="1000"/><Vertex X="21000" Y="21000"/><Vertex X="1000" Y="21000"/></Vertices></Region>' +
      '</Regions></Annotation></Annotations>',
  );
  // 70000 × 60000 at downsample 3: 23334 × 20000 mask pixels, over the 16384² built in memory.
  const png = await runCli(['toolbox', 'xml-masks', xml, '--width', '70000', '--height', '60000', '--downsample', '3', '--format', 'png', '--out', path.join(dir, 'png')]);
  t.is(png.code, 2);
  t.regex(png.stderr, /over the 268435456 pixels built in memory/);
  const out = path.join(dir, 'tiff');
  const auto = await runCli(['toolbox', 'xml-masks', xml, '--width', '70000', '--height', '60000', '--downsample', '3', '--out', out], { timeoutMs: 240_000 });
  t.is(auto.code, 0, auto.stderr);
  t.deepEqual(auto.stdout.trim().split('\n'), [path.join(out, 'mask-1-tumor.tif'), path.join(out, 'xml-masks.json')]);
  const sidecar = JSON.parse(await readFile(path.join(out, 'xml-masks.json'), 'utf8')) as { layers: { pixels: number; area: number; levels: { width: number }[] }[] };
  // Centres (i + ½)·3 in [1000, 21000): i from 333 to 6999.
  t.is(sidecar.layers[0]!.pixels, 6667 * 6667);
  t.is(sidecar.layers[0]!.area, 6667 * 6667 * 9);
  t.is(sidecar.layers[0]!.levels[0]!.width, 23334);
  const smallest = await sharp(path.join(out, 'mask-1-tumor.tif'), { page: sidecar.layers[0]!.levels.length - 1 }).metadata();
  t.true(Math.max(smallest.width ?? 0, smallest.height ?? 0) <= 512);
});
