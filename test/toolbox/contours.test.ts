import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { polygonArea, selfIntersection, signedArea, type AperioLayer, type Vertex } from '../../server/annotations/index.js';
import { simplify, traceOutlines } from '../../server/toolbox/contours.js';
import { outlinesFromProbabilityMap } from '../../server/toolbox/map-outlines.js';
import { layerMask, xmlMaskGrid } from '../../server/toolbox/xml-masks.js';

/** A mask from rows of '#' (set) and '.' (unset). */
function mask(rows: string[]): { width: number; height: number; inside: (x: number, y: number) => boolean } {
  return { width: rows[0]!.length, height: rows.length, inside: (x, y) => rows[y]![x] === '#' };
}

function layerOf(outlines: ReturnType<typeof traceOutlines>): AperioLayer {
  const regions = outlines.flatMap((o, i) => [
    { id: 2 * i + 1, type: 0 as const, negative: false, text: '', vertices: o.outer, attributes: [], extra: {}, children: [] },
    ...o.holes.map((h, j) => ({ id: 1000 * (i + 1) + j, type: 0 as const, negative: true, text: '', vertices: h, attributes: [], extra: {}, children: [] })),
  ]);
  return { id: 1, name: 'traced', lineColor: 0, colour: '#000000', visible: true, type: 3, attributes: [], regions, headers: [], plots: [], extra: {}, children: [] };
}

test('a square with a square hole traces to one outline and its hole, clockwise on screen and back', (t) => {
  const m = mask(['......', '.####.', '.#..#.', '.#..#.', '.####.', '......']);
  const outlines = traceOutlines(m.width, m.height, m.inside, { tolerance: 0, minArea: 1 });
  t.is(outlines.length, 1);
  t.is(polygonArea(outlines[0]!.outer), 16);
  t.true(signedArea(outlines[0]!.outer) > 0);
  t.is(outlines[0]!.holes.length, 1);
  t.is(polygonArea(outlines[0]!.holes[0]!), 4);
  t.true(signedArea(outlines[0]!.holes[0]!) < 0);
  t.deepEqual(outlines[0]!.outer.length, 4, 'collinear corners are dropped');
});

test('cells touching only at a corner are separate outlines, and no ring touches itself', (t) => {
  const m = mask(['#..', '.#.', '..#']);
  const outlines = traceOutlines(m.width, m.height, m.inside, { tolerance: 0, minArea: 1 });
  t.is(outlines.length, 3);
  for (const o of outlines) t.is(selfIntersection(o.outer), undefined);
  // A ring of cells joined only at corners around a hole.
  const ring = mask(['.#.', '#.#', '.#.']);
  const four = traceOutlines(ring.width, ring.height, ring.inside, { tolerance: 0, minArea: 1 });
  t.is(four.length, 4);
});

test('traced outlines rasterise back to exactly the mask they came from', (t) => {
  // Blobs with holes and islands in holes, from a fixed pseudo-random field.
  const width = 97;
  const height = 61;
  let seed = 7;
  const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  const centres = Array.from({ length: 12 }, () => [random() * width, random() * height, 4 + random() * 14] as const);
  const inside = (x: number, y: number) => centres.filter(([cx, cy, r]) => (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r).length % 2 === 1;
  const outlines = traceOutlines(width, height, inside, { tolerance: 0, minArea: 0 });
  const grid = xmlMaskGrid(width, height, 1);
  const raster = layerMask(layerOf(outlines), 'traced', grid);
  let differ = 0;
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) if ((raster.data[y * width + x] !== 0) !== inside(x, y)) differ++;
  t.is(differ, 0);
  t.true(outlines.length > 3 && outlines.some((o) => o.holes.length > 0), 'the field has several blobs and holes');
  for (const o of outlines) {
    t.is(selfIntersection(o.outer), undefined);
    for (const h of o.holes) t.is(selfIntersection(h), undefined);
  }
});

test('simplification keeps a ring within its tolerance and drops the staircase', (t) => {
  const staircase: Vertex[] = [];
  for (let i = 0; i < 50; i++) staircase.push([i, i], [i + 1, i]);
  staircase.push([50, 60], [0, 60]);
  const simple = simplify(staircase, 1);
  t.true(simple.length < 10, `${simple.length} vertices`);
  for (const p of staircase) {
    const near = simple.some((q, i) => {
      const r = simple[(i + 1) % simple.length]!;
      const [dx, dy] = [r[0] - q[0], r[1] - q[1]];
      const k = Math.max(0, Math.min(1, ((p[0] - q[0]) * dx + (p[1] - q[1]) * dy) / (dx * dx + dy * dy || 1)));
      return Math.hypot(p[0] - q[0] - k * dx, p[1] - q[1] - k * dy) <= 1 + 1e-9;
    });
    t.true(near, `${p} strays`);
  }
});

test('a probability map becomes level-0 polygons with holes; specks are dropped; grey maps only', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-outlines-'));
  const width = 100;
  const height = 80;
  const values = new Uint16Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d = Math.hypot(x + 0.5 - 40, y + 0.5 - 40);
      values[y * width + x] = d < 30 && d >= 8 ? 60000 : 3000;
    }
  }
  values[5 * width + 90] = 65535; // a one-pixel speck
  const file = path.join(dir, 'probability.png');
  await sharp(values, { raw: { width, height, channels: 1, depth: 'ushort' as const } } as never).toColourspace('grey16').png().toFile(file);
  await writeFile(path.join(dir, 'probability.json'), JSON.stringify({ downsample: { x: 12, y: 10 } }));
  const doc = await outlinesFromProbabilityMap(file, { threshold: 0.5 });
  const regions = doc.layers[0]!.regions;
  t.deepEqual(regions.map((r) => r.negative), [false, true]);
  const [outer, hole] = regions;
  // Areas in level-0 pixels: the disc of radius 30 and its hole of radius 8, scaled by 12 × 10 (within the staircase and simplification).
  t.true(Math.abs(polygonArea(outer!.vertices) - Math.PI * 30 * 30 * 120) < Math.PI * 30 * 30 * 120 * 0.05, String(polygonArea(outer!.vertices)));
  t.true(Math.abs(polygonArea(hole!.vertices) - Math.PI * 8 * 8 * 120) < Math.PI * 8 * 8 * 120 * 0.15, String(polygonArea(hole!.vertices)));
  const xs = outer!.vertices.map((v) => v[0]);
  t.true(Math.min(...xs) >= 10 * 12 - 12 && Math.max(...xs) <= 70 * 12 + 12);

  await sharp({ create: { width: 4, height: 4, channels: 3, background: '#ff0000' } }).png().toFile(path.join(dir, 'rgb.png'));
  await t.throwsAsync(outlinesFromProbabilityMap(path.join(dir, 'rgb.png'), { downsample: { x: 1, y: 1 } }), { message: /rgb\.png is not a grey probability map \(3 colour channels\)/ });
  await t.throwsAsync(outlinesFromProbabilityMap(path.join(dir, 'rgb.png')), { message: /rgb\.json \(the map's sidecar\) is missing/ });
  await t.throwsAsync(outlinesFromProbabilityMap(file, { threshold: 0 }), { message: /must be above 0/ });
});
