import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseAperioXml, toGeoJson, type AnnotationFeatureCollection } from '../../server/annotations/index.js';
import type { SlideReview } from '../../server/annotation-review/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { makeSlide } from '../support/slides.js';
import { signedIn, viewerFetch, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

/** Annotation review: AI proposal → pathologist correction → confirmation → a colleague's cross-check → release. */

const WIDTH = 1600;
const HEIGHT = 1200;

async function publishedSlide(t: Parameters<typeof startTestApp>[0]): Promise<{ app: TestApp; slideId: number }> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-review-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const inbox = path.join(data, 'in');
  await makeSlide({ width: WIDTH, height: HEIGHT, seed: 9, out: inbox, name: 'case-r', tileSize: 240 });
  await rm(path.join(inbox, 'case-r.truth.json'));
  const fallback = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'a' };
  const [published] = (await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback })).results;
  if (published?.outcome !== 'published') throw new Error(`ingest: ${published?.reason}`);
  return { app, slideId: published.slideId! };
}

/** A square outline with a square hole, in level-0 pixels. */
function outline(x: number, y: number, size: number, hole = 0): AnnotationFeatureCollection {
  const square = (x0: number, y0: number, s: number): [number, number][] => [
    [x0, y0],
    [x0 + s, y0],
    [x0 + s, y0 + s],
    [x0, y0 + s],
    [x0, y0],
  ];
  const rings = [square(x, y, size)];
  if (hole > 0) rings.push(square(x + (size - hole) / 2, y + (size - hole) / 2, hole).reverse());
  return {
    type: 'FeatureCollection',
    features: [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: rings }, properties: { layerId: 1, layerName: 'Tumor', colour: '#ff0000', regionId: 1, type: 0, kind: 'polygon', text: '' } }],
    unplacedHoles: [],
    crossingHoles: [],
  };
}

const review = (client: Client, slideId: number) => client.get<SlideReview>(`/api/slides/${slideId}/annotations/review`);

