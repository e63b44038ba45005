/**
 * Whether an annotation file fits its slide: a file whose vertices fall
 * outside the level-0 image belongs to another slide (or another scan of it),
 * and the ingest quarantines it rather than publish a misplaced overlay.
 */
import { regionWhere, type AperioAnnotations, type Vertex } from './model.js';

export interface BoundsProblem {
  layerId: number;
  regionId: number;
  /** How many of the region's vertices lie outside, of how many. */
  outside: number;
  vertices: number;
  /** The first vertex outside. */
  first: Vertex;
  /** One sentence for the ingest record. */
  message: string;
}

/**
 * Pixels a vertex may lie beyond the image before it counts as outside:
 * 1% of the larger side, at least 4 px. Rulers and outlines drawn along the
 * tissue edge in ImageScope often end a little past the border.
 */
export function defaultBoundsTolerance(width: number, height: number): number {
  return Math.max(4, 0.01 * Math.max(width, height));
}

/** One problem per region with vertices outside [−t, width + t] × [−t, height + t]; empty when all fit. */
export function checkBounds(doc: AperioAnnotations, width: number, height: number, tolerance = defaultBoundsTolerance(width, height)): BoundsProblem[] {
  for (const [name, value] of [['width', width], ['height', height]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`checkBounds: ${name} must be a positive number, not ${value}`);
  }
  if (!Number.isFinite(tolerance) || tolerance < 0) throw new RangeError(`checkBounds: tolerance must be a number ≥ 0, not ${tolerance}`);
  const problems: BoundsProblem[] = [];
  doc.layers.forEach((layer, li) => {
    layer.regions.forEach((region, ri) => {
      const outside = region.vertices.filter(([x, y]) => x < -tolerance || y < -tolerance || x > width + tolerance || y > height + tolerance);
      if (outside.length === 0) return;
      const first = outside[0]!;
      problems.push({
        layerId: layer.id,
        regionId: region.id,
        outside: outside.length,
        vertices: region.vertices.length,
        first: [first[0], first[1]],
        message:
          `${regionWhere(li, layer.id, ri, region.id)}: ${outside.length} of ${region.vertices.length} vertices lie outside ` +
          `the ${width}×${height} image (first at ${first[0]}, ${first[1]})`,
      });
    });
  });
  return problems;
}
