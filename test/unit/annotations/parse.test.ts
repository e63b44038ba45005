import test from 'ava';
import {
  AnnotationError,
  RegionType,
  bgrToHex,
  hexToBgr,
  parseAperioXml,
  regionArea,
  regionLength,
  serializeAperioXml,
  type AnnotationErrorCode,
  type AperioAnnotations,
} from '../../../server/annotations/index.js';
import { fixtureTest, type FixtureName } from '../../support/fixtures.js';
import { annotations, fixtureText, layer, region, square } from './helpers.js';

// ---------------------------------------------------------------------------
// The real files: the counts recorded in ../shared/fixtures/SOURCES.md.

interface FixtureFacts {
  mpp: number | null;
  layers: number;
  regions: number;
  negative: number;
  vertices: number;
  /** Region types in document order, as one string of digits. */
  types: string;
  x: [number, number];
  y: [number, number];
}

const FACTS: Partial<Record<FixtureName, FixtureFacts>> = {
  'NP040-16_pTDP43_RVC.xml': { mpp: 0.252, layers: 4, regions: 24, negative: 20, vertices: 14453, types: '0'.repeat(24), x: [62088, 98774], y: [7517, 33170] },
  'NP391-16_PLP_LVC_20x.xml': { mpp: 0.5019, layers: 2, regions: 14, negative: 3, vertices: 3737, types: `0000${'4'.repeat(10)}`, x: [31475, 46966], y: [25452, 41134] },
  'imagescope_xml_utils-test.xml': { mpp: null, layers: 5, regions: 7, negative: 0, vertices: 88, types: '0113332', x: [85, 1820], y: [23, 1109] },
  'wsi_annotations_kit-test_annotation.xml': { mpp: 0.466667, layers: 1, regions: 7, negative: 0, vertices: 2401, types: '0000000', x: [7533, 8476], y: [3179, 7914] },
};

for (const [name, facts] of Object.entries(FACTS) as [FixtureName, FixtureFacts][]) {
  fixtureTest(`${name} parses with its recorded counts`, async (t) => {
    const doc = parseAperioXml(await fixtureText(name));
    const regions = doc.layers.flatMap((l) => l.regions);
    const all = regions.flatMap((r) => r.vertices);
    t.is(doc.micronsPerPixel, facts.mpp);
    t.is(doc.layers.length, facts.layers);
    t.is(regions.length, facts.regions);
    t.is(regions.filter((r) => r.negative).length, facts.negative);
    t.is(all.length, facts.vertices);
    t.is(regions.map((r) => r.type).join(''), facts.types);
    t.deepEqual([Math.min(...all.map((v) => v[0])), Math.max(...all.map((v) => v[0]))], facts.x);
    t.deepEqual([Math.min(...all.map((v) => v[1])), Math.max(...all.map((v) => v[1]))], facts.y);
  });

  fixtureTest(`${name} round-trips through serializeAperioXml`, async (t) => {
    const doc = parseAperioXml(await fixtureText(name));
    const text = serializeAperioXml(doc);
    t.deepEqual(parseAperioXml(text), doc);
    t.is(serializeAperioXml(parseAperioXml(text)), text, 'writing is stable');
  });
}

fixtureTest('NP040: layer details as recorded for the fixture, with algorithm attributes and extra elements kept', async (t) => {
  const doc = parseAperioXml(await fixtureText('NP040-16_pTDP43_RVC.xml'));
  t.deepEqual(
    doc.layers.map((l) => [l.id, l.type, l.lineColor, l.regions.length, l.regions.filter((r) => r.negative).length]),
    [
      [39256, 4, 65280, 8, 7],
      [39372, 3, 2293538, 1, 0],
      [39963, 4, 65280, 14, 13],
      [41190, 3, 2293538, 1, 0],
    ],
  );
  const algorithm = doc.layers[1]!;
  t.is(algorithm.name, 'pTDP-43 Colour Deconvolution-v4 output');
  t.true(algorithm.attributes.length >= 40);
  t.deepEqual(algorithm.attributes[0], { name: 'Algorithm', value: 'Color Deconvolution v9', extra: { Id: '1120302' } });
  t.deepEqual(
    algorithm.children.map((c) => [c.name, c.text]),
    [
      ['InputAnnotationId', '39256'],
      ['MacroId', '228'],
    ],
  );
  t.is(algorithm.extra.MacroName, 'pTDP-43 Colour Deconvolution-v4');
  t.is(algorithm.regions[0]!.extra.ImageLocation, '@75323');
  t.true(algorithm.regions[0]!.attributes.length > 0, 'region-level attributes are kept');
  t.is(algorithm.headers.length, 19);
  // Floats stay floats.
  t.false(Number.isInteger(doc.layers[0]!.regions[0]!.vertices.find(([x]) => !Number.isInteger(x))?.[0] ?? 0));
});

