/**
 * Whether an annotation can be taken as a version of a slide's outline: no
 * more vertices than an outline may have, every polygon simple (no edge
 * crossing another), every hole inside a shape of its layer, nothing beyond
 * the slide, something to annotate at all. Problems are named by layer and
 * region so that a pathologist can find them.
 *
 * The work is bounded by the outline's size: the vertex cap comes first, the
 * crossing check is a sweep (O(n log n)), and placing the holes stops at a
 * fixed number of vertex tests.
 */
import { boundingBox, openRing, PlacementTooCostly, placeHoles } from './geometry.js';
import { RegionType, isShape, type AperioAnnotations } from './model.js';
import { selfIntersection } from './self-crossing.js';

/** The most vertices one annotation may have, over all its regions (hand-drawn outlines have a few thousand). */
export const MAX_OUTLINE_VERTICES = 100_000;

/** The most point-in-shape vertex tests placing a layer's holes may take (a fraction of a second). */
export const MAX_PLACEMENT_TESTS = 10_000_000;

/** Problems listed at most; the rest are counted. */
const MAX_PROBLEMS = 50;

export interface ValidityProblem {
  layerId: number;
  regionId: number | null;
  message: string;
}

export interface ValidityOptions {
  /** Level-0 size of the slide; vertices may lie up to `tolerance` pixels beyond it. */
  width: number;
  height: number;
  tolerance?: number;
}

/** Every problem that stops the annotation from being a version; empty when there is none. */
export function validityProblems(doc: AperioAnnotations, options: ValidityOptions): ValidityProblem[] {
  const vertices = countVertices(doc);
  if (vertices > MAX_OUTLINE_VERTICES) {
    return [
      {
        layerId: doc.layers[0]?.id ?? 0,
        regionId: null,
        message: `the annotation has ${vertices} vertices, more than the ${MAX_OUTLINE_VERTICES} an outline may have; simplify it (fewer vertices per region) and send it again`,
      },
    ];
  }
  const problems: ValidityProblem[] = [];
  const tolerance = options.tolerance ?? 1;
  let shapes = 0;
  for (const layer of doc.layers) {
    for (const region of layer.regions) {
      if (!isShape(region.type)) continue;
      if (!region.negative) shapes++;
      const box = boundingBox(region.vertices);
      if (box.minX < -tolerance || box.minY < -tolerance || box.maxX > options.width + tolerance || box.maxY > options.height + tolerance) {
        problems.push({
          layerId: layer.id,
          regionId: region.id,
          message: `lies outside the ${options.width}×${options.height} slide (it spans x ${round(box.minX)}–${round(box.maxX)}, y ${round(box.minY)}–${round(box.maxY)})`,
        });
        continue;
      }
      if (region.type === RegionType.polygon) {
        const crossing = selfIntersection(openRing(region.vertices));
        if (crossing) problems.push({ layerId: layer.id, regionId: region.id, message: `crosses itself near (${round(crossing[0])}, ${round(crossing[1])})` });
      }
    }
    try {
      const { unplaced } = placeHoles(layer.regions, { maxVertexTests: MAX_PLACEMENT_TESTS });
      for (const index of unplaced) problems.push({ layerId: layer.id, regionId: layer.regions[index]!.id, message: 'is a hole outside every shape of its layer' });
    } catch (error) {
      if (!(error instanceof PlacementTooCostly)) throw error;
      const holes = layer.regions.filter((r) => isShape(r.type) && r.negative).length;
      problems.push({ layerId: layer.id, regionId: null, message: `layer ${layer.id} has too many holes (${holes}) over shapes too large to place them within the work one outline may take; merge or simplify them` });
    }
  }
  if (shapes === 0) problems.unshift({ layerId: doc.layers[0]?.id ?? 0, regionId: null, message: 'the annotation has no region to outline (it is empty)' });
  if (problems.length <= MAX_PROBLEMS) return problems;
  return [...problems.slice(0, MAX_PROBLEMS), { layerId: problems[MAX_PROBLEMS]!.layerId, regionId: null, message: `and ${problems.length - MAX_PROBLEMS} more problems` }];
}

/** Vertices of every region of every layer. */
export function countVertices(doc: AperioAnnotations): number {
  let count = 0;
  for (const layer of doc.layers) for (const region of layer.regions) count += region.vertices.length;
  return count;
}

/** One line per problem, e.g. "layer 1 region 3 crosses itself near (120, 88)". */
export function describeProblems(problems: readonly ValidityProblem[]): string {
  return problems.map((p) => (p.regionId === null ? p.message : `layer ${p.layerId} region ${p.regionId} ${p.message}`)).join('; ');
}

function round(v: number): number {
  return Math.round(v);
}

