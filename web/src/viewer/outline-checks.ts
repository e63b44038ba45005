import { annotationsFromGeoJson } from '../../../server/annotations/from-geojson';
import { AnnotationError } from '../../../server/annotations/model';
import { describeProblems, validityProblems } from '../../../server/annotations/validity';
import type { OutlineCollection } from './outline-editor';

/**
 * The checks the server makes before it takes an outline as a version (the
 * same library: no self-crossing ring, no hole outside every shape of its
 * layer, the vertex cap, nothing beyond the slide), made in the editor before
 * saving, and one more: an outline's ring must not cross one of its own holes
 * (a vertex dragged into a hole, or a hole's vertex dragged out of the
 * outline), which would leave it unclear what is outlined.
 */

type Position = [number, number];

export interface OutlineProblem {
  message: string;
  /** The server would refuse the outline (400): saving waits until it is fixed. A hole crossed is a warning only. */
  blocking: boolean;
  /** Where to look, in level-0 pixels, when the problem is at a point. */
  at?: Position;
}

export function outlineProblems(collection: OutlineCollection, slide: { width: number; height: number }): OutlineProblem[] {
  const problems: OutlineProblem[] = [];
  try {
    const doc = annotationsFromGeoJson(collection);
    for (const problem of validityProblems(doc, slide)) {
      const near = /near \((-?\d+), (-?\d+)\)/.exec(problem.message);
      problems.push({ message: describeProblems([problem]), blocking: true, ...(near ? { at: [Number(near[1]), Number(near[2])] as Position } : {}) });
    }
  } catch (error) {
    if (!(error instanceof AnnotationError)) throw error;
    problems.push({ message: error.message, blocking: true });
  }
  collection.features.forEach((feature, index) => {
    const polygons = feature.geometry.type === 'Polygon' ? [feature.geometry.coordinates as Position[][]] : feature.geometry.type === 'MultiPolygon' ? (feature.geometry.coordinates as Position[][][]) : [];
    for (const rings of polygons) {
      for (let h = 1; h < rings.length; h++) {
        for (let other = 0; other < h; other++) {
          const at = ringsCross(rings[other]!, rings[h]!);
          if (!at) continue;
          const what = other === 0 ? 'its outline crosses one of its holes' : 'two of its holes cross';
          problems.push({
            message: `shape ${index + 1} (layer ${String(feature.properties.layerId ?? 1)}): ${what} near (${Math.round(at[0])}, ${Math.round(at[1])}); move the vertex back out of the hole, or remove the hole`,
            blocking: false,
            at,
          });
        }
      }
    }
  });
  return problems;
}

/** A point where an edge of one closed ring meets an edge of the other, or undefined. */
function ringsCross(a: readonly Position[], b: readonly Position[]): Position | undefined {
  const box = boxOf(b);
  for (let i = 0; i + 1 < a.length; i++) {
    const [p, q] = [a[i]!, a[i + 1]!];
    if (Math.max(p[0], q[0]) < box.minX || Math.min(p[0], q[0]) > box.maxX || Math.max(p[1], q[1]) < box.minY || Math.min(p[1], q[1]) > box.maxY) continue;
    for (let j = 0; j + 1 < b.length; j++) {
      const at = segmentsMeet(p, q, b[j]!, b[j + 1]!);
      if (at) return at;
    }
  }
  return undefined;
}

function boxOf(ring: readonly Position[]): { minX: number; minY: number; maxX: number; maxY: number } {
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of ring) {
    minX = Math.min(minX, x);
    minY = Math.min(minY, y);
    maxX = Math.max(maxX, x);
    maxY = Math.max(maxY, y);
  }
  return { minX, minY, maxX, maxY };
}

function cross(o: Position, a: Position, b: Position): number {
  return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
}

/** Where segments pq and rs meet (touching counts), or undefined. */
function segmentsMeet(p: Position, q: Position, r: Position, s: Position): Position | undefined {
  const d1 = cross(r, s, p);
  const d2 = cross(r, s, q);
  const d3 = cross(p, q, r);
  const d4 = cross(p, q, s);
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) {
    const t = d1 / (d1 - d2);
    return [p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])];
  }
  const on = (o: Position, a: Position, b: Position) => Math.min(o[0], a[0]) <= b[0] && b[0] <= Math.max(o[0], a[0]) && Math.min(o[1], a[1]) <= b[1] && b[1] <= Math.max(o[1], a[1]);
  if (d1 === 0 && on(r, s, p)) return p;
  if (d2 === 0 && on(r, s, q)) return q;
  if (d3 === 0 && on(p, q, r)) return r;
  if (d4 === 0 && on(p, q, s)) return s;
  return undefined;
}
