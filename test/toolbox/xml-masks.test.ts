import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { isShape, parseAperioXml, placeHoles, pointInRing, RegionType, type AperioAnnotations, type AperioLayer, type AperioRegion, type Vertex } from '../../server/annotations/index.js';
import { fillSmallHoles, layerMask, otsuThreshold, parseLayerMapping, removeSmallObjects, saveXmlMasks, ToolboxError, xmlMaskGrid, xmlMasks } from '../../server/toolbox/index.js';
import { runCli } from '../support/cli.js';
import { fixture, fixtureTest } from '../support/fixtures.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-toolbox-xml-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

// ---------------------------------------------------------------------------
// An independent rasteriser: every pixel centre tested on its own.

function region(type: RegionType, vertices: Vertex[], negative = false): AperioRegion {
  return { id: 1, type, negative, text: '', vertices, attributes: [], extra: {}, children: [] };
}

function layer(id: number, regions: AperioRegion[]): AperioLayer {
  return { id, name: `layer ${id}`, lineColor: 0, colour: '#000000', visible: true, type: 4, attributes: [], regions, headers: [], plots: [], extra: {}, children: [] };
}

function annotations(layers: AperioLayer[]): AperioAnnotations {
  return { micronsPerPixel: null, layers, extra: {}, children: [] };
}

function containsPoint(r: AperioRegion, [x, y]: Vertex): boolean {
  const xs = r.vertices.map((v) => v[0]);
  const ys = r.vertices.map((v) => v[1]);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  if (r.type === RegionType.ellipse) {
    const u = (x - (minX + maxX) / 2) / ((maxX - minX) / 2);
    const v = (y - (minY + maxY) / 2) / ((maxY - minY) / 2);
    return u * u + v * v <= 1;
  }
  // A rectangle is its four corners as a polygon (left and top edges in, right and bottom out).
  if (r.type === RegionType.rectangle) return x >= minX && x < maxX && y >= minY && y < maxY;
  return pointInRing([x, y], r.vertices);
}

function bruteForce(regions: AperioRegion[], width: number, height: number, ds: number): Uint8Array {
  const out = new Uint8Array(width * height);
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      const p: Vertex = [(i + 0.5) * ds, (j + 0.5) * ds];
      const inPositive = regions.some((r) => isShape(r.type) && !r.negative && containsPoint(r, p));
      const inHole = regions.some((r) => isShape(r.type) && r.negative && containsPoint(r, p));
      out[j * width + i] = inPositive && !inHole ? 255 : 0;
    }
  }
  return out;
}

