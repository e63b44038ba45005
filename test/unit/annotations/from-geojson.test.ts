import test from 'ava';
import {
  annotationsFromGeoJson,
  AnnotationError,
  parseAperioXml,
  selfIntersection,
  toGeoJson,
  validityProblems,
  type Vertex,
} from '../../../server/annotations/index.js';
import { fixtureTest, type FixtureName } from '../../support/fixtures.js';
import { annotations, fixtureText, layer, region, shoelace, square } from './helpers.js';

/** Polygons of a feature collection in order, each ring without positions that repeat the one before (zero-length edges). */
const polygons = (doc: ReturnType<typeof toGeoJson>) =>
  doc.features
    .filter((f) => f.geometry.type === 'Polygon')
    .map((f) => ({
      layer: f.properties.layerId,
      rings: (f.geometry.coordinates as [number, number][][]).map((ring) => ring.filter((p, i) => i === 0 || p[0] !== ring[i - 1]![0] || p[1] !== ring[i - 1]![1])),
    }));

// Reads ../shared/fixtures (skips when absent, never in CI).
for (const name of ['NP040-16_pTDP43_RVC.xml', 'NP391-16_PLP_LVC_20x.xml', 'imagescope_xml_utils-test.xml', 'wsi_annotations_kit-test_annotation.xml'] as FixtureName[]) {
  fixtureTest(`${name}: GeoJSON back to the Aperio model and out again keeps every polygon and hole`, async (t) => {
    const once = toGeoJson(parseAperioXml(await fixtureText(name)));
    const back = annotationsFromGeoJson(JSON.parse(JSON.stringify(once)));
    const twice = toGeoJson(back);
    t.deepEqual(polygons(twice), polygons(once));
    t.deepEqual(
      back.layers.map((l) => l.id),
      [...new Set(once.features.filter((f) => f.geometry.type === 'Polygon').map((f) => f.properties.layerId))].sort((a, b) => a - b),
    );
  });
}

test('outer rings become regions and inner rings holes of the same layer; MultiPolygons split; lines are left out', (t) => {
  const doc = annotationsFromGeoJson({
    type: 'FeatureCollection',
    features: [
      { type: 'Feature', properties: { layerId: 2, layerName: 'Viable', colour: '#0000FF' }, geometry: { type: 'Polygon', coordinates: [[[0, 0], [100, 0], [100, 100], [0, 100], [0, 0]], [[40, 40], [40, 60], [60, 60], [60, 40], [40, 40]]] } },
      { type: 'Feature', properties: {}, geometry: { type: 'MultiPolygon', coordinates: [[[[200, 0], [300, 0], [300, 50], [200, 0]]], [[[400, 0], [500, 0], [500, 50], [400, 0]]]] } },
      { type: 'Feature', properties: { layerId: 2 }, geometry: { type: 'LineString', coordinates: [[0, 0], [5, 5]] } },
    ],
  });
  t.deepEqual(doc.layers.map((l) => [l.id, l.name, l.colour, l.regions.map((r) => [r.id, r.negative, r.vertices.length])]), [
    [1, 'Tumor', '#00ff00', [[1, false, 3], [2, false, 3]]],
    [2, 'Viable', '#0000ff', [[1, false, 4], [2, true, 4]]],
  ]);
  t.deepEqual(validityProblems(doc, { width: 1000, height: 1000 }), []);
});

test('what is not a polygon collection is refused with the feature named', (t) => {
  const refused: [unknown, RegExp][] = [
    ['{', /not JSON/],
    [{ type: 'Polygon', coordinates: [] }, /not a GeoJSON FeatureCollection or Feature/],
    [{ type: 'FeatureCollection', features: [{ type: 'Feature' }] }, /feature 1 is not a GeoJSON Feature with a geometry/],
    [{ type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Circle' } }] }, /feature 1 has a Circle geometry/],
    [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 1], [0, 0]]] } }, /feature 1 ring 1 has 2 distinct positions/],
    [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 'a'], [2, 0]]] } }, /feature 1 ring 1 position 2 is not a pair of finite numbers/],
    [{ type: 'Feature', properties: { layerId: 0 }, geometry: { type: 'Polygon', coordinates: [[[0, 0], [1, 1], [2, 0]]] } }, /layerId must be a whole number from 1/],
  ];
  for (const [input, message] of refused) {
    const error = t.throws(() => annotationsFromGeoJson(input), { instanceOf: AnnotationError });
    t.regex(error.message, message);
  }
});

test('a ring that crosses or touches itself is found; simple rings, convex or not, are not', (t) => {
  t.deepEqual(selfIntersection([[0, 0], [10, 10], [10, 0], [0, 10]]), [5, 5]);
  // A figure eight that touches itself at one vertex.
  t.deepEqual(selfIntersection([[0, 0], [10, 0], [10, 10], [5, 5], [0, 10], [10, 20], [0, 20], [5, 5]]), [5, 5]);
  t.is(selfIntersection(square(0, 0, 10)), undefined);
  const star: Vertex[] = Array.from({ length: 10 }, (_, i) => {
    const r = i % 2 === 0 ? 100 : 40;
    const a = (i * Math.PI) / 5;
    return [200 + r * Math.cos(a), 200 + r * Math.sin(a)];
  });
  t.is(selfIntersection(star), undefined);
  // A long wavy ring (thousands of vertices) that is simple.
  const wave: Vertex[] = [];
  for (let i = 0; i <= 4000; i++) wave.push([i, 100 + 10 * Math.sin(i / 30)]);
  wave.push([4000, 0], [0, 0]);
  t.is(selfIntersection(wave), undefined);
  t.true(shoelace(wave) !== 0);
});

test('validity names each problem: crossing, outside the slide, a stray hole, nothing to outline', (t) => {
  const doc = parseAperioXml(
    annotations([
      layer(1, [
        region({ id: 1, vertices: [[0, 0], [100, 100], [100, 0], [0, 100]] }),
        region({ id: 2, vertices: square(900, 900, 200) }),
        region({ id: 3, negative: true, vertices: square(500, 500, 10) }),
        region({ id: 4, vertices: square(10, 300, 50) }),
      ]),
    ]),
  );
  t.deepEqual(
    validityProblems(doc, { width: 1000, height: 1000 }).map((p) => [p.regionId, p.message]),
    [
      [1, 'crosses itself near (50, 50)'],
      [2, 'lies outside the 1000×1000 slide (it spans x 900–1100, y 900–1100)'],
      [3, 'is a hole outside every shape of its layer'],
    ],
  );
  const empty = parseAperioXml(annotations([layer(1, [region({ id: 1, type: 4, vertices: [[0, 0], [5, 5]] })])]));
  t.deepEqual(validityProblems(empty, { width: 10, height: 10 }).map((p) => p.message), ['the annotation has no region to outline (it is empty)']);
});
