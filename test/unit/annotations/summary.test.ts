import test from 'ava';
import { checkBounds, defaultBoundsTolerance, parseAperioXml, summarizeAnnotations } from '../../../server/annotations/index.js';
import { VIABLE_TUMOUR, WHOLE_TUMOUR, aperioXml } from '../../../server/wsi/generate/aperio-xml.js';
import { generateLayout } from '../../../server/wsi/generate/tissue.js';
import { fixtureTest } from '../../support/fixtures.js';
import { annotations, fixtureText, layer, region, shoelace, square } from './helpers.js';

const near = (actual: number | null, expected: number, epsilon = 1e-6) => actual !== null && Math.abs(actual - expected) <= epsilon * Math.max(1, Math.abs(expected));

/**
 * Layer 1: a 100×50 polygon (first vertex repeated last) with a 20×20 right-triangle hole,
 * a 60×40 rectangle, a 40×20 ellipse, a ruler and an arrow. Layer 2: one bigger square.
 */
const SHAPES = annotations([
  layer(1, [
    region({ id: 1, vertices: [[0, 0], [100, 0], [100, 50], [0, 50], [0, 0]] }),
    region({ id: 2, negative: true, vertices: [[10, 10], [30, 10], [10, 30]] }),
    region({ id: 3, type: 1, vertices: [[200, 200], [260, 200], [260, 240], [200, 240]] }),
    region({ id: 4, type: 2, vertices: [[300, 300], [340, 320]] }),
    region({ id: 5, type: 4, vertices: [[0, 0], [30, 40]] }),
    region({ id: 6, type: 3, vertices: [[5, 5], [9, 9]] }),
  ]),
  layer(2, [region({ id: 1, vertices: square(500, 500, 300) })]),
]);
const LAYER_1_PX = 100 * 50 - 200 + 60 * 40 + Math.PI * 20 * 10;

test('per-layer counts and areas: shoelace, rectangle, ellipse π·a·b, holes subtracted, lines counted apart', (t) => {
  const summary = summarizeAnnotations(parseAperioXml(SHAPES), 0.5);
  const [first, second] = summary.layers;
  t.like(first, { id: 1, name: 'layer 1', colour: '#00ff00', regions: 3, holes: 1, crossingHoles: 0, unplacedHoles: 0, rulers: 1, arrows: 1, vertices: 5 + 3 + 4 + 2 + 2 + 2 });
  t.true(near(first!.areaPx, LAYER_1_PX), `${first!.areaPx}`);
  t.true(near(first!.areaMm2, (LAYER_1_PX * 0.25) / 1e6));
  t.is(second!.areaPx, 90000);
  t.like(summary.totals, { layers: 2, regions: 4, holes: 1, rulers: 1, arrows: 1 });
  t.true(near(summary.totals.areaPx, LAYER_1_PX + 90000));
  // Layer Id 1 is the tumour even though layer 2 is larger.
  t.is(summary.tumourLayerId, 1);
  t.true(near(summary.tumourAreaMm2, (LAYER_1_PX * 0.25) / 1e6));
});

test('without microns per pixel every mm² is null but px² are still given', (t) => {
  const summary = summarizeAnnotations(parseAperioXml(SHAPES), null);
  t.is(summary.micronsPerPixel, null);
  t.is(summary.layers[0]!.areaMm2, null);
  t.is(summary.totals.areaMm2, null);
  t.is(summary.tumourAreaMm2, null);
  t.true(near(summary.tumourAreaPx, LAYER_1_PX));
});

test('without a layer Id 1 with shapes, the largest layer stands for the tumour', (t) => {
  const noLayerOne = annotations([layer(7, [region({ id: 1, vertices: square(0, 0, 10) })]), layer(8, [region({ id: 1, vertices: square(0, 0, 30) })])]);
  t.like(summarizeAnnotations(parseAperioXml(noLayerOne), 1), { tumourLayerId: 8, tumourAreaPx: 900, tumourAreaMm2: 900 / 1e6 });
  const onlyRulersInOne = annotations([layer(1, [region({ id: 1, type: 4, vertices: [[0, 0], [9, 9]] })]), layer(2, [region({ id: 1, vertices: square(0, 0, 20) })])]);
  t.like(summarizeAnnotations(parseAperioXml(onlyRulersInOne), 1), { tumourLayerId: 2, tumourAreaPx: 400 });
  t.like(summarizeAnnotations(parseAperioXml('<Annotations/>'), 1), { tumourLayerId: null, tumourAreaPx: null, tumourAreaMm2: null, totals: { layers: 0, areaPx: 0 } });
});

test('a hole in no shape is counted but not subtracted; a shape never goes below 0', (t) => {
  const doc = parseAperioXml(
    annotations([
      layer(1, [
        region({ id: 1, vertices: square(0, 0, 10) }),
        region({ id: 2, negative: true, vertices: square(1, 1, 10) }), // first vertex inside, bigger than the shape
        region({ id: 3, negative: true, vertices: square(500, 500, 10) }),
      ]),
    ]),
  );
  t.like(summarizeAnnotations(doc, 1).layers[0], { regions: 1, holes: 2, unplacedHoles: 1, areaPx: 0 });
});