fixtureTest("our area and perimeter agree with ImageScope's own Area and Length attributes", async (t) => {
  let checked = 0;
  for (const name of ['NP040-16_pTDP43_RVC.xml', 'NP391-16_PLP_LVC_20x.xml', 'wsi_annotations_kit-test_annotation.xml'] as const) {
    const doc = parseAperioXml(await fixtureText(name));
    for (const r of doc.layers.flatMap((l) => l.regions)) {
      // ImageScope writes both with one decimal.
      t.true(Math.abs(regionArea(r) - Number(r.extra.Area)) <= 0.051, `${name} region ${r.id} area`);
      t.true(Math.abs(regionLength(r) - Number(r.extra.Length)) <= 0.051, `${name} region ${r.id} length`);
      checked++;
    }
  }
  t.is(checked, 24 + 14 + 7);
});

// ---------------------------------------------------------------------------
// Values

test('MicronsPerPixel: 0, empty or missing is unknown (null)', (t) => {
  t.is(parseAperioXml('<Annotations MicronsPerPixel="0"/>').micronsPerPixel, null);
  t.is(parseAperioXml('<Annotations MicronsPerPixel=""/>').micronsPerPixel, null);
  t.is(parseAperioXml('<Annotations/>').micronsPerPixel, null);
  t.is(parseAperioXml('<Annotations MicronsPerPixel="0.252000"/>').micronsPerPixel, 0.252);
  t.deepEqual(parseAperioXml('<Annotations MicronsPerPixel="0.5"/>').layers, []);
});

test('layer fields: BGR LineColor as #rrggbb, Visible, Type, Name; regions: type, NegativeROA, Text', (t) => {
  const doc = parseAperioXml(
    annotations([
      layer(3, [region({ id: 9, type: 2, negative: true, text: 'necrosis', vertices: [[1, 2], [5, 8]] })], 'Name="viable" LineColor="255" Visible="0" Type="3"'),
      layer(4, [], 'LineColor="16711680"'),
    ]),
  );
  const [first, second] = doc.layers;
  t.like(first, { id: 3, name: 'viable', lineColor: 255, colour: '#ff0000', visible: false, type: 3 });
  t.like(first!.regions[0], { id: 9, type: RegionType.ellipse, negative: true, text: 'necrosis' });
  t.deepEqual(first!.regions[0]!.vertices, [[1, 2], [5, 8]]);
  t.like(second, { name: '', colour: '#0000ff', visible: true, type: 4 });
  t.is(bgrToHex(65280), '#00ff00');
  t.is(hexToBgr('#ff0000'), 255);
  t.is(hexToBgr('#123456'), 0x563412);
  t.throws(() => hexToBgr('red'), { instanceOf: RangeError });
});

test('XML built-in entities and character references are expanded; attribute whitespace is normalised as XML says', (t) => {
  const text = 'a &amp; b &lt;c&gt; &quot;q&quot; &apos;s&apos; &#233;&#xE9; &#x1F600; line&#10;break';
  const doc = parseAperioXml(annotations([layer(1, [region({ id: 1, text, vertices: square(0, 0, 10) })], 'Name="tab\there\nnewline"')]));
  t.is(doc.layers[0]!.regions[0]!.text, 'a & b <c> "q" \'s\' éé 😀 line\nbreak');
  t.is(doc.layers[0]!.name, 'tab here newline');
});

