/**
 * Plane geometry of ImageScope regions, in level-0 pixels (x right, y down).
 *
 * Polygons are their vertices; a rectangle is the bounding box of its corners
 * and an ellipse the ellipse inscribed in the bounding box of its two
 * vertices, which is how ImageScope draws them (neither can be rotated).
 */
import { RegionType, isShape, type AperioRegion, type Vertex } from './model.js';

/** Vertices used for an ellipse when it has to be a polygon (GeoJSON, masks). */
export const ELLIPSE_SEGMENTS = 64;

export interface Box {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

export function boundingBox(vertices: readonly Vertex[]): Box {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const [x, y] of vertices) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return { minX, minY, maxX, maxY };
}

/**
 * Twice the signed shoelace area, for a ring whether or not it repeats its
 * first vertex. Positive means counter-clockwise in the usual mathematical
 * axes (y up), which is clockwise as drawn on screen with y down.
 */
function doubleSignedArea(ring: readonly Vertex[]): number {
  let sum = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    sum += ring[j]![0] * ring[i]![1] - ring[i]![0] * ring[j]![1];
  }
  return sum;
}

export function signedArea(ring: readonly Vertex[]): number {
  return doubleSignedArea(ring) / 2;
}

/** Shoelace area of a ring (positive whatever its orientation). */
export function polygonArea(ring: readonly Vertex[]): number {
  return Math.abs(doubleSignedArea(ring)) / 2;
}

/** The vertices without a last one that repeats the first. */
export function openRing(vertices: readonly Vertex[]): Vertex[] {
  const first = vertices[0];
  const last = vertices[vertices.length - 1];
  const closed = vertices.length > 1 && first![0] === last![0] && first![1] === last![1];
  return vertices.slice(0, closed ? -1 : undefined);
}

/** The outline of a shape region as an open ring (no repeated vertex); lines give their vertices. */
export function regionRing(region: Pick<AperioRegion, 'type' | 'vertices'>, segments = ELLIPSE_SEGMENTS): Vertex[] {
  if (region.type === RegionType.rectangle) {
    const b = boundingBox(region.vertices);
    return [
      [b.minX, b.minY],
      [b.maxX, b.minY],
      [b.maxX, b.maxY],
      [b.minX, b.maxY],
    ];
  }
  if (region.type === RegionType.ellipse) {
    const b = boundingBox(region.vertices);
    const cx = (b.minX + b.maxX) / 2;
    const cy = (b.minY + b.maxY) / 2;
    const a = (b.maxX - b.minX) / 2;
    const c = (b.maxY - b.minY) / 2;
    return Array.from({ length: segments }, (_, i): Vertex => {
      const theta = (2 * Math.PI * i) / segments;
      return [cx + a * Math.cos(theta), cy + c * Math.sin(theta)];
    });
  }
  return region.type === RegionType.polygon ? openRing(region.vertices) : region.vertices.slice();
}

/** Area in px²: shoelace for polygons, width × height for rectangles, π·a·b for ellipses, 0 for lines. */
export function regionArea(region: Pick<AperioRegion, 'type' | 'vertices'>): number {
  if (region.type === RegionType.polygon) return polygonArea(region.vertices);
  if (region.type === RegionType.rectangle || region.type === RegionType.ellipse) {
    const b = boundingBox(region.vertices);
    const area = (b.maxX - b.minX) * (b.maxY - b.minY);
    return region.type === RegionType.rectangle ? area : (Math.PI * area) / 4;
  }
  return 0;
}

/** Perimeter in px (Ramanujan's approximation for ellipses); the polyline's length for arrows and rulers. */
export function regionLength(region: Pick<AperioRegion, 'type' | 'vertices'>): number {
  if (region.type === RegionType.ellipse) {
    const b = boundingBox(region.vertices);
    const a = (b.maxX - b.minX) / 2;
    const c = (b.maxY - b.minY) / 2;
    return Math.PI * (3 * (a + c) - Math.sqrt((3 * a + c) * (a + 3 * c)));
  }
  const points = regionRing(region);
  const closed = isShape(region.type);
  let sum = 0;
  for (let i = 1; i < points.length + (closed ? 1 : 0); i++) {
    const p = points[i % points.length]!;
    const q = points[i - 1]!;
    sum += Math.hypot(p[0] - q[0], p[1] - q[1]);
  }
  return sum;
}