test('the areas of a generated PAIP-style file are the shoelace areas of the generator’s own polygons', (t) => {
  const layout = generateLayout(6000, 4000, 1);
  const mpp = 0.499;
  const doc = parseAperioXml(aperioXml(layout.tumours, mpp));
  t.deepEqual(
    doc.layers.map((l) => [l.id, l.name]),
    [
      [WHOLE_TUMOUR.id, WHOLE_TUMOUR.name],
      [VIABLE_TUMOUR.id, VIABLE_TUMOUR.name],
    ],
  );
  const whole = layout.tumours.reduce((sum, tumour) => sum + Math.abs(shoelace(tumour.outer)), 0);
  const holes = layout.tumours.reduce((sum, tumour) => sum + tumour.holes.reduce((s, hole) => s + Math.abs(shoelace(hole)), 0), 0);
  t.true(holes > 0, 'the layout has a hole to subtract');
  const summary = summarizeAnnotations(doc, mpp);
  const [wholeLayer, viableLayer] = summary.layers;
  t.like(wholeLayer, { regions: layout.tumours.length, holes: 0 });
  t.like(viableLayer, { regions: layout.tumours.length, holes: 1, crossingHoles: 0, unplacedHoles: 0 });
  t.true(near(wholeLayer!.areaPx, whole, 1e-9));
  t.true(near(viableLayer!.areaPx, whole - holes, 1e-9));
  t.true(near(viableLayer!.areaMm2, ((whole - holes) * mpp * mpp) / 1e6, 1e-9));
  t.is(summary.tumourLayerId, WHOLE_TUMOUR.id);
  t.true(near(summary.tumourAreaMm2, (whole * mpp * mpp) / 1e6, 1e-9));
  t.deepEqual(checkBounds(doc, layout.width, layout.height), []);
});

fixtureTest('NP391: one outline less three holes (two drawn across its edge), ten rulers; the area is ImageScope’s', async (t) => {
  const summary = summarizeAnnotations(parseAperioXml(await fixtureText('NP391-16_PLP_LVC_20x.xml')), 0.5019);
  const [outline, rulers] = summary.layers;
  t.like(outline, { id: 1, colour: '#00ff00', regions: 1, holes: 3, crossingHoles: 2, unplacedHoles: 0, rulers: 0 });
  // Region Area attributes: 172764736.0 − (109652.0 + 79695.0 + 48707.0).
  t.is(outline!.areaPx, 172764736 - 109652 - 79695 - 48707);
  t.like(rulers, { id: 2, colour: '#ffff00', regions: 0, rulers: 10, areaPx: 0 });
  t.is(summary.tumourLayerId, 1);
  t.true(near(summary.tumourAreaMm2, (outline!.areaPx * 0.5019 ** 2) / 1e6));
});

// ---------------------------------------------------------------------------
// Bounds

test('checkBounds: vertices beyond the image by more than the tolerance are problems, one per region', (t) => {
  const doc = parseAperioXml(
    annotations([
      layer(1, [
        region({ id: 1, vertices: square(0, 0, 1000) }), // exactly on the edges
        region({ id: 2, type: 4, vertices: [[-8, 500], [1008, 500]] }), // a ruler a little past both edges
        region({ id: 3, vertices: [[900, 900], [1011, 950], [1020, 990], [950, 999]] }),
      ]),
      layer(4, [region({ id: 9, vertices: [[5, -50], [50, -60], [40, 10]] })]),
    ]),
  );
  t.is(defaultBoundsTolerance(1000, 1000), 10);
  t.is(defaultBoundsTolerance(100, 100), 4);
  const problems = checkBounds(doc, 1000, 1000);
  t.deepEqual(
    problems.map((p) => [p.layerId, p.regionId, p.outside, p.vertices, p.first]),
    [
      [1, 3, 2, 4, [1011, 950]],
      [4, 9, 2, 3, [5, -50]],
    ],
  );
  t.is(problems[0]!.message, 'region 3 (Id 3) of annotation 1 (Id 1): 2 of 4 vertices lie outside the 1000×1000 image (first at 1011, 950)');
  t.is(checkBounds(doc, 1000, 1000, 0).length, 3, 'with no tolerance the ruler is outside too');
  t.deepEqual(checkBounds(doc, 1000, 1000, 100), []);
  t.throws(() => checkBounds(doc, 0, 1000), { instanceOf: RangeError });
  t.throws(() => checkBounds(doc, 1000, 1000, Number.NaN), { instanceOf: RangeError });
});

fixtureTest('checkBounds against CMU-1-Small-Region (2220×2967): the small test file fits, the NP391 file does not', async (t) => {
  t.deepEqual(checkBounds(parseAperioXml(await fixtureText('imagescope_xml_utils-test.xml')), 2220, 2967), []);
  const problems = checkBounds(parseAperioXml(await fixtureText('NP391-16_PLP_LVC_20x.xml')), 2220, 2967);
  t.is(problems.length, 14);
  t.true(problems.every((p) => p.outside === p.vertices));
});
