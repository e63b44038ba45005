import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseAperioXml, type AperioAnnotations } from '../../server/annotations/index.js';
import { compareAnnotations, overlap } from '../../server/toolbox/agreement.js';
import { runCli } from '../support/cli.js';
import { createMigratedTestDatabase } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/** An ImageScope XML with one rectangle per layer: [layer id, x0, y0, x1, y1]. */
function xml(rectangles: [number, number, number, number, number][]): string {
  const layers = [...new Set(rectangles.map((r) => r[0]))].map((id) => {
    const regions = rectangles
      .filter((r) => r[0] === id)
      .map(([, x0, y0, x1, y1], i) =>
        `<Region Id="${i + 1}" Type="1" NegativeROA="0"><Vertices><Vertex X="${x0}" Y="${y0}"/><Vertex X="${x1}" Y="${y0}"/><Vertex X="${x1}" Y="${y1}"/><Vertex X="${x0}" Y="${y1}"/></Vertices></Region>`,
      )
      .join('');
    return `<Annotation Id="${id}" Name="layer ${id}" LineColor="65280"><Regions>${regions}</Regions></Annotation>`;
  });
  return `<Annotations MicronsPerPixel="0.5">${layers.join('')}</Annotations>`;
}
const doc = (rectangles: [number, number, number, number, number][]): AperioAnnotations => parseAperioXml(xml(rectangles));

test('the worked example of docs/references.md: truth 40 px, prediction 50 px, overlap 30 px of 100', (t) => {
  const report = compareAnnotations(doc([[1, 0, 0, 4, 10]]), doc([[1, 1, 0, 6, 10]]), { width: 10, height: 10, downsample: 1 });
  t.like(report.tumour, { a: 40, b: 50, intersection: 30, union: 60, iou: 0.5, layer: 1 });
  t.is(report.background.iou, 40 / 70);
  t.is(Number(report.miou.toFixed(3)), 0.536);
  t.deepEqual(report.layers.map((l) => [l.layerId, l.iou]), [[1, 0.5]]);
});

test('two empty masks agree perfectly; a layer only one side has scores 0', (t) => {
  t.is(overlap({ data: new Uint8Array(16) }, { data: new Uint8Array(16) }).iou, 1);
  const report = compareAnnotations(doc([[1, 0, 0, 4, 4], [2, 0, 0, 2, 2]]), doc([[1, 0, 0, 4, 4]]), { width: 8, height: 8, downsample: 1 });
  t.deepEqual(report.layers.map((l) => [l.layerId, l.iou, l.nameB]), [[1, 1, 'layer 1'], [2, 0, null]]);
  t.is(report.miou, 1, 'tumour is layer 1, on which both agree');
});

test('without a layer 1 on both sides the tumour is every layer together; an unknown --tumour-layer is refused', (t) => {
  const a = doc([[5, 0, 0, 4, 4]]);
  const b = doc([[6, 0, 0, 4, 4]]);
  const report = compareAnnotations(a, b, { width: 8, height: 8, downsample: 1 });
  t.is(report.tumour.layer, 'all');
  t.is(report.tumour.iou, 1);
  t.deepEqual(report.layers.map((l) => l.iou), [0, 0], 'per layer they do not overlap at all');
  t.throws(() => compareAnnotations(a, b, { width: 8, height: 8, downsample: 1, tumourLayer: 9 }), { message: /layer 9 is in neither annotation/ });
});

test('slidebank annotations compare prints the report as JSON and refuses bad options with exit code 2', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-compare-'));
  const [a, b] = [path.join(dir, 'a.xml'), path.join(dir, 'b.xml')];
  await writeFile(a, xml([[1, 0, 0, 400, 1000]]));
  await writeFile(b, xml([[1, 100, 0, 600, 1000]]));
  const run = await runCli(['annotations', 'compare', a, b, '--width', '1000', '--height', '1000', '--downsample', '10']);
  t.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as { miou: number; layers: { iou: number }[] };
  t.is(report.layers[0]!.iou, 0.5);
  t.is(Number(report.miou.toFixed(3)), 0.536);

  const noSize = await runCli(['annotations', 'compare', a, b]);
  t.is(noSize.code, 2);
  t.regex(noSize.stderr, /the slide size is needed: give --slide ID\|FILE, or --width and --height/);
  const missing = await runCli(['annotations', 'compare', a, path.join(dir, 'nope.xml'), '--width', '10', '--height', '10']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.xml: no such file/);
  await writeFile(path.join(dir, 'bad.xml'), '<Annotations><Annotation');
  const malformed = await runCli(['annotations', 'compare', a, path.join(dir, 'bad.xml'), '--width', '10', '--height', '10']);
  t.is(malformed.code, 1);
  t.regex(malformed.stderr, /bad\.xml: invalid Aperio XML/);
});

test('slidebank annotations compare --slide reads the size from the catalog by id, or from a slide file', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-compare-'));
  const made = await makeSlide({ width: 1200, height: 800, seed: 4, out: dir, name: 'c' });
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const slide = await registerSlide(database.db, made.svs);
  const byId = await runCli(['annotations', 'compare', made.xml, made.xml, '--slide', String(slide.id)], { env: { DATABASE_URL: database.url } });
  t.is(byId.code, 0, byId.stderr);
  t.like(JSON.parse(byId.stdout), { level0: { width: 1200, height: 800 }, miou: 1 });
  const byFile = await runCli(['annotations', 'compare', made.xml, made.xml, '--slide', made.svs, '--downsample', '4']);
  t.like(JSON.parse(byFile.stdout), { level0: { width: 1200, height: 800 }, grid: { width: 300, height: 200 }, miou: 1 });
  const unknown = await runCli(['annotations', 'compare', made.xml, made.xml, '--slide', '999'], { env: { DATABASE_URL: database.url } });
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /--slide 999: no such slide in the catalog/);
});
