import test from 'ava';
import { MAX_OUTLINE_VERTICES, RegionType, selfIntersection, validityProblems, type AperioAnnotations, type AperioRegion, type Vertex } from '../../../server/annotations/index.js';

/** Every pair of non-adjacent edges, as the definition says: the test's own oracle. */
function crossesByDefinition(vertices: readonly Vertex[]): boolean {
  const ring = vertices.filter((v, i) => {
    const before = vertices[(i + vertices.length - 1) % vertices.length]!;
    return v[0] !== before[0] || v[1] !== before[1];
  });
  const n = ring.length;
  if (n < 4) return false;
  const cross = (a: Vertex, b: Vertex, c: Vertex) => (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]);
  const within = (a: Vertex, b: Vertex, p: Vertex) =>
    Math.min(a[0], b[0]) <= p[0] && p[0] <= Math.max(a[0], b[0]) && Math.min(a[1], b[1]) <= p[1] && p[1] <= Math.max(a[1], b[1]);
  const meet = (p1: Vertex, p2: Vertex, p3: Vertex, p4: Vertex) => {
    const [d1, d2, d3, d4] = [cross(p3, p4, p1), cross(p3, p4, p2), cross(p1, p2, p3), cross(p1, p2, p4)];
    if (Math.sign(d1) * Math.sign(d2) < 0 && Math.sign(d3) * Math.sign(d4) < 0) return true;
    return (d1 === 0 && within(p3, p4, p1)) || (d2 === 0 && within(p3, p4, p2)) || (d3 === 0 && within(p1, p2, p3)) || (d4 === 0 && within(p1, p2, p4));
  };
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue;
      if (meet(ring[i]!, ring[(i + 1) % n]!, ring[j]!, ring[(j + 1) % n]!)) return true;
    }
  }
  return false;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state / 0x80000000;
  };
}

test('the sweep finds a crossing exactly when some pair of non-adjacent edges meets, on rings full of shared, collinear and vertical edges', (t) => {
  const next = random(11);
  let crossing = 0;
  for (let k = 0; k < 40_000; k++) {
    // Few distinct coordinates: repeated vertices, spikes, vertical and collinear edges everywhere.
    const n = 3 + Math.floor(next() * 12);
    const range = 1 + Math.floor(next() * 8);
    const ring = Array.from({ length: n }, (): Vertex => [Math.floor(next() * range), Math.floor(next() * range)]);
    const expected = crossesByDefinition(ring);
    if (expected) crossing++;
    if ((selfIntersection(ring) !== undefined) !== expected) {
      t.fail(`ring ${JSON.stringify(ring)}: the sweep says ${!expected}, the definition ${expected}`);
      return;
    }
  }
  // Both answers were exercised many times.
  t.true(crossing > 10_000 && crossing < 39_000, String(crossing));
});

test('the point the sweep reports lies on two non-adjacent edges', (t) => {
  t.deepEqual(selfIntersection([[0, 0], [10, 10], [10, 0], [0, 10]]), [5, 5]);
  // A vertical edge touched by the end of another, and a spike that turns back along itself.
  t.deepEqual(selfIntersection([[0, 2], [0, 0], [2, 2], [1, 2], [0, 1]]), [0, 1]);
  t.truthy(selfIntersection([[0, 0], [4, 0], [4, 4], [4, 2], [6, 2], [6, 6], [0, 6]]));
  t.is(selfIntersection([[0, 0], [4, 0], [4, 4], [0, 4]]), undefined);
});

/** A simple polygon whose every edge but three spans the whole width: every pair of them overlaps in x. */
function comb(vertices: number): Vertex[] {
  const ring: Vertex[] = [];
  for (let i = 0; i < vertices - 2; i++) ring.push([i % 2 === 0 ? 0 : 60_000, i]);
  ring.push([60_100, vertices], [60_100, -50]);
  return ring;
}

test('a comb of the largest outline allowed is simple, and a crossing added to it is found', (t) => {
  const ring = comb(MAX_OUTLINE_VERTICES);
  t.is(selfIntersection(ring), undefined);
  // Move one tooth so that it crosses its neighbour.
  ring[5000] = [60_000, 5003];
  const crossing = selfIntersection(ring);
  t.truthy(crossing);
  t.true(crossing![1] > 4990 && crossing![1] < 5010, JSON.stringify(crossing));
});

function doc(regions: Partial<AperioRegion>[]): AperioAnnotations {
  return {
    micronsPerPixel: null,
    extra: {},
    children: [],
    layers: [
      {
        id: 1,
        name: 'Tumor',
        lineColor: 255,
        colour: '#ff0000',
        visible: true,
        type: 4,
        attributes: [],
        headers: [],
        plots: [],
        extra: {},
        children: [],
        regions: regions.map((r, i) => ({ id: i + 1, type: RegionType.polygon, negative: false, text: '', vertices: [], attributes: [], extra: {}, children: [], ...r })),
      },
    ],
  };
}

test('an annotation with more vertices than an outline may have is refused at once, with the count and the cap', (t) => {
  const half = Math.ceil((MAX_OUTLINE_VERTICES + 1) / 2);
  const circle = (cx: number, n: number): Vertex[] => Array.from({ length: n }, (_, i) => [cx + 100 * Math.cos((2 * Math.PI * i) / n), 500 + 100 * Math.sin((2 * Math.PI * i) / n)]);
  const over = doc([{ vertices: circle(200, half) }, { vertices: circle(600, MAX_OUTLINE_VERTICES + 1 - half) }]);
  t.deepEqual(validityProblems(over, { width: 1000, height: 1000 }), [
    { layerId: 1, regionId: null, message: `the annotation has ${MAX_OUTLINE_VERTICES + 1} vertices, more than the ${MAX_OUTLINE_VERTICES} an outline may have; simplify it (fewer vertices per region) and send it again` },
  ]);
  const at = doc([{ vertices: circle(200, half) }, { vertices: circle(600, MAX_OUTLINE_VERTICES - half) }]);
  t.deepEqual(validityProblems(at, { width: 1000, height: 1000 }), []);
});

test('holes that would take too long to place are a problem of their layer, not minutes of work', (t) => {
  // Shapes whose boxes cover every hole but which contain none of them, and thousands of holes.
  const thinCorner: Vertex[] = [
    [0, 0],
    [10_000, 0],
    [10_000, 10],
    [10, 10],
    [10, 10_000],
    [0, 10_000],
  ];
  const shapes = Array.from({ length: 2000 }, (): Partial<AperioRegion> => ({ vertices: thinCorner }));
  const holes = Array.from({ length: 5000 }, (_, k): Partial<AperioRegion> => ({ negative: true, vertices: [[5000 + (k % 7), 5003], [5010, 5003], [5010, 5013]] }));
  t.deepEqual(validityProblems(doc([...shapes, ...holes]), { width: 10_000, height: 10_000 }), [
    { layerId: 1, regionId: null, message: 'layer 1 has too many holes (5000) over shapes too large to place them within the work one outline may take; merge or simplify them' },
  ]);
});

test('problems are listed up to a bound, and the rest counted', (t) => {
  const outside = Array.from({ length: 80 }, (): Partial<AperioRegion> => ({ vertices: [[2000, 0], [2100, 0], [2100, 100]] }));
  const problems = validityProblems(doc(outside), { width: 1000, height: 1000 });
  t.is(problems.length, 51);
  t.is(problems.at(-1)!.message, 'and 30 more problems');
});
