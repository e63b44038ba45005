import test from 'ava';
import {
  REMOVED_MARKER,
  compileTextPatterns,
  looksLikePath,
  parseAperioXml,
  scrubAnnotations,
  serializeAperioXml,
} from '../../../server/annotations/index.js';
import { fixtureTest, type FixtureName } from '../../support/fixtures.js';
import { annotations, defaultScrubPatterns, fixtureText, layer, region, square } from './helpers.js';

const patterns = compileTextPatterns(defaultScrubPatterns());

/** What a careless export leaves in a file: paths on the workstation, a name, numbers that identify a patient. */
const PLANTED = annotations([
  layer(
    1,
    [
      region({
        id: 1,
        text: 'Reviewed by Dr. Smith, case S12-34567, RRN 800101-1234567; margin clear',
        attributes: 'ImageLocation="C:\\Scans\\2019\\S12-34567 SMITH JOHN.svs" Length="40.0"',
        vertices: [
          [10.5, 20.25],
          [110, 20],
          [110, 120.75],
          [10, 120],
        ],
      }),
      region({ id: 2, negative: true, text: 'necrosis', vertices: square(30, 30, 20) }),
      region({ id: 3, type: 4, text: 'see /home/jsmith/cases/S12-34567.svs', vertices: [[0, 0], [5, 5]] }),
    ],
    'Name="tumour (Prof. Kim)" LineColor="65280" Visible="1" Type="4" MarkupImagePath="\\\\pathserver\\markup\\S12-34567.jpg" MacroName=""',
  ).replace(
    '<Attributes/>',
    '<Attributes><Attribute Name="Description" Id="0" Value="D:\\Exports\\patient 123\\slide.svs"/><Attribute Name="Grade" Id="1" Value="G2 per Mrs Lee"/></Attributes>',
  ),
]);

const SECRETS = ['Smith', 'SMITH', 'S12-34567', '800101', 'pathserver', 'Scans', 'Exports', 'patient 123', 'jsmith', 'Kim', 'Lee'];

test('scrub removes planted paths and names, leaves geometry and harmless text alone', (t) => {
  const doc = parseAperioXml(PLANTED);
  const before = structuredClone(doc);
  const { doc: clean, removed } = scrubAnnotations(doc, { textPatterns: patterns });

  const [first, hole, ruler] = clean.layers[0]!.regions;
  t.is(clean.layers[0]!.extra.MarkupImagePath, '');
  t.is(first!.extra.ImageLocation, '');
  t.is(first!.text, `Reviewed by ${REMOVED_MARKER}, case ${REMOVED_MARKER}, RRN ${REMOVED_MARKER}; margin clear`);
  t.is(hole!.text, 'necrosis');
  t.is(ruler!.text, '', 'a Text holding a file path is blanked whole');
  t.is(clean.layers[0]!.name, `tumour (${REMOVED_MARKER})`);
  t.deepEqual(
    clean.layers[0]!.attributes.map((a) => [a.name, a.value]),
    [
      ['Description', ''],
      ['Grade', `G2 per ${REMOVED_MARKER}`],
    ],
  );
  // Geometry and everything else untouched; the input unchanged.
  t.deepEqual(
    clean.layers[0]!.regions.map((r) => [r.id, r.type, r.negative, r.vertices]),
    before.layers[0]!.regions.map((r) => [r.id, r.type, r.negative, r.vertices]),
  );
  t.is(first!.extra.Length, '40.0');
  t.deepEqual(doc, before, 'scrubAnnotations does not change its input');

  // The whole written file is free of every planted value.
  const written = serializeAperioXml(clean);
  for (const secret of SECRETS) t.false(written.includes(secret), `"${secret}" is gone from the file`);

  // The report says what and where, never the value.
  t.true(removed.includes('MarkupImagePath of annotation 1 (Id 1): blanked'));
  t.true(removed.includes('ImageLocation of region 1 (Id 1) of annotation 1 (Id 1): blanked'));
  t.true(removed.includes('Value of attribute 1 of annotation 1 (Id 1): file path, blanked'));
  t.true(removed.includes('Text of region 3 (Id 3) of annotation 1 (Id 1): file path, blanked'));
  t.true(removed.some((line) => line.startsWith('Text of region 1 (Id 1) of annotation 1 (Id 1): 1 match of /\\b(?:Dr|Mr|Mrs|Ms|Prof)')));
  t.true(removed.some((line) => line.startsWith('Name of annotation 1 (Id 1): 1 match of')));
  t.is(removed.length, 9);
  for (const secret of SECRETS) t.false(removed.join('\n').includes(secret), `"${secret}" is not in the report`);
});