test(`a proposal is corrected, confirmed, returned, corrected again and approved by a second pathologist; the released version is what researchers get (${testDialect})`, async (t) => {
  const { app, slideId } = await publishedSlide(t);
  const curator = await signedIn(app, { level: 'L1', roles: ['curator'] });
  const first = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const second = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const researcher = await signedIn(app, { level: 'L2' });
  const base = `/api/slides/${slideId}/annotations`;

  // The ingested outline is the released baseline.
  const start = await review(first.session, slideId);
  t.is(start.status, 200, JSON.stringify(start.body));
  t.like(start.body.workflow, { state: 'released', round: 0, revision: 0 });
  t.is(start.body.versions.length, 1);
  t.like(start.body.versions[0], { method: 'manual', author: null });
  const baseline = start.body.versions[0]!.id;

  // Researchers neither read the review nor write.
  t.is((await review(researcher.session, slideId)).status, 403);
  t.is((await researcher.session.post(`${base}/versions`, { method: 'ai', model: 'm', geojson: outline(100, 100, 400) })).status, 403);

  // An AI proposal from the curator.
  const proposed = await curator.session.post<SlideReview>(`${base}/versions`, { method: 'ai', model: 'unet-v1', geojson: outline(100, 100, 400) });
  t.is(proposed.status, 201, JSON.stringify(proposed.body));
  t.like(proposed.body.workflow, { state: 'proposed', round: 1, revision: 1 });
  t.like(proposed.body.versions[0], { method: 'ai', model: 'unet-v1', parentId: baseline });
  const proposal = proposed.body.versions[0]!.id;

  // The first pathologist corrects it: a new version, method "corrected".
  const saved = await first.session.post<SlideReview>(`${base}/edits`, { geojson: outline(100, 100, 500, 100), revision: 1 });
  t.is(saved.status, 201, JSON.stringify(saved.body));
  t.like(saved.body.workflow, { state: 'in-review', revision: 2 });
  t.like(saved.body.versions[0], { method: 'corrected', parentId: proposal });
  t.is(saved.body.versions[0]!.area, 500 * 500 - 100 * 100);

  // A save made against the older revision is refused and told to reload; nothing is added.
  const stale = await second.session.post<{ error: { code: string; message: string } }>(`${base}/edits`, { geojson: outline(0, 0, 300), revision: 1 });
  t.is(stale.status, 409);
  t.is(stale.body.error.code, 'stale_revision');
  t.regex(stale.body.error.message, /reload/);
  t.is((await review(first.session, slideId)).body.versions.length, 3);

  // A curator is not a pathologist: no edits.
  t.is((await curator.session.post(`${base}/edits`, { geojson: outline(0, 0, 300), revision: 2 })).status, 403);

  // Confirm; the confirming pathologist cannot cross-check their own work.
  t.like((await first.session.post<SlideReview>(`${base}/confirm`, { revision: 2 })).body.workflow, { state: 'cross-check', annotatorId: first.user.id, revision: 3 });
  const own = await first.session.post<{ error: { code: string } }>(`${base}/approve`, { revision: 3 });
  t.is(own.status, 403);
  t.is(own.body.error.code, 'own_confirmation');
  t.is((await first.session.post(`${base}/edits`, { geojson: outline(0, 0, 300), revision: 3 })).status, 409, 'no edits under cross-check');

  // The colleague returns it with a comment (a comment is required): round 2.
  t.is((await second.session.post(`${base}/return`, { revision: 3 })).status, 400);
  const returned = await second.session.post<SlideReview>(`${base}/return`, { revision: 3, comment: 'include the satellite nodule' });
  t.is(returned.status, 200, JSON.stringify(returned.body));
  t.like(returned.body.workflow, { state: 'in-review', round: 2, annotatorId: null });
  t.like(returned.body.events.at(-1), { action: 'return', comment: 'include the satellite nodule', round: 2 });

  const corrected = await first.session.post<SlideReview>(`${base}/edits`, { geojson: outline(100, 100, 600, 100), revision: 4 });
  t.is(corrected.status, 201);
  const final = corrected.body.versions[0]!.id;
  await first.session.post(`${base}/confirm`, { revision: 5 });
  const approved = await second.session.post<SlideReview>(`${base}/approve`, { revision: 6, comment: 'agreed' });
  t.is(approved.status, 200, JSON.stringify(approved.body));
  t.like(approved.body.workflow, { state: 'released', releasedVersionId: final, checkerId: second.user.id });
  t.deepEqual(
    approved.body.events.map((e) => e.action),
    ['baseline', 'propose', 'save', 'confirm', 'return', 'save', 'confirm', 'approve'],
  );

  // What researchers see and download is now the released version, marked AI-assisted in the catalog.
  const overlay = (await (await viewerFetch(app, `/api/slides/${slideId}/annotation.geojson`)).json()) as AnnotationFeatureCollection;
  t.deepEqual(overlay.features.map((f) => f.geometry.coordinates), [outline(100, 100, 600, 100).features[0]!.geometry.coordinates]);
  const row = (await app.database.db.knex('slides').where({ id: slideId }).first('annotation_path', 'annotation_method')) as { annotation_path: string; annotation_method: string };
  t.is(row.annotation_method, 'A');
  const stored = parseAperioXml(await readFile(path.join(app.config.paths.slides, row.annotation_path), 'utf8'));
  t.deepEqual(toGeoJson(stored).features.map((f) => f.geometry.coordinates), overlay.features.map((f) => f.geometry.coordinates));

  // Versions stay readable as GeoJSON and XML, and compare with IoU and edit figures.
  const geojson = await first.session.get<AnnotationFeatureCollection>(`${base}/versions/${proposal}.geojson`);
  t.deepEqual(geojson.body.features[0]!.geometry.coordinates, outline(100, 100, 400).features[0]!.geometry.coordinates);
  const xml = await first.session.get<Buffer>(`${base}/versions/${final}.xml`);
  t.regex(xml.body.toString('utf8'), /^<\?xml|<Annotations/);
  const compared = await first.session.get<{ agreement: { tumour: { iou: number }; miou: number; downsample: number }; edits: Record<string, number> }>(`${base}/compare?a=${proposal}&b=${final}&downsample=4`);
  t.is(compared.status, 200, JSON.stringify(compared.body));
  // Proposal: 400² from (100, 100). Final: 600² from (100, 100) less a 100² hole centred at (400, 400), inside the proposal.
  // Both: 400² − 100²; either: 600²; so IoU = 150,000 / 360,000; added 600² − 100² − 150,000; removed the hole.
  t.true(Math.abs(compared.body.agreement.tumour.iou - 150_000 / 360_000) < 0.005, String(compared.body.agreement.tumour.iou));
  t.true(Math.abs(compared.body.edits.areaAdded! - 200_000) <= 200_000 * 0.01, String(compared.body.edits.areaAdded));
  t.true(Math.abs(compared.body.edits.areaRemoved! - 10_000) <= 10_000 * 0.05, String(compared.body.edits.areaRemoved));
  t.like(compared.body.edits, { regionsAdded: 2, regionsRemoved: 1 });
  t.is((await first.session.get(`${base}/compare?a=${proposal}&b=999999`)).status, 404);

  // Every step is audited.
  const actions = app.audit.events.filter((e) => e.action.startsWith('annotation.')).map((e) => e.action);
  t.deepEqual(actions, ['annotation.propose', 'annotation.save', 'annotation.confirm', 'annotation.return', 'annotation.save', 'annotation.confirm', 'annotation.approve']);

  // The agreement figures per organ: one AI-assisted slide, the proposal compared with each confirmation.
  const stats = await researcher.session.get<{ organs: { organ: string; aiAssisted: number; manual: number; proposals: { compared: number; meanMiou: number; byRound: { round: number }[] } }[] }>('/api/annotations/statistics');
  t.is(stats.status, 200);
  const liver = stats.body.organs.find((o) => o.organ === 'LV')!;
  t.like(liver, { aiAssisted: 1, manual: 0 });
  t.is(liver.proposals.compared, 2);
  t.deepEqual(liver.proposals.byRound.map((r) => r.round), [1, 2]);
  t.true(liver.proposals.meanMiou > 0.5 && liver.proposals.meanMiou < 1);
});

