/**
 * Where a ring crosses or touches itself, found with a Shamos–Hoey sweep:
 * edge endpoints are visited from left to right while the edges the sweep
 * line cuts are kept in a balanced tree, ordered from top to bottom. Two
 * edges that meet are neighbours in that order just before the leftmost
 * point where they meet, so only neighbours are ever tested, and a ring of n
 * vertices costs O(n log n) whatever its shape.
 */
import type { Vertex } from './model.js';

interface Edge {
  /** Position in the ring: edges i and i ± 1 share a vertex and are never a crossing. */
  index: number;
  /** Left endpoint (smaller x, then smaller y) and right endpoint. */
  left: Vertex;
  right: Vertex;
}

/**
 * A point where two non-adjacent edges of the ring meet, or undefined when
 * the ring is simple. The ring is open (no repeated closing vertex); a vertex
 * repeated at once (a zero-length edge, common in ImageScope files) is not a
 * crossing.
 */
export function selfIntersection(vertices: readonly Vertex[]): Vertex | undefined {
  const ring = vertices.filter((v, i) => {
    const before = vertices[(i + vertices.length - 1) % vertices.length]!;
    return v[0] !== before[0] || v[1] !== before[1];
  });
  const n = ring.length;
  if (n < 4) return undefined;
  const edges: Edge[] = ring.map((a, index) => {
    const b = ring[(index + 1) % n]!;
    return before(a, b) ? { index, left: a, right: b } : { index, left: b, right: a };
  });
  // Each edge enters at its left endpoint and leaves at its right one. At one point, entries come
  // first, so that an edge that starts where another ends is still compared with it.
  const events: { edge: Edge; at: Vertex; enters: boolean }[] = [];
  for (const edge of edges) events.push({ edge, at: edge.left, enters: true }, { edge, at: edge.right, enters: false });
  events.sort((p, q) => p.at[0] - q.at[0] || p.at[1] - q.at[1] || (p.enters === q.enters ? 0 : p.enters ? -1 : 1));

  const adjacent = (e: Edge, f: Edge) => {
    const gap = Math.abs(e.index - f.index);
    return gap === 1 || gap === n - 1;
  };
  const meet = (e: Edge | undefined, f: Edge | undefined): Vertex | undefined => {
    if (!e || !f) return undefined;
    return adjacent(e, f) ? doublesBack(e, f) : segmentsMeet(e.left, e.right, f.left, f.right);
  };

  const cut = new Treap<Edge>(below);
  for (const { edge, enters } of events) {
    if (enters) {
      cut.insert(edge);
      const hit = meet(edge, cut.before(edge)) ?? meet(edge, cut.after(edge));
      if (hit) return hit;
    } else {
      const [up, down] = [cut.before(edge), cut.after(edge)];
      cut.remove(edge);
      const hit = meet(up, down);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * Neighbouring edges share a vertex; they meet elsewhere only when the ring
 * turns back along itself there (a spike), which then lies over the other
 * edge: counted as a crossing, at the spike's tip.
 */
function doublesBack(e: Edge, f: Edge): Vertex | undefined {
  if (cross(e.left, e.right, f.left) !== 0 || cross(e.left, e.right, f.right) !== 0) return undefined;
  const shared = same(e.left, f.left) || same(e.left, f.right) ? e.left : e.right;
  const [eOther, fOther] = [same(e.left, shared) ? e.right : e.left, same(f.left, shared) ? f.right : f.left];
  if (onSegment(e.left, e.right, fOther)) return fOther;
  if (onSegment(f.left, f.right, eOther)) return eOther;
  return undefined;
}

function same(a: Vertex, b: Vertex): boolean {
  return a[0] === b[0] && a[1] === b[1];
}

function before(a: Vertex, b: Vertex): boolean {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

/**
 * The order of two edges the sweep line cuts at once, as long as they do not
 * cross: the one that entered later has its left endpoint within the
 * other's x range, so which side of the other that endpoint lies on (or, when
 * it lies on the other, its right endpoint) is their order. Orientation
 * signs only, no division: exact for the whole-pixel coordinates outlines
 * usually have.
 */
function below(e: Edge, f: Edge): number {
  if (e === f) return 0;
  const eFirst = enteredFirst(e, f);
  const earlier = eFirst ? e : f;
  const later = eFirst ? f : e;
  const side = sideOf(earlier, later.left) || sideOf(earlier, later.right);
  // On the other edge: any fixed order will do, as the two meet and that is reported.
  if (side === 0) return e.index - f.index;
  return eFirst ? -side : side;
}

/**
 * +1 when `point` lies below the edge's line, −1 above it, 0 on it. Ordering
 * events by x and then y treats a vertical edge as turned ever so slightly
 * clockwise (x + εy), so a point to its right lies above it.
 */
function sideOf(edge: Edge, point: Vertex): number {
  if (edge.left[0] === edge.right[0]) return point[0] > edge.left[0] ? -1 : 0;
  return orientation(edge.left, edge.right, point);
}

function enteredFirst(e: Edge, f: Edge): boolean {
  return before(e.left, f.left) || (e.left[0] === f.left[0] && e.left[1] === f.left[1] && e.index < f.index);
}

/** +1 when c lies below the line a→b (larger y, as y grows downwards), −1 above, 0 on it; a is left of b. */
function orientation(a: Vertex, b: Vertex, c: Vertex): number {
  const value = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  return value > 0 ? 1 : value < 0 ? -1 : 0;
}

export function segmentsMeet(p1: Vertex, p2: Vertex, p3: Vertex, p4: Vertex): Vertex | undefined {
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

interface TreapNode<T> {
  value: T;
  priority: number;
  left: TreapNode<T> | undefined;
  right: TreapNode<T> | undefined;
}

/** A randomised balanced search tree: insert, remove and the neighbours of a value, each O(log n) expected. */
class Treap<T> {
  private root: TreapNode<T> | undefined;

  constructor(private readonly compare: (a: T, b: T) => number) {}

  insert(value: T): void {
    const [lower, upper] = this.split(this.root, value);
    this.root = this.merge(this.merge(lower, { value, priority: Math.random(), left: undefined, right: undefined }), upper);
  }

  remove(value: T): void {
    const [lower, upper] = this.split(this.root, value);
    this.root = this.merge(lower, this.withoutFirst(upper));
  }

  /** The greatest value ordered before `value`. */
  before(value: T): T | undefined {
    let best: T | undefined;
    for (let node = this.root; node; ) {
      if (this.compare(node.value, value) < 0) {
        best = node.value;
        node = node.right;
      } else node = node.left;
    }
    return best;
  }

  /** The least value ordered after `value`. */
  after(value: T): T | undefined {
    let best: T | undefined;
    for (let node = this.root; node; ) {
      if (this.compare(node.value, value) > 0) {
        best = node.value;
        node = node.left;
      } else node = node.right;
    }
    return best;
  }

  /** The values ordered before `value`, and the rest. */
  private split(node: TreapNode<T> | undefined, value: T): [TreapNode<T> | undefined, TreapNode<T> | undefined] {
    if (!node) return [undefined, undefined];
    if (this.compare(node.value, value) < 0) {
      const [lower, upper] = this.split(node.right, value);
      node.right = lower;
      return [node, upper];
    }
    const [lower, upper] = this.split(node.left, value);
    node.left = upper;
    return [lower, node];
  }

  private merge(a: TreapNode<T> | undefined, b: TreapNode<T> | undefined): TreapNode<T> | undefined {
    if (!a) return b;
    if (!b) return a;
    if (a.priority > b.priority) {
      a.right = this.merge(a.right, b);
      return a;
    }
    b.left = this.merge(a, b.left);
    return b;
  }

  private withoutFirst(node: TreapNode<T> | undefined): TreapNode<T> | undefined {
    if (!node) return undefined;
    if (!node.left) return node.right;
    node.left = this.withoutFirst(node.left);
    return node;
  }
}
