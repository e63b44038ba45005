/**
 * Whether an annotation can be taken as a version of a slide's outline: every
 * polygon simple (no edge crossing another), every hole inside a shape of its
 * layer, nothing beyond the slide, something to annotate at all. Problems are
 * named by layer and region so that a pathologist can find them.
 */
import { boundingBox, openRing, placeHoles } from './geometry.js';
import { RegionType, isShape, type AperioAnnotations, type Vertex } from './model.js';

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
    const { unplaced } = placeHoles(layer.regions);
    for (const index of unplaced) problems.push({ layerId: layer.id, regionId: layer.regions[index]!.id, message: 'is a hole outside every shape of its layer' });
  }
  if (shapes === 0) problems.unshift({ layerId: doc.layers[0]?.id ?? 0, regionId: null, message: 'the annotation has no region to outline (it is empty)' });
  return problems;
}

/** One line per problem, e.g. "layer 1 region 3 crosses itself near (120, 88)". */
export function describeProblems(problems: readonly ValidityProblem[]): string {
  return problems.map((p) => (p.regionId === null ? p.message : `layer ${p.layerId} region ${p.regionId} ${p.message}`)).join('; ');
}

/**
 * A point where two non-adjacent edges of the ring meet, or undefined when
 * the ring is simple. Edges are swept in x order so that rings of thousands
 * of vertices stay cheap.
 */
export function selfIntersection(vertices: readonly Vertex[]): Vertex | undefined {
  // A vertex repeated at once (a zero-length edge, common in ImageScope files) is not a crossing.
  const ring = vertices.filter((v, i) => {
    const before = vertices[(i + vertices.length - 1) % vertices.length]!;
    return v[0] !== before[0] || v[1] !== before[1];
  });
  const n = ring.length;
  if (n < 4) return undefined;
  const edges = Array.from({ length: n }, (_, i) => {
    const a = ring[i]!;
    const b = ring[(i + 1) % n]!;
    return { i, a, b, minX: Math.min(a[0], b[0]), maxX: Math.max(a[0], b[0]) };
  }).sort((p, q) => p.minX - q.minX);
  for (let k = 0; k < edges.length; k++) {
    const e = edges[k]!;
    for (let m = k + 1; m < edges.length && edges[m]!.minX <= e.maxX; m++) {
      const f = edges[m]!;
      const gap = Math.abs(e.i - f.i);
      if (gap === 1 || gap === n - 1) continue; // neighbours share a vertex
      const hit = segmentsMeet(e.a, e.b, f.a, f.b);
      if (hit) return hit;
    }
  }
  return undefined;
}

function segmentsMeet(p1: Vertex, p2: Vertex, p3: Vertex, p4: Vertex): Vertex | undefined {
  const d1 = cross(p3, p4, p1);
  const d2 = cross(p3, p4, p2);
  const d3 = cross(p1, p2, p3);
  const d4 = cross(p1, p2, p4);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) {
    const t = d1 / (d1 - d2);
    return [p1[0] + t * (p2[0] - p1[0]), p1[1] + t * (p2[1] - p1[1])];
  }
  if (d1 === 0 && onSegment(p3, p4, p1)) return p1;
  if (d2 === 0 && onSegment(p3, p4, p2)) return p2;
  if (d3 === 0 && onSegment(p1, p2, p3)) return p3;
  if (d4 === 0 && onSegment(p1, p2, p4)) return p4;
  return undefined;
}

function cross(a: Vertex, b: Vertex, c: Vertex): number {
  return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
}

function onSegment(a: Vertex, b: Vertex, p: Vertex): boolean {
  return Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
}

function round(v: number): number {
  return Math.round(v);
}

