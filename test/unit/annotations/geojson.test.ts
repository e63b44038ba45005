import test from 'ava';
import { parseAperioXml, toGeoJson, type PolygonFeature, type Position } from '../../../server/annotations/index.js';
import { aperioXml } from '../../../server/wsi/generate/aperio-xml.js';
import { generateLayout } from '../../../server/wsi/generate/tissue.js';
import { fixtureTest } from '../../support/fixtures.js';
import { annotations, fixtureText, layer, region, shoelace, square, type Point } from './helpers.js';

const closed = (ring: Position[]) => ring.length >= 4 && ring[0]![0] === ring[ring.length - 1]![0] && ring[0]![1] === ring[ring.length - 1]![1];

/** Same vertices as a set, whatever the start and direction (rings are closed, so drop the repeat). */
const sameVertices = (ring: Position[], vertices: Point[]) =>
  JSON.stringify(ring.slice(0, -1).map(String).sort()) === JSON.stringify(vertices.map(String).sort());

function polygons(features: ReturnType<typeof toGeoJson>['features']): PolygonFeature[] {
  return features.filter((f): f is PolygonFeature => f.geometry.type === 'Polygon');
}

/**
 * A 1000-px square (drawn clockwise on screen) holding a 200-px square (drawn
 * counter-clockwise); hole A starts inside the small square, hole B inside the
 * big one only, hole C outside everything, hole D starts outside the big
 * square but lies mostly inside it; a second layer's shape must not take
 * layer 1's holes.
 */
const NESTED = annotations([
  layer(1, [
    region({ id: 10, vertices: square(0, 0, 1000, true) }),
    region({ id: 11, vertices: square(100, 100, 200) }),
    region({ id: 20, negative: true, vertices: square(150, 150, 20) }),
    region({ id: 21, negative: true, vertices: square(600, 600, 50, true) }),
    region({ id: 22, negative: true, vertices: square(2000, 2000, 10) }),
    region({ id: 23, negative: true, vertices: [[1005, 500], [900, 480], [880, 520], [900, 560], [995, 540]] }),
  ]),
  layer(2, [region({ id: 1, vertices: square(140, 140, 100) })], 'Name="other" LineColor="255"'),
]);

test('holes go to the smallest shape of their layer that contains their first vertex', (t) => {
  const collection = toGeoJson(parseAperioXml(NESTED));
  const features = polygons(collection.features);
  t.deepEqual(
    features.map((f) => [f.properties.layerId, f.properties.regionId, f.geometry.coordinates.length]),
    [
      [1, 10, 3],
      [1, 11, 2],
      [2, 1, 1],
    ],
  );
  const [big, small] = features;
  t.true(sameVertices(small!.geometry.coordinates[1]!, square(150, 150, 20)), 'hole A is cut from the small square');
  t.true(sameVertices(big!.geometry.coordinates[1]!, square(600, 600, 50)), 'hole B from the big one');
  t.true(sameVertices(big!.geometry.coordinates[2]!, [[1005, 500], [900, 480], [880, 520], [900, 560], [995, 540]]), 'hole D from the big one too');
  t.deepEqual(collection.unplacedHoles.map((h) => [h.layerId, h.regionId]), [[1, 22]]);
  t.regex(collection.unplacedHoles[0]!.message, /hole region Id 22 of annotation Id 1 lies in no region of its layer; left out/);
  t.deepEqual(collection.crossingHoles.map((h) => [h.layerId, h.regionId]), [[1, 23]]);
  t.regex(collection.crossingHoles[0]!.message, /crosses the outline of region Id 10/);
});

test('rings are closed, outer rings counter-clockwise and holes clockwise (RFC 7946), whatever the drawing direction', (t) => {
  const features = polygons(toGeoJson(parseAperioXml(NESTED)).features);
  let rings = 0;
  for (const feature of features) {
    feature.geometry.coordinates.forEach((ring, i) => {
      t.true(closed(ring));
      t.true(i === 0 ? shoelace(ring) > 0 : shoelace(ring) < 0, `${feature.properties.regionId} ring ${i}`);
      rings++;
    });
  }
  t.is(rings, 6);
});