test('an XML declaration, a byte-order mark and comments are accepted', (t) => {
  const doc = parseAperioXml(`\uFEFF<?xml version="1.0" encoding="UTF-8"?>\n<!-- exported -->\n${annotations([layer(1, [region({ id: 1, vertices: square(0, 0, 10) })])])}\n`);
  t.is(doc.layers.length, 1);
});

test('missing Ids take the 1-based position; missing Type is a freehand polygon', (t) => {
  const doc = parseAperioXml('<Annotations><Annotation><Regions><Region><Vertices><Vertex X="0" Y="0"/><Vertex X="4" Y="0"/><Vertex X="4" Y="4"/></Vertices></Region></Regions></Annotation></Annotations>');
  t.is(doc.layers[0]!.id, 1);
  t.is(doc.layers[0]!.regions[0]!.id, 1);
  t.is(doc.layers[0]!.regions[0]!.type, RegionType.polygon);
});

// ---------------------------------------------------------------------------
// Malformed documents: each says what and where.

const bad = (vertices: string, type = 0) =>
  `<Annotations><Annotation Id="1"/><Annotation Id="7"><Regions><Region Id="1" Type="${type}"><Vertices>${vertices}</Vertices></Region></Regions></Annotation></Annotations>`;
const v = (x: string, y: string) => `<Vertex X="${x}" Y="${y}" Z="0"/>`;
const TRIANGLE = v('0', '0') + v('10', '0') + v('10', '10');

