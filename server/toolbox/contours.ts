/**
 * Outlines from a mask: the boundary between set and unset cells traced
 * along the cell edges, so that every ring is closed and rings never cross;
 * foreground cells that touch only at a corner belong to separate rings
 * (4-connectivity), so no ring touches itself. Rings are then simplified
 * (Douglas–Peucker) and sorted into outlines and the holes inside them.
 *
 * Coordinates are in cells (x right, y down), corners at whole numbers.
 */
import { pointInRing, polygonArea, signedArea, type Vertex } from '../annotations/index.js';

export interface Outline {
  outer: Vertex[];
  holes: Vertex[][];
}

export interface TraceOptions {
  /** Largest distance, in cells, a simplified ring may stray from the traced one (default 1). */
  tolerance?: number;
  /** Rings enclosing fewer cells than this are dropped, outlines and holes alike (default 4). */
  minArea?: number;
}

/** Outlines of the cells where `inside(x, y)` holds, on a `width`×`height` grid. */
export function traceOutlines(width: number, height: number, inside: (x: number, y: number) => boolean, options: TraceOptions = {}): Outline[] {
  const tolerance = options.tolerance ?? 1;
  const minArea = options.minArea ?? 4;
  const set = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && inside(x, y);
  const stride = width + 1;
  // Directed edges with the set cell on their right as drawn (y down): outer rings run clockwise on screen.
  const next = new Map<number, number[]>();
  const add = (x0: number, y0: number, x1: number, y1: number) => {
    const from = y0 * stride + x0;
    const list = next.get(from);
    if (list) list.push(y1 * stride + x1);
    else next.set(from, [y1 * stride + x1]);
  };
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!set(x, y)) continue;
      if (!set(x, y - 1)) add(x, y, x + 1, y);
      if (!set(x + 1, y)) add(x + 1, y, x + 1, y + 1);
      if (!set(x, y + 1)) add(x + 1, y + 1, x, y + 1);
      if (!set(x - 1, y)) add(x, y + 1, x, y);
    }
  }

  const rings: Vertex[][] = [];
  for (const [start, targets] of next) {
    while (targets.length > 0) {
      const ring: Vertex[] = [];
      let from = start;
      let to = targets.pop()!;
      for (;;) {
        ring.push([from % stride, Math.floor(from / stride)]);
        if (to === start) break;
        const choices = next.get(to)!;
        // Two ways on at a corner where set cells meet diagonally: turn so as to keep them apart.
        const pick = choices.length === 1 ? 0 : sharperRight(from, to, choices, stride);
        const after = choices.splice(pick, 1)[0]!;
        from = to;
        to = after;
      }
      rings.push(...splitPinches(ring));
    }
  }

  const simplified = rings
    .map((ring) => removeCollinear(simplify(ring, tolerance)))
    .filter((ring) => ring.length >= 3 && polygonArea(ring) >= minArea);
  // Clockwise on screen (y down) is a positive shoelace area: outer rings; the others are holes.
  const outers = simplified.filter((r) => signedArea(r) > 0).map((outer) => ({ outer, holes: [] as Vertex[][], area: polygonArea(outer) }));
  outers.sort((a, b) => a.area - b.area);
  for (const hole of simplified.filter((r) => signedArea(r) < 0)) {
    const probe: Vertex = [hole[0]![0] + 0.5, hole[0]![1] + 0.5];
    const owner = outers.find((o) => pointInRing(probe, o.outer) || hole.some((p) => pointInRing(p, o.outer)));
    if (owner) owner.holes.push(hole);
  }
  return outers.map(({ outer, holes }) => ({ outer, holes }));
}

/**
 * A ring that passes one corner twice (a hole whose unset cells meet only at
 * that corner) as the simple loops it is made of; each keeps the orientation.
 */
function splitPinches(ring: Vertex[]): Vertex[][] {
  const loops: Vertex[][] = [];
  const path: Vertex[] = [];
  const at = new Map<string, number>();
  for (const point of ring) {
    const key = `${point[0]},${point[1]}`;
    const seen = at.get(key);
    if (seen !== undefined) {
      const loop = path.splice(seen);
      for (const p of loop) at.delete(`${p[0]},${p[1]}`);
      loops.push(loop);
    }
    at.set(key, path.length);
    path.push(point);
  }
  loops.push(path);
  return loops;
}

/** Among the edges leaving `to`, the one that turns right of the way we came (keeps diagonal cells in separate rings). */
function sharperRight(from: number, to: number, choices: number[], stride: number): number {
  const dx = (to % stride) - (from % stride);
  const dy = Math.floor(to / stride) - Math.floor(from / stride);
  let best = 0;
  let bestTurn = -Infinity;
  choices.forEach((c, i) => {
    const ex = (c % stride) - (to % stride);
    const ey = Math.floor(c / stride) - Math.floor(to / stride);
    const turn = dx * ey - dy * ex; // > 0: a right turn on screen (y down)
    if (turn > bestTurn) {
      bestTurn = turn;
      best = i;
    }
  });
  return best;
}

/** Douglas–Peucker on a closed ring, anchored at its first vertex and the vertex farthest from it. */
export function simplify(ring: readonly Vertex[], tolerance: number): Vertex[] {
  if (ring.length <= 4 || tolerance <= 0) return [...ring];
  const first = ring[0]!;
  let far = 0;
  let farDistance = -1;
  ring.forEach((p, i) => {
    const d = (p[0] - first[0]) ** 2 + (p[1] - first[1]) ** 2;
    if (d > farDistance) {
      farDistance = d;
      far = i;
    }
  });
  const keep = new Uint8Array(ring.length);
  keep[0] = keep[far] = 1;
  const closed = [...ring, first];
  const stack: [number, number][] = [
    [0, far],
    [far, ring.length],
  ];
  while (stack.length > 0) {
    const [a, b] = stack.pop()!;
    let worst = -1;
    let worstDistance = 0;
    for (let i = a + 1; i < b; i++) {
      const d = distanceToSegment(closed[i]!, closed[a]!, closed[b]!);
      if (d > worstDistance) {
        worstDistance = d;
        worst = i;
      }
    }
    if (worst >= 0 && worstDistance > tolerance) {
      keep[worst] = 1;
      stack.push([a, worst], [worst, b]);
    }
  }
  return ring.filter((_, i) => keep[i] === 1);
}

function removeCollinear(ring: Vertex[]): Vertex[] {
  const out: Vertex[] = [];
  for (let i = 0; i < ring.length; i++) {
    const prev = ring[(i + ring.length - 1) % ring.length]!;
    const p = ring[i]!;
    const next = ring[(i + 1) % ring.length]!;
    const cross = (p[0] - prev[0]) * (next[1] - p[1]) - (p[1] - prev[1]) * (next[0] - p[0]);
    if (cross !== 0) out.push(p);
  }
  return out;
}

function distanceToSegment(p: Vertex, a: Vertex, b: Vertex): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const length = dx * dx + dy * dy;
  const t = length === 0 ? 0 : Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length));
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}