test('a polygon that repeats its first vertex is not closed twice; properties name layer and region', (t) => {
  const doc = parseAperioXml(
    annotations([layer(3, [region({ id: 4, text: 'viable', vertices: [[0, 0], [10, 0], [10, 10], [0, 0]] })], 'Name="viable tumour" LineColor="16711680"')]),
  );
  const [feature] = toGeoJson(doc).features;
  t.is(feature!.geometry.coordinates.length, 1);
  t.is((feature as PolygonFeature).geometry.coordinates[0]!.length, 4);
  t.deepEqual(feature!.properties, { layerId: 3, layerName: 'viable tumour', colour: '#0000ff', regionId: 4, type: 0, kind: 'polygon', text: 'viable' });
});

test('rectangles and ellipses become polygons; rulers and arrows LineStrings with their kind', (t) => {
  const doc = parseAperioXml(
    annotations([
      layer(1, [
        region({ id: 1, type: 1, vertices: [[260, 240], [200, 240], [200, 200], [260, 200]] }),
        region({ id: 2, type: 2, vertices: [[340, 320], [300, 300]] }),
        region({ id: 3, type: 4, vertices: [[0, 0], [30, 40]] }),
        region({ id: 4, type: 3, vertices: [[5, 5], [9, 9]] }),
      ]),
    ]),
  );
  const collection = toGeoJson(doc);
  t.is(collection.type, 'FeatureCollection');
  const [rectangle, ellipse, ruler, arrow] = collection.features;
  t.is(rectangle!.properties.kind, 'rectangle');
  const rect = (rectangle as PolygonFeature).geometry.coordinates[0]!;
  t.is(rect.length, 5);
  t.true(sameVertices(rect, [[200, 200], [260, 200], [260, 240], [200, 240]]));
  t.is(shoelace(rect), 2400);

  t.is(ellipse!.properties.kind, 'ellipse');
  const ring = (ellipse as PolygonFeature).geometry.coordinates[0]!;
  t.is(ring.length, 65);
  t.true(closed(ring));
  for (const [x, y] of ring) t.true(Math.abs(((x - 320) / 20) ** 2 + ((y - 310) / 10) ** 2 - 1) < 1e-9);
  // A 64-gon inscribed in the ellipse: area just under π·a·b.
  t.true(shoelace(ring) < Math.PI * 200 && shoelace(ring) > Math.PI * 200 * 0.995);
  t.is((polygons(toGeoJson(doc, { ellipseSegments: 16 }).features)[1]!.geometry.coordinates[0]!).length, 17);

  t.deepEqual(ruler!.geometry, { type: 'LineString', coordinates: [[0, 0], [30, 40]] });
  t.like(ruler!.properties, { kind: 'ruler', type: 4, regionId: 3 });
  t.like(arrow!.properties, { kind: 'arrow', type: 3 });
  t.deepEqual(JSON.parse(JSON.stringify(collection)), collection, 'plain JSON');
});

test('the viable-tumour layer of a generated slide keeps its hole as an inner ring', (t) => {
  const layout = generateLayout(6000, 4000, 1);
  const features = polygons(toGeoJson(parseAperioXml(aperioXml(layout.tumours, 0.499))).features);
  t.deepEqual(
    features.map((f) => [f.properties.layerId, f.geometry.coordinates.length]),
    [
      [1, 1],
      [1, 1],
      [2, 2],
      [2, 1],
    ],
  );
  const withHole = features[2]!.geometry.coordinates;
  t.true(sameVertices(withHole[0]!, layout.tumours[0]!.outer));
  t.true(sameVertices(withHole[1]!, layout.tumours[0]!.holes[0]!));
});

fixtureTest('NP040: every hole lands in its layer’s one outline', async (t) => {
  const collection = toGeoJson(parseAperioXml(await fixtureText('NP040-16_pTDP43_RVC.xml')));
  const features = polygons(collection.features);
  t.deepEqual(
    features.map((f) => [f.properties.layerId, f.geometry.coordinates.length]),
    [
      [39256, 8],
      [39372, 1],
      [39963, 14],
      [41190, 1],
    ],
  );
  t.deepEqual(collection.unplacedHoles, []);
  t.deepEqual(collection.crossingHoles.map((h) => h.regionId), [468326, 474322]);
  for (const feature of features) feature.geometry.coordinates.forEach((ring, i) => t.true(closed(ring) && (i === 0) === shoelace(ring) > 0));
});