function differing(a: Uint8Array, b: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

const square = (x0: number, y0: number, x1: number, y1: number): Vertex[] => [
  [x0, y0],
  [x1, y0],
  [x1, y1],
  [x0, y1],
  [x0, y0],
];

const CASES: { name: string; regions: AperioRegion[]; width: number; height: number }[] = [
  { name: 'a square with a square hole', regions: [region(RegionType.polygon, square(40, 40, 360, 280)), region(RegionType.polygon, square(120, 100, 220, 200), true)], width: 400, height: 320 },
  { name: 'an ellipse', regions: [region(RegionType.ellipse, [[37.3, 22.9], [351.7, 250.2]])], width: 400, height: 300 },
  { name: 'a rectangle', regions: [region(RegionType.rectangle, [[20, 30], [300, 30], [300, 190], [20, 190]])], width: 320, height: 240 },
  {
    name: 'a slanted polygon with a crossing notch and a ruler',
    regions: [
      region(RegionType.polygon, [[13.2, 10.7], [390.1, 55.5], [301.3, 287.9], [40.4, 230.2], [77.7, 120.1]]),
      region(RegionType.polygon, [[350, 20], [420, 20], [420, 120], [350, 120]], true),
      region(RegionType.ruler, [[0, 0], [400, 300]]),
    ],
    width: 410,
    height: 300,
  },
];

for (const c of CASES) {
  for (const ds of [1, 2.5, 4, 8]) {
    test(`xml-masks: ${c.name} at downsample ${ds} is pixel-exact against an independent rasteriser`, (t) => {
      const [mask] = xmlMasks(annotations([layer(1, c.regions)]), { width: c.width, height: c.height, downsample: ds });
      t.is(mask!.width, Math.ceil(c.width / ds));
      t.is(mask!.height, Math.ceil(c.height / ds));
      const expected = bruteForce(c.regions, mask!.width, mask!.height, ds);
      t.true(expected.some((v) => v === 255) && expected.some((v) => v === 0));
      t.is(differing(mask!.data, expected), 0);
      t.is(mask!.area, mask!.pixels * ds * ds);
    });
  }
}

test('xml-masks: areas of simple shapes match their geometry at downsample 1', (t) => {
  const layers = [
    layer(1, [region(RegionType.polygon, square(10, 10, 110, 60)), region(RegionType.polygon, square(20, 20, 40, 40), true)]),
    layer(2, [region(RegionType.rectangle, [[0, 0], [64, 0], [64, 32], [0, 32]])]),
    layer(3, [region(RegionType.ellipse, [[0, 0], [200, 100]])]),
    layer(4, [region(RegionType.arrow, [[0, 0], [100, 100]])]),
  ];
  const masks = xmlMasks(annotations(layers), { width: 256, height: 128, downsample: 1 });
  t.deepEqual(
    masks.map((m) => m.layerId),
    [1, 2, 3],
    'a layer of arrows only is not rasterised by default',
  );
  t.is(masks[0]!.pixels, 100 * 50 - 20 * 20);
  t.is(masks[1]!.pixels, 64 * 32);
  t.true(Math.abs(masks[2]!.pixels - Math.PI * 100 * 50) / (Math.PI * 100 * 50) < 0.005);
});

test('xml-masks: every NegativeROA region of a layer is cut out, and only from its own layer', (t) => {
  const hole = region(RegionType.polygon, square(0, 0, 50, 50), true);
  const masks = xmlMasks(annotations([layer(1, [region(RegionType.polygon, square(0, 0, 100, 100)), hole]), layer(2, [region(RegionType.polygon, square(0, 0, 100, 100))])]), {
    width: 100,
    height: 100,
    downsample: 1,
  });
  t.is(masks[0]!.pixels, 7500);
  t.is(masks[1]!.pixels, 10000);
});

test('xml-masks: the layer mapping selects and names layers; an unknown layer, a bad spec and a mask too large are refused', (t) => {
  const ann = annotations([layer(1, [region(RegionType.polygon, square(0, 0, 10, 10))]), layer(2, [region(RegionType.polygon, square(0, 0, 5, 5))])]);
  t.deepEqual(parseLayerMapping('paip2019'), [
    { id: 1, name: 'whole' },
    { id: 2, name: 'viable' },
  ]);
  const masks = xmlMasks(ann, { width: 16, height: 16, downsample: 1, layers: parseLayerMapping('2=viable') });
  t.deepEqual(
    masks.map((m) => [m.layerId, m.name, m.pixels]),
    [[2, 'viable', 25]],
  );
  const unknown = t.throws(() => xmlMasks(ann, { width: 16, height: 16, layers: parseLayerMapping('3=other') }), { instanceOf: ToolboxError });
  t.is(unknown.parameter, 'layers');
  t.regex(unknown.message, /layer 3.*1, 2/);
  t.throws(() => parseLayerMapping('1:whole'), { instanceOf: ToolboxError, message: /ID=NAME/ });
  t.throws(() => parseLayerMapping('1=a,1=b'), { instanceOf: ToolboxError, message: /twice/ });
  t.throws(() => xmlMaskGrid(100, 100, 0.5), { instanceOf: ToolboxError, message: /downsample must be a number from 1/ });
  t.throws(() => xmlMaskGrid(200_000, 200_000, 4), { instanceOf: ToolboxError, message: /use a downsample of at least 13/ });
});

test('xml-masks: written PNGs are 8-bit grey 0/255 with a sidecar of counts and areas', async (t) => {
  const dir = await tempDir();
  const ann = annotations([layer(7, [region(RegionType.polygon, square(0, 0, 64, 32))])]);
  const masks = xmlMasks(ann, { width: 128, height: 64, downsample: 2 });
  const { pngs, json } = await saveXmlMasks(masks, dir, { level0: { width: 128, height: 64 } });
  const meta = await sharp(pngs[0]!).metadata();
  t.deepEqual([meta.format, meta.width, meta.height, meta.channels, meta.depth], ['png', 64, 32, 1, 'uchar']);
  const data = await sharp(pngs[0]!).toColourspace('b-w').raw().toBuffer();
  t.true([...new Set(data)].every((v) => v === 0 || v === 255));
  t.deepEqual(Buffer.from(masks[0]!.data), data);
  const sidecar = JSON.parse(await readFile(json, 'utf8'));
  t.deepEqual(sidecar.layers[0], {
    id: 7,
    name: 'layer-7',
    xmlName: 'layer 7',
    file: 'mask-7-layer-7.png',
    shapes: 1,
    holes: 0,
    holesOutside: 0,
    ignoredLines: 0,
    pixels: 32 * 16,
    area: 64 * 32,
    geometricArea: 64 * 32,
  });
  t.deepEqual(sidecar.downsample, { x: 2, y: 2 });
});

// ---------------------------------------------------------------------------
// Thresholds and components

test('otsu: two tones give the darker tone as threshold, so that grey <= T selects it', (t) => {
  const bins = new Float64Array(256);
  bins[200] = 700;
  bins[240] = 300;
  t.is(otsuThreshold(bins), 200);
  bins.fill(0);
  for (let v = 0; v < 256; v++) bins[v] = v < 100 ? 1 + (v % 3) : v > 180 ? 2 : 0;
  const threshold = otsuThreshold(bins);
  t.true(threshold >= 99 && threshold <= 180, `threshold ${threshold}`);
});

test('components: small objects cleared (8-connected), small holes filled (4-connected, not at the border)', (t) => {
  const width = 20;
  const height = 10;
  const data = new Uint8Array(width * height);
  const set = (x: number, y: number, v = 255) => (data[y * width + x] = v);
  for (let y = 1; y < 9; y++) for (let x = 1; x < 9; x++) set(x, y); // an 8×8 object…
  set(4, 4, 0); // …with a one-pixel hole
  set(15, 2);
  set(16, 3); // two diagonal pixels: one 8-connected object of 2
  for (let x = 12; x < 20; x++) set(x, 8); // a strip of 8 reaching the border
  t.is(removeSmallObjects(data, width, height, 3), 1);
  t.is(data[2 * width + 15], 0);
  t.is(data[8 * width + 19], 255);
  t.is(fillSmallHoles(data, width, height, 2), 1);
  t.is(data[4 * width + 4], 255);
});

// ---------------------------------------------------------------------------
// The fixture XMLs: layer areas within 1% of their Area attributes

/** The layer moved next to the origin, so that its mask stays small. */
function nearOrigin(l: AperioLayer): { moved: AperioLayer; width: number; height: number } {
  const points = l.regions.filter((r) => isShape(r.type)).flatMap((r) => r.vertices);
  const minX = Math.min(...points.map((p) => p[0]));
  const minY = Math.min(...points.map((p) => p[1]));
  const width = Math.ceil(Math.max(...points.map((p) => p[0])) - minX) + 16;
  const height = Math.ceil(Math.max(...points.map((p) => p[1])) - minY) + 16;
  const moved = { ...l, regions: l.regions.map((r) => ({ ...r, vertices: r.vertices.map(([x, y]): Vertex => [x - minX + 8, y - minY + 8]) })) };
  return { moved, width, height };
}

for (const [name, layers] of [
  ['NP040-16_pTDP43_RVC.xml', 4],
  ['NP391-16_PLP_LVC_20x.xml', 1],
  ['wsi_annotations_kit-test_annotation.xml', 1],
] as const) {
  fixtureTest(`xml-masks: ${name}: each layer's area at downsample 4 is within 1% of Σ shape Area − Σ hole Area`, async (t) => {
    const ann = parseAperioXml(await readFile(fixture(name), 'utf8'));
    let checked = 0;
    let holes = 0;
    for (const l of ann.layers) {
      if (!l.regions.some((r) => isShape(r.type))) continue;
      const placement = placeHoles(l.regions);
      let expected = 0;
      l.regions.forEach((r, i) => {
        if (!isShape(r.type)) return;
        const area = Number(r.extra.Area);
        t.true(area > 0, `region ${r.id} has an Area attribute`);
        if (!r.negative) expected += area;
        else if (placement.owner.has(i) && !placement.crossing.includes(i)) {
          expected -= area;
          holes++;
        }
      });
      const { moved, width, height } = nearOrigin(l);
      const mask = layerMask(moved, 'layer', xmlMaskGrid(width, height, 4));
      const error = Math.abs(mask.area - expected) / expected;
      t.true(error < 0.01, `layer ${l.id}: mask ${mask.area} px² vs XML ${expected} px² (${(error * 100).toFixed(3)}%)`);
      checked++;
    }
    t.is(checked, layers);
    if (name.startsWith('NP040')) t.is(holes, 18, 'NP040: 20 holes, of which 2 cross their outline and are left out of the sum');
  });
}

fixtureTest('xml-masks: imagescope_xml_utils-test.xml: rectangles, an ellipse and a polygon match their geometry; arrows are ignored', async (t) => {
  const ann = parseAperioXml(await readFile(fixture('imagescope_xml_utils-test.xml'), 'utf8'));
  const masks = xmlMasks(ann, { width: 1900, height: 1200, downsample: 1 });
  t.true(masks.length >= 3);
  for (const m of masks) t.true(Math.abs(m.area - m.geometricArea) / m.geometricArea < 0.01, `layer ${m.layerId}: ${m.area} vs ${m.geometricArea}`);
  t.true(masks.every((m) => m.shapes > 0));
});

// ---------------------------------------------------------------------------
// The CLI

fixtureTest('slidebank toolbox xml-masks: writes masks and a sidecar; bad options exit 2 with one line and write nothing', async (t) => {
  const dir = await tempDir();
  const xml = fixture('NP391-16_PLP_LVC_20x.xml');
  const ok = await runCli(['toolbox', 'xml-masks', xml, '--width', '50000', '--height', '45000', '--downsample', '32', '--layers', '1=tissue', '--out', dir]);
  t.is(ok.code, 0, ok.stderr);
  const sidecar = JSON.parse(await readFile(path.join(dir, 'xml-masks.json'), 'utf8'));
  t.deepEqual(sidecar.level0, { width: 50000, height: 45000 });
  t.is(sidecar.layers.length, 1);
  t.is(sidecar.layers[0].name, 'tissue');
  t.is(sidecar.layers[0].holes, 3);
  t.is(sidecar.layers[0].area, sidecar.layers[0].pixels * 32 * 32);
  const meta = await sharp(path.join(dir, 'mask-1-tissue.png')).metadata();
  t.deepEqual([meta.width, meta.height, meta.channels], [Math.ceil(50000 / 32), Math.ceil(45000 / 32), 1]);

  const out = path.join(dir, 'refused');
  for (const [args, reason] of [
    [['--width', '50000', '--height', '45000', '--layers', '9=x'], /--layers names layer 9/],
    [['--width', '50000', '--height', '45000', '--downsample', '0.5'], /--downsample must be a number from 1/],
    [['--width', '50000'], /--width and --height, or --slide/],
  ] as const) {
    const refused = await runCli(['toolbox', 'xml-masks', xml, ...args, '--out', out]);
    t.is(refused.code, 2, refused.stderr);
    t.regex(refused.stderr, reason);
    t.is(refused.stderr.trim().split('\n').length, 1);
  }
  await t.throwsAsync(() => readFile(path.join(out, 'xml-masks.json')));
});
