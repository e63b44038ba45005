import test from 'ava';
import { paintTruthBand, polygonRings } from '../../../server/challenges/submissions/index.js';

const square = (x0: number, y0: number, x1: number, y1: number) => [
  [x0, y0],
  [x1, y0],
  [x1, y1],
  [x0, y1],
  [x0, y0],
];

/** Pixels set per row of a painted raster, as strings of 0 and 1 (or the label). */
function rows(data: Uint8Array, width: number): string[] {
  return Array.from({ length: data.length / width }, (_, y) => Array.from(data.subarray(y * width, (y + 1) * width)).join(''));
}

test('a polygon with a hole, and a second polygon overlapping it: holes cut, polygons joined', (t) => {
  // Downsample 1 on an 8×6 grid: outer [0, 6) × [0, 5) minus the hole [2, 4) × [1, 3); a second square [5, 8) × [3, 6).
  const polygons = [polygonRings([square(0, 0, 6, 5), square(2, 1, 4, 3)]), polygonRings([square(5, 3, 8, 6)])];
  const data = new Uint8Array(8 * 6);
  paintTruthBand([{ polygons, value: 1 }], { width: 8, firstRow: 0, rows: 6, data }, 1);
  t.deepEqual(rows(data, 8), ['11111100', '11001100', '11001100', '11111111', '11111111', '00000111']);
});

test('bands painted one by one put together equal the whole, at any downsample', (t) => {
  const polygons = [polygonRings([[[3, 5], [70, 12], [55, 61], [20, 44], [3, 5]], square(30, 20, 40, 30)])];
  const [width, height, d] = [20, 17, 4];
  const whole = new Uint8Array(width * height);
  paintTruthBand([{ polygons, value: 1 }, { polygons: [polygonRings([square(0, 0, 16, 16)])], value: 2 }], { width, firstRow: 0, rows: height, data: whole }, d);
  const pieces = new Uint8Array(width * height);
  for (let first = 0; first < height; first += 3) {
    const n = Math.min(3, height - first);
    const band = new Uint8Array(width * n).fill(9); // painting clears what was there
    paintTruthBand([{ polygons, value: 1 }, { polygons: [polygonRings([square(0, 0, 16, 16)])], value: 2 }], { width, firstRow: first, rows: n, data: band }, d);
    pieces.set(band, first * width);
  }
  t.deepEqual(pieces, whole);
  t.true(whole.includes(1) && whole.includes(2), 'both layers are drawn, the later over the earlier');
  t.is(whole[0], 2);
});