test('scrubbing a clean document removes nothing and returns an equal copy', (t) => {
  const doc = parseAperioXml(annotations([layer(1, [region({ id: 1, text: 'viable tumour, 10:48 PM', vertices: square(0, 0, 5) })])]));
  const { doc: clean, removed } = scrubAnnotations(doc, { textPatterns: patterns });
  t.deepEqual(removed, []);
  t.deepEqual(clean, doc);
  t.not(clean, doc);
  t.not(clean.layers[0]!.regions[0]!.vertices, doc.layers[0]!.regions[0]!.vertices);
});

test('each default pattern catches what config/default.json means it for', (t) => {
  const scrubText = (text: string) => {
    const doc = parseAperioXml(annotations([layer(1, [region({ id: 1, text, vertices: square(0, 0, 5) })])]));
    return scrubAnnotations(doc, { textPatterns: patterns }).doc.layers[0]!.regions[0]!.text;
  };
  t.is(scrubText('Dr Smith and Ms. Park'), `${REMOVED_MARKER} and ${REMOVED_MARKER}`);
  t.is(scrubText('id 8001011234567 end'), `id ${REMOVED_MARKER} end`);
  t.is(scrubText('accession AB19-0042'), `accession ${REMOVED_MARKER}`);
  t.is(scrubText('tumour 5 mm'), 'tumour 5 mm');
});

test('a pattern given without the g flag still replaces every match', (t) => {
  const doc = parseAperioXml(annotations([layer(1, [region({ id: 1, text: 'Dr. Smith then Dr. Jones', vertices: square(0, 0, 5) })])]));
  const { doc: clean, removed } = scrubAnnotations(doc, { textPatterns: [/\bDr\.\s+[A-Z][a-z]+/] });
  t.is(clean.layers[0]!.regions[0]!.text, `${REMOVED_MARKER} then ${REMOVED_MARKER}`);
  t.deepEqual(removed, ['Text of region 1 (Id 1) of annotation 1 (Id 1): 2 matches of /\\bDr\\.\\s+[A-Z][a-z]+/g replaced']);
});

test('file paths are recognised in any attribute, also ones this module does not know', (t) => {
  const doc = parseAperioXml('<Annotations MicronsPerPixel="0.5" Source="\\\\nas01\\slides\\x.svs"><Annotation Id="1" Owner="file:///C:/x"><InputAnnotationId>/var/lib/aperio/in.xml</InputAnnotationId></Annotation></Annotations>');
  const { doc: clean, removed } = scrubAnnotations(doc, { textPatterns: [] });
  t.is(clean.extra.Source, '');
  t.is(clean.layers[0]!.extra.Owner, '');
  t.is(clean.layers[0]!.children[0]!.text, '');
  t.is(removed.length, 3);
});

test('looksLikePath: Windows, UNC and POSIX paths and file URLs, not dates, times, ratios or web addresses', (t) => {
  for (const path of ['C:\\x.svs', 'c:/scans/a.svs', 'copy of D:\\a', '\\\\server\\share\\f', '/home/a/b.svs', 'at /mnt/x/', 'file:///tmp/a']) {
    t.true(looksLikePath(path), path);
  }
  for (const text of ['2018/04/10', '10:48:17 PM', '3.11838e-002', 'a/b', 'HER2 3+/4', 'http://example.org/a/b', 'pTDP-43 Colour Deconvolution-v4 output', '/']) {
    t.false(looksLikePath(text), text);
  }
});

for (const name of ['NP040-16_pTDP43_RVC.xml', 'NP391-16_PLP_LVC_20x.xml', 'imagescope_xml_utils-test.xml', 'wsi_annotations_kit-test_annotation.xml'] as FixtureName[]) {
  fixtureTest(`scrubbing ${name} keeps every Id, type and vertex`, async (t) => {
    const doc = parseAperioXml(await fixtureText(name));
    const { doc: clean, removed } = scrubAnnotations(doc, { textPatterns: patterns });
    const shape = (d: typeof doc) => d.layers.map((l) => [l.id, l.lineColor, l.regions.map((r) => [r.id, r.type, r.negative, r.vertices])]);
    t.deepEqual(shape(clean), shape(doc));
    t.deepEqual(parseAperioXml(serializeAperioXml(clean)), clean);
    // NP040's algorithm layers point at the analysed image ("@75323"); nothing else in these files identifies anyone.
    t.is(removed.filter((line) => line.startsWith('ImageLocation')).length, name === 'NP040-16_pTDP43_RVC.xml' ? 2 : 0);
  });
}