/** Even-odd point-in-ring test (a point exactly on an edge may fall either way). */
export function pointInRing(point: Vertex, ring: readonly Vertex[]): boolean {
  const [x, y] = point;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** Whether `point` lies inside a shape region (rectangles and ellipses exactly, not as polygons). */
export function regionContains(region: Pick<AperioRegion, 'type' | 'vertices'>, point: Vertex): boolean {
  if (region.type === RegionType.polygon) return pointInRing(point, region.vertices);
  const b = boundingBox(region.vertices);
  if (region.type === RegionType.rectangle) return point[0] >= b.minX && point[0] <= b.maxX && point[1] >= b.minY && point[1] <= b.maxY;
  if (region.type === RegionType.ellipse) {
    const a = (b.maxX - b.minX) / 2;
    const c = (b.maxY - b.minY) / 2;
    if (a === 0 || c === 0) return false;
    const u = (point[0] - (b.minX + b.maxX) / 2) / a;
    const v = (point[1] - (b.minY + b.maxY) / 2) / c;
    return u * u + v * v <= 1;
  }
  return false;
}

export interface HolePlacement {
  /** For each placed hole (by region index): the index of the shape it is cut from. */
  owner: Map<number, number>;
  /** Placed holes whose first vertex lies in no shape: they cross their shape's outline (see placeHoles). */
  crossing: number[];
  /** Holes that touch no positive shape of their layer (region indices): callers drop them and say so. */
  unplaced: number[];
}

/** Hole vertices tried when the first one lies in no shape (evenly spaced, to bound the work). */
const CROSSING_SAMPLES = 64;

/** Thrown by placeHoles when placing the holes would take more than the work it was allowed. */
export class PlacementTooCostly extends Error {
  constructor(readonly limit: number) {
    super(`placing the holes takes more than ${limit} vertex tests`);
    this.name = 'PlacementTooCostly';
  }
}

/**
 * Which shape each hole of a layer is cut from: the smallest positive shape
 * of the same layer that contains the hole's first vertex.
 *
 * Real files also hold holes drawn across an outline to cut a notch out of
 * its edge (two of the three in NP391-16_PLP_LVC_20x.xml start outside the
 * outline): dropping them would lose the notch, so a hole whose first vertex
 * lies in no shape goes to the shape that contains most of its vertices
 * (the smaller one on a tie) and is listed in `crossing`. A hole with no
 * vertex in any shape is unplaced. Arrows and rulers are never holes.
 *
 * Each point tested inside a shape costs the shape's vertices; with
 * `maxVertexTests`, a layer that would cost more (many holes over large
 * overlapping shapes) throws PlacementTooCostly instead.
 */
export function placeHoles(regions: readonly AperioRegion[], { maxVertexTests = Infinity }: { maxVertexTests?: number } = {}): HolePlacement {
  const positives = regions
    .map((region, index) => ({ region, index, area: regionArea(region), box: boundingBox(region.vertices) }))
    .filter(({ region }) => isShape(region.type) && !region.negative)
    .sort((a, b) => a.area - b.area);
  let tests = 0;
  const contains = (shape: (typeof positives)[number], point: Vertex) => {
    if (point[0] < shape.box.minX || point[0] > shape.box.maxX || point[1] < shape.box.minY || point[1] > shape.box.maxY) return false;
    tests += shape.region.vertices.length;
    if (tests > maxVertexTests) throw new PlacementTooCostly(maxVertexTests);
    return regionContains(shape.region, point);
  };
  const owner = new Map<number, number>();
  const crossing: number[] = [];
  const unplaced: number[] = [];
  regions.forEach((hole, index) => {
    if (!hole.negative || !isShape(hole.type)) return;
    const found = positives.find((shape) => contains(shape, hole.vertices[0]!));
    if (found) {
      owner.set(index, found.index);
      return;
    }
    const step = Math.max(1, Math.floor(hole.vertices.length / CROSSING_SAMPLES));
    const sample = hole.vertices.filter((_, i) => i % step === 0);
    let best: { index: number; count: number } | undefined;
    for (const shape of positives) {
      const count = sample.filter((point) => contains(shape, point)).length;
      if (count > (best?.count ?? 0)) best = { index: shape.index, count };
    }
    if (best) {
      owner.set(index, best.index);
      crossing.push(index);
    } else unplaced.push(index);
  });
  return { owner, crossing, unplaced };
}
