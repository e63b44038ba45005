/**
 * Scanline rasterisation of ImageScope shapes at pixel centres.
 *
 * Mask pixel (i, j) stands for the level-0 point ((i + ½)·dx, (j + ½)·dy).
 * Polygons (and rectangles, as their four corners) are filled even-odd with
 * the convention of `pointInRing` in server/annotations: an edge counts for a
 * row when the centre's y lies in [min y, max y), and a centre is inside when
 * an odd number of crossings lies at or left of it — so a centre exactly on a
 * left edge is in and one on a right edge is out, and a rectangle of w level-0
 * pixels covers w / dx mask pixels. Ellipses are filled exactly (not as
 * polygons): a centre is inside when u² + v² ≤ 1, as `regionContains` says.
 *
 * Work is proportional to the edges plus the rows and spans touched: each
 * edge is bucketed into the rows it crosses, never tested against every row.
 */
import { RegionType, type AperioRegion, type Vertex } from '../annotations/index.js';

/** Where a raster lies over level 0: its size and the level-0 pixels per raster pixel. */
export interface RasterGrid {
  width: number;
  height: number;
  downsample: { x: number; y: number };
  data: Uint8Array;
  /**
   * The first row `data` holds, when it is a band of a taller raster (rows
   * firstRow … firstRow + height − 1 of it; default 0): shapes are filled in
   * the taller raster's coordinates, so bands put together equal the whole.
   */
  firstRow?: number;
}

/** The smallest k with (k + ½)·d ≥ v: the first pixel whose centre is at or past v. */
export function firstCentreFrom(v: number, d: number): number {
  let k = Math.ceil(v / d - 0.5);
  while ((k + 0.5) * d < v) k++;
  while ((k - 0.5) * d >= v) k--;
  return k;
}

/** Paint `value` over the pixels whose centres lie inside the shape region (arrows and rulers paint nothing). */
export function fillRegion(grid: RasterGrid, region: Pick<AperioRegion, 'type' | 'vertices'>, value: number): void {
  if (region.type === RegionType.ellipse) fillEllipse(grid, region.vertices, value);
  else if (region.type === RegionType.rectangle) fillRing(grid, rectangleRing(region.vertices), value);
  else if (region.type === RegionType.polygon) fillRing(grid, region.vertices, value);
}

function rectangleRing(vertices: readonly Vertex[]): Vertex[] {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of vertices) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  return [
    [minX, minY],
    [maxX, minY],
    [maxX, maxY],
    [minX, maxY],
  ];
}

/** Even-odd fill of one ring (a repeated closing vertex adds a zero-length edge, which never counts). */
export function fillRing(grid: RasterGrid, ring: readonly Vertex[], value: number): void {
  fillRings(grid, [ring], value);
}

/**
 * Even-odd fill of several rings together: a centre is inside when the
 * crossings of all rings at or left of it are odd, so a GeoJSON polygon's
 * holes (its rings after the first) are cut from its outline. Only inside
 * pixels are painted: filling several polygons one by one gives their union.
 */
export function fillRings(grid: RasterGrid, rings: readonly (readonly Vertex[])[], value: number): void {
  const { width, height, data } = grid;
  const dx = grid.downsample.x;
  const dy = grid.downsample.y;
  let minY = Infinity;
  let maxY = -Infinity;
  for (const ring of rings) {
    if (ring.length < 3) continue;
    for (const [, y] of ring) {
      minY = Math.min(minY, y);
      maxY = Math.max(maxY, y);
    }
  }
  if (!(minY < maxY)) return;
  const top = grid.firstRow ?? 0;
  const row0 = Math.max(top, firstCentreFrom(minY, dy));
  const row1 = Math.min(top + height, firstCentreFrom(maxY, dy)); // exclusive
  if (row1 <= row0) return;
  const rows = row1 - row0;

  // Bucket each edge into the rows whose centre y lies in [min y, max y) of the edge: count, then place.
  const starts = new Int32Array(rows + 1);
  const edgeRows = (lo: number, hi: number): [number, number] => [Math.max(row0, firstCentreFrom(lo, dy)), Math.min(row1, firstCentreFrom(hi, dy))];
  for (const ring of rings) {
    const n = ring.length;
    if (n < 3) continue;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const yi = ring[i]![1];
      const yj = ring[j]![1];
      if (yi === yj) continue;
      const [a, b] = edgeRows(Math.min(yi, yj), Math.max(yi, yj));
      for (let r = a; r < b; r++) starts[r - row0 + 1]!++;
    }
  }
  for (let r = 0; r < rows; r++) starts[r + 1]! += starts[r]!;
  const xs = new Float64Array(starts[rows]!);
  const fillAt = starts.slice(0, rows);
  for (const ring of rings) {
    const n = ring.length;
    if (n < 3) continue;
    for (let i = 0, j = n - 1; i < n; j = i++) {
      const [xi, yi] = ring[i]!;
      const [xj, yj] = ring[j]!;
      if (yi === yj) continue;
      const [a, b] = edgeRows(Math.min(yi, yj), Math.max(yi, yj));
      for (let r = a; r < b; r++) {
        const y = (r + 0.5) * dy;
        // The same expression as pointInRing, so that both agree on every centre.
        xs[fillAt[r - row0]!++] = ((xj - xi) * (y - yi)) / (yj - yi) + xi;
      }
    }
  }

  for (let r = 0; r < rows; r++) {
    const crossings = xs.subarray(starts[r]!, starts[r + 1]!).sort();
    const offset = (r + row0 - top) * width;
    for (let k = 0; k + 1 < crossings.length; k += 2) {
      const from = Math.max(0, firstCentreFrom(crossings[k]!, dx));
      const to = Math.min(width, firstCentreFrom(crossings[k + 1]!, dx));
      if (to > from) data.fill(value, offset + from, offset + to);
    }
  }
}

/** The ellipse inscribed in the bounding box of the vertices; centres with u² + v² ≤ 1 are inside. */
function fillEllipse(grid: RasterGrid, vertices: readonly Vertex[], value: number): void {
  const box = rectangleRing(vertices);
  const [minX, minY] = box[0]!;
  const [maxX, maxY] = box[2]!;
  const a = (maxX - minX) / 2;
  const c = (maxY - minY) / 2;
  if (!(a > 0 && c > 0)) return;
  const cx = (minX + maxX) / 2;
  const cy = (minY + maxY) / 2;
  const { width, height, data } = grid;
  const dx = grid.downsample.x;
  const dy = grid.downsample.y;
  const inside = (i: number, v2: number) => {
    const u = ((i + 0.5) * dx - cx) / a;
    return u * u + v2 <= 1;
  };
  const top = grid.firstRow ?? 0;
  const row0 = Math.max(top, firstCentreFrom(minY, dy) - 1);
  const row1 = Math.min(top + height - 1, firstCentreFrom(maxY, dy) + 1);
  for (let r = row0; r <= row1; r++) {
    const v = ((r + 0.5) * dy - cy) / c;
    const v2 = v * v;
    if (v2 > 1) continue;
    const half = a * Math.sqrt(1 - v2);
    // An estimate from the closed form, then settled with the predicate itself.
    let from = firstCentreFrom(cx - half, dx);
    let to = firstCentreFrom(cx + half, dx) - 1;
    while (inside(from - 1, v2)) from--;
    while (from <= to && !inside(from, v2)) from++;
    while (inside(to + 1, v2)) to++;
    while (to >= from && !inside(to, v2)) to--;
    from = Math.max(0, from);
    to = Math.min(width - 1, to);
    if (to >= from) data.fill(value, (r - top) * width + from, (r - top) * width + to + 1);
  }
}