test(`bad outlines are refused with the region named and change nothing; the worklist shows each slide's state (${testDialect})`, async (t) => {
  const { app, slideId } = await publishedSlide(t);
  const pathologist = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const base = `/api/slides/${slideId}/annotations`;
  // Before its review starts, the worklist shows the slide as released (it has an ingested outline) and writes nothing.
  const before = await pathologist.session.get<{ items: { slide: { id: number }; state: string; round: number }[] }>('/api/annotations/worklist');
  t.deepEqual(before.body.items.map((i) => [i.slide.id, i.state, i.round]), [[slideId, 'released', 0]]);
  t.is(Number(((await app.database.db.knex('annotation_versions').count({ n: '*' })) as [{ n: number | string }])[0].n), 0);
  t.is(Number(((await app.database.db.knex('annotation_workflows').count({ n: '*' })) as [{ n: number | string }])[0].n), 0);
  const bowtie = outline(0, 0, 10);
  bowtie.features[0]!.geometry.coordinates = [
    [
      [100, 100],
      [300, 300],
      [300, 100],
      [100, 300],
      [100, 100],
    ],
  ];
  const refusals: [unknown, RegExp][] = [
    [{ method: 'ai', model: 'm', geojson: bowtie }, /layer 1 region 1 crosses itself near \(200, 200\)/],
    [{ method: 'ai', model: 'm', geojson: outline(WIDTH - 100, 100, 400) }, /outside the 1600×1200 slide/],
    [{ method: 'ai', model: 'm', geojson: { type: 'FeatureCollection', features: [] } }, /no region to outline \(it is empty\)/],
    [{ method: 'ai', geojson: outline(100, 100, 200) }, /names the model/],
    [{ method: 'ai', model: 'm', xml: '<Annotations><Annotation Id="1"><Regions><Region Id="1" Type="0" NegativeROA="1"><Vertices><Vertex X="10" Y="10"/><Vertex X="20" Y="10"/><Vertex X="20" Y="20"/></Vertices></Region></Regions></Annotation></Annotations>' }, /region 1 is a hole outside every shape/],
    [{ method: 'ai', model: 'm', xml: '<not xml' }, /cannot be read/],
  ];
  for (const [body, message] of refusals) {
    const answer = await pathologist.session.post<{ error: { message: string } }>(`${base}/versions`, body);
    t.is(answer.status, 400, JSON.stringify(answer.body));
    t.regex(answer.body.error.message, message);
  }
  // Requests that are malformed whatever the slide are refused at the edge, each problem named.
  const malformed: [string, unknown, { field: string; message: string }][] = [
    ['versions', { method: 'ai', model: 'm' }, { field: 'body', message: 'give the outline as geojson (a FeatureCollection) or xml (Aperio XML text)' }],
    ['versions', { method: 'drawn', geojson: outline(100, 100, 200) }, { field: 'method', message: 'method must be "ai" or "manual"' }],
    ['versions', { method: 'ai', model: 'm', geojson: 5 }, { field: 'geojson', message: 'geojson must be a GeoJSON FeatureCollection or Feature, or its text' }],
    ['versions', { method: 'ai', model: 'm'.repeat(201), geojson: outline(100, 100, 200) }, { field: 'model', message: 'model is longer than 200 characters' }],
    ['edits', { geojson: outline(100, 100, 200), revision: 'latest' }, { field: 'revision', message: 'revision must be the whole number the outline was loaded at' }],
    ['confirm', { revision: -1 }, { field: 'revision', message: 'revision must be the whole number the outline was loaded at' }],
    ['confirm', { revision: 0, force: true }, { field: 'force', message: 'force is not a field here' }],
    ['return', { revision: 0 }, { field: 'comment', message: 'comment is missing' }],
  ];
  for (const [step, body, problem] of malformed) {
    const answer = await pathologist.session.post<{ error: { code: string; details: { problems: unknown[] } } }>(`${base}/${step}`, body);
    t.is(answer.status, 400, `${step} ${JSON.stringify(body).slice(0, 80)}`);
    t.is(answer.body.error.code, 'invalid_request');
    t.deepEqual(answer.body.error.details.problems, [problem]);
  }
  t.is((await pathologist.session.get(`/api/slides/abc/annotations/review`)).status, 404);
  t.is((await pathologist.session.get(`${base}/versions/x.geojson`)).status, 404);
  t.is((await pathologist.session.get(`${base}/compare?a=1`)).status, 400, 'b is missing');

  const after = await review(pathologist.session, slideId);
  t.is(after.body.versions.length, 1, 'nothing was added');
  t.like(after.body.workflow, { state: 'released', revision: 0 });

  await pathologist.session.post(`${base}/versions`, { method: 'ai', model: 'm', geojson: outline(100, 100, 200) });
  const worklist = await pathologist.session.get<{ items: { slide: { id: number }; state: string; round: number }[]; total: number }>('/api/annotations/worklist?state=proposed,in-review');
  t.is(worklist.status, 200);
  t.deepEqual(worklist.body.items.map((i) => [i.slide.id, i.state, i.round]), [[slideId, 'proposed', 1]]);
  t.is((await pathologist.session.get('/api/annotations/worklist?state=finished')).status, 400);
  t.is((await pathologist.session.get('/api/annotations/worklist?sort=state')).status, 400, 'an unknown parameter is refused, not ignored');
  const viewer = await signedIn(app, { level: 'L3' });
  t.is((await viewer.session.get('/api/annotations/worklist')).status, 403);
  t.is((await pathologist.session.get('/api/slides/999999/annotations/review')).status, 404);
});