const MALFORMED: [title: string, text: string, code: AnnotationErrorCode, reason: RegExp][] = [
  ['an unclosed element', '<Annotations><Annotation></Annotations>', 'not_xml', /^not XML: .*\(line 1, column \d+\)$/],
  ['plain text', 'MicronsPerPixel=0.5', 'not_xml', /^not XML: /],
  ['an empty file', '', 'not_xml', /^not XML: /],
  ['a repeated attribute', '<Annotations MicronsPerPixel="1" MicronsPerPixel="2"/>', 'not_xml', /repeated/],
  ['two root elements', '<Annotations/><Annotations/>', 'not_xml', /more than one root element/],
  ['text after the root', '<Annotations/>trailing', 'not_xml', /text after the root element/],
  ['text after the root and a comment', '<Annotations></Annotations>\n<!-- c -->trailing<!-- d -->\n', 'not_xml', /^not XML: .*text.*line 2/i],
  ['text before the root', 'leading<Annotations/>', 'not_xml', /^not XML: /],
  ['an undefined entity', '<Annotations Note="&nbsp;"/>', 'not_xml', /undefined entity &nbsp; in attribute Note of <Annotations>/],
  ['a bare ampersand', '<Annotations Note="R&D"/>', 'not_xml', /"&" that does not start an entity reference/],
  ['a "<" in an attribute', '<Annotations Note="a<b"/>', 'not_xml', /"<" in attribute Note/],
  ['a control character', '<Annotations Note="a\u0001b"/>', 'not_xml', /U\+0001 .*line 1, column 21/],
  ['a forbidden character reference', '<Annotations Note="&#0;"/>', 'not_xml', /&#0; is not allowed/],
  ['an internal DOCTYPE with entities', '<!DOCTYPE a [<!ENTITY e "x"><!ENTITY f "&e;&e;">]><Annotations Note="&f;"/>', 'doctype', /^DOCTYPE declarations are not accepted \(line 1, column 1\)$/],
  ['an external DOCTYPE', '<?xml version="1.0"?>\n<!DOCTYPE Annotations SYSTEM "file:///etc/passwd">\n<Annotations/>', 'doctype', /line 2, column 1/],
  ['an ENTITY without a DOCTYPE', '<Annotations><!ENTITY e "x"></Annotations>', 'doctype', /^ENTITY declarations/],
  ['another root element', '<ASAP_Annotations><Annotations/></ASAP_Annotations>', 'not_annotations', /^no <Annotations> root \(the root element is <ASAP_Annotations>\)$/],
  ['a vertex without X', bad(v('0', '0') + '<Vertex Y="5" Z="0"/>' + v('3', '3')), 'invalid_vertex', /^region 1 \(Id 1\) of annotation 2 \(Id 7\) has a vertex without X \(vertex 2\)$/],
  ['a vertex with an empty Y', bad(v('0', '') + v('1', '1') + v('2', '0')), 'invalid_vertex', /has a vertex without Y \(vertex 1\)/],
  ['a vertex that is not a number', bad(TRIANGLE + v('abc', '1')), 'invalid_vertex', /whose X is not a finite number: "abc" \(vertex 4\)/],
  ['a NaN coordinate', bad(TRIANGLE + v('1', 'NaN')), 'invalid_vertex', /whose Y is not a finite number: "NaN"/],
  ['an infinite coordinate', bad(TRIANGLE + v('Infinity', '1')), 'invalid_vertex', /whose X is not a finite number: "Infinity"/],
  ['a coordinate that overflows', bad(TRIANGLE + v('1e999', '1')), 'invalid_vertex', /whose X is not a finite number: "1e999"/],
  ['a polygon of two vertices', bad(v('0', '0') + v('1', '1')), 'invalid_shape', /^region 1 \(Id 1\) of annotation 2 \(Id 7\): a polygon needs at least 3 vertices, this one has 2$/],
  ['a closed polygon of two distinct vertices', bad(v('0', '0') + v('1', '1') + v('0', '0')), 'invalid_shape', /a polygon needs at least 3 vertices, this one has 2/],
  ['a polygon without vertices', bad(''), 'invalid_shape', /this one has 0/],
  ['a rectangle of three corners', bad(TRIANGLE, 1), 'invalid_shape', /a rectangle needs at least 4 vertices/],
  ['an ellipse of one vertex', bad(v('0', '0'), 2), 'invalid_shape', /an ellipse needs at least 2 vertices/],
  ['a ruler of one vertex', bad(v('0', '0'), 4), 'invalid_shape', /a ruler needs at least 2 vertices/],
  ['an unknown region type', bad(TRIANGLE, 9), 'invalid_value', /region 1 \(Id 1\) of annotation 2 \(Id 7\) has an unknown Type "9"/],
  ['a region Id that is not a number', '<Annotations><Annotation Id="1"><Regions><Region Id="x1"/></Regions></Annotation></Annotations>', 'invalid_value', /^region 1 \(Id x1\) of annotation 1 \(Id 1\) has an Id that is not a number: "x1"$/],
  ['a LineColor that is not a number', '<Annotations><Annotation Id="1" LineColor="green"/></Annotations>', 'invalid_value', /annotation 1 \(Id 1\) has a LineColor that is not an integer: "green"/],
  ['a negative MicronsPerPixel', '<Annotations MicronsPerPixel="-0.5"/>', 'invalid_value', /MicronsPerPixel that is not a number ≥ 0: "-0.5"/],
  ['a MicronsPerPixel that is not a number', '<Annotations MicronsPerPixel="0,25"/>', 'invalid_value', /"0,25"/],
];

for (const [title, text, code, reason] of MALFORMED) {
  test(`refused: ${title}`, (t) => {
    const error = t.throws(() => parseAperioXml(text), { instanceOf: AnnotationError });
    t.is(error?.code, code);
    t.regex(error?.reason ?? '', reason);
    t.is(error?.message, `invalid Aperio XML: ${error?.reason}`);
  });
}

test('a billion-laughs document is refused before anything is expanded', (t) => {
  const entities = Array.from({ length: 10 }, (_, i) => `<!ENTITY l${i + 1} "${`&l${i};`.repeat(10)}">`).join('');
  const text = `<?xml version="1.0"?><!DOCTYPE Annotations [<!ENTITY l0 "ha">${entities}]><Annotations Note="&l10;"/>`;
  const started = process.hrtime.bigint();
  t.throws(() => parseAperioXml(text), { instanceOf: AnnotationError, message: /DOCTYPE declarations are not accepted/ });
  t.true(process.hrtime.bigint() - started < 1_000_000_000n);
});

// ---------------------------------------------------------------------------
// Writing

function handMade(): AperioAnnotations {
  return {
    micronsPerPixel: null,
    extra: {},
    children: [],
    layers: [
      {
        id: 1,
        name: 'quotes " and <tags> & tabs\tand\nnewlines, ünïcödé',
        lineColor: 255,
        colour: '#ff0000',
        visible: true,
        type: 4,
        attributes: [{ name: 'Description', value: "it's 5 > 3", extra: {} }],
        headers: [],
        plots: [],
        extra: {},
        children: [],
        regions: [
          { id: 1, type: 1, negative: false, text: '', vertices: [[0, 0], [60, 0], [60, 40], [0, 40]], attributes: [], extra: {}, children: [] },
          { id: 2, type: 0, negative: true, text: 'a\u0002b', vertices: [[1.5, 2.25], [10, 1e-7], [3, 7]], attributes: [], extra: {}, children: [] },
        ],
      },
    ],
  };
}

test('a hand-made document is written with the attributes ImageScope writes, and reads back the same', (t) => {
  const doc = handMade();
  const text = serializeAperioXml(doc);
  t.true(text.startsWith('<Annotations MicronsPerPixel="0">'));
  t.regex(text, /<Annotation Id="1" Name="[^"]*" ReadOnly="0" NameReadOnly="0" LineColorReadOnly="0" Incremental="0" Type="4" LineColor="255" Visible="1" Selected="0" MarkupImagePath="" MacroName="">/);
  t.regex(text, /<Region Id="1" Type="1" Zoom="1" Selected="0" ImageLocation="" ImageFocus="-1" Length="200.0" Area="2400.0" LengthMicrons="0.0" AreaMicrons="0.0" Text="" NegativeROA="0" InputRegionId="0" Analyze="1" DisplayId="1">/);
  t.regex(text, /Name="quotes &quot; and &lt;tags&gt; &amp; tabs&#9;and&#10;newlines, ünïcödé"/);
  const back = parseAperioXml(text);
  t.is(back.micronsPerPixel, null);
  t.is(back.layers[0]!.name, doc.layers[0]!.name);
  t.is(back.layers[0]!.attributes[0]!.value, "it's 5 > 3");
  // A character XML cannot carry becomes U+FFFD rather than an unreadable file.
  t.is(back.layers[0]!.regions[1]!.text, 'a\uFFFDb');
  t.deepEqual(
    back.layers[0]!.regions.map((r) => [r.id, r.type, r.negative, r.vertices]),
    doc.layers[0]!.regions.map((r) => [r.id, r.type, r.negative, r.vertices]),
  );
  // From here on the document carries every attribute, and round-trips exactly.
  t.deepEqual(parseAperioXml(serializeAperioXml(back)), back);
});

test('Z values other than 0, unknown elements and trailing comments survive a round trip', (t) => {
  const text =
    '<Annotations MicronsPerPixel="0.25" Vendor="x"><Annotation Id="1"><Extra Kind="k">note<Inner A="1"/></Extra><Regions>' +
    '<Region Id="1" Type="4"><Vertices><Vertex X="0" Y="0" Z="2"/><Vertex X="3" Y="4" Z="0"/></Vertices><Measure Unit="um"/></Region>' +
    '</Regions><Plots><Plot Id="1"/></Plots></Annotation></Annotations>\n<!-- exported by a script -->\n<?done?>\n';
  const doc = parseAperioXml(text);
  t.deepEqual(doc.layers[0]!.regions[0]!.z, [2, 0]);
  t.deepEqual(doc.extra, { Vendor: 'x' });
  t.is(doc.layers[0]!.children[0]!.text, 'note');
  t.is(doc.layers[0]!.plots[0]!.name, 'Plot');
  t.is(doc.layers[0]!.regions[0]!.children[0]!.name, 'Measure');
  const back = parseAperioXml(serializeAperioXml(doc));
  t.deepEqual(back.layers[0]!.regions[0]!.z, [2, 0]);
  t.deepEqual(back.extra, doc.extra);
  t.deepEqual(back.layers[0]!.children, doc.layers[0]!.children);
  t.deepEqual(back.layers[0]!.plots, doc.layers[0]!.plots);
  t.deepEqual(back.layers[0]!.regions[0]!.children, doc.layers[0]!.regions[0]!.children);
  t.deepEqual(parseAperioXml(serializeAperioXml(back)), back);
});
