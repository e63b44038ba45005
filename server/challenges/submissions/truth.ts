/**
 * The hidden truth of a slide rasterised band by band on the grid of its
 * mask, with the toolbox's scanline rasteriser (pixel centres, even-odd
 * within a polygon so its holes are cut, union across polygons), so that a
 * truth of any size is never held whole in memory.
 */
import type { Vertex } from '../../annotations/index.js';
import { fillRings } from '../../toolbox/raster.js';

/** A GeoJSON Polygon's coordinates (outer ring, then holes) as rings of level-0 vertices; malformed positions are dropped. */
export function polygonRings(polygon: readonly (readonly (readonly number[])[])[]): Vertex[][] {
  return polygon.map((ring) => ring.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])).map((p): Vertex => [p[0]!, p[1]!]));
}

export interface TruthLayer {
  polygons: Vertex[][][];
  /** The label painted inside. */
  value: number;
}

/**
 * Paint rows firstRow … firstRow + rows − 1 of the truth at `downsample`:
 * 0 outside every layer, else the value of the last layer that covers the
 * pixel centre. `data` (rows × width) is overwritten.
 */
export function paintTruthBand(layers: readonly TruthLayer[], band: { width: number; firstRow: number; rows: number; data: Uint8Array }, downsample: number): void {
  band.data.fill(0);
  const grid = { width: band.width, height: band.rows, firstRow: band.firstRow, downsample: { x: downsample, y: downsample }, data: band.data };
  for (const layer of layers) for (const polygon of layer.polygons) fillRings(grid, polygon, layer.value);
}
