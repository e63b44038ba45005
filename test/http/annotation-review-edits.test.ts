import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Comparison, SlideReview, Worklist } from '../../server/annotation-review/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { makeSlide } from '../support/slides.js';
import { signedIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

/** A pathologist's edit of an outline with a hole, compared with what it was; versions numbered per slide; the worklist's organ names. */

type Ring = [number, number][];

async function publishedSlides(t: Parameters<typeof startTestApp>[0], size: { width: number; height: number }): Promise<{ app: TestApp; slideIds: number[] }> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-review-edits-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const inbox = path.join(data, 'in');
  for (const [i, name] of ['case-e1', 'case-e2'].entries()) {
    await makeSlide({ ...size, seed: 11 + i, out: inbox, name, tileSize: 240 });
    await rm(path.join(inbox, `${name}.truth.json`));
  }
  const fallback = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'a' };
  const { results } = await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback });
  const slideIds = results.map((r) => {
    if (r.outcome !== 'published') throw new Error(`ingest: ${r.reason}`);
    return r.slideId!;
  });
  return { app, slideIds };
}

function polygon(...rings: Ring[]) {
  const closed = rings.map((ring) => [...ring, ring[0]!]);
  return { type: 'FeatureCollection', features: [{ type: 'Feature', geometry: { type: 'Polygon', coordinates: closed }, properties: { layerId: 1, layerName: 'Tumor', colour: '#ff0000' } }] };
}

/** 140 vertices from `from`, 100 px apart, along (dx, dy). */
function side(from: [number, number], dx: number, dy: number): Ring {
  return Array.from({ length: 140 }, (_, i): [number, number] => [from[0] + dx * i, from[1] + dy * i]);
}

// A hand-drawn-sized outline: the square 100…14,100 as 560 vertices, with a 200 px square hole against its right side.
const OUTER: Ring = [...side([100, 100], 100, 0), ...side([14_100, 100], 0, 100), ...side([14_100, 14_100], -100, 0), ...side([100, 14_100], 0, -100)];
const HOLE: Ring = [
  [13_800, 7_000],
  [13_800, 7_200],
  [14_000, 7_200],
  [14_000, 7_000],
];
const OUTLINED = 14_000 * 14_000 - 200 * 200;

test(`a vertex of the outer ring moved into the hole changes the comparison by the area it cut off (${testDialect})`, async (t) => {
  const { app, slideIds } = await publishedSlides(t, { width: 1600, height: 1200 });
  const slideId = slideIds[0]!;
  // Compared as a slide of 100,000 × 80,000 pixels, as scanned at 40×: over that whole slide's grid (45 px cells) one vertex's move is a few cells.
  await app.database.db.knex('slides').where({ id: slideId }).update({ width: 100_000, height: 80_000 });
  const pathologist = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const base = `/api/slides/${slideId}/annotations`;

  const proposed = await pathologist.session.post<SlideReview>(`${base}/versions`, { method: 'ai', model: 'unet-v1', geojson: polygon(OUTER, HOLE) });
  t.is(proposed.status, 201, JSON.stringify(proposed.body));
  const before = proposed.body.versions[0]!;
  t.is(before.area, OUTLINED);

  // (14,100, 7,100) dragged to (13,900, 7,100), the centre of the hole: the ring now runs into the hole.
  const moved = OUTER.map(([x, y]): [number, number] => (x === 14_100 && y === 7_100 ? [13_900, 7_100] : [x, y]));
  const saved = await pathologist.session.post<SlideReview>(`${base}/edits`, { geojson: polygon(moved, HOLE), revision: proposed.body.workflow.revision });
  t.is(saved.status, 201, JSON.stringify(saved.body));
  const after = saved.body.versions[0]!;

  // By hand: the ring loses the triangle (14,100, 7,000), (13,900, 7,100), (14,100, 7,200), of 200 × 200 / 2 = 20,000 px²;
  // the part of it inside the hole (x ≥ 13,900 + 2 |y − 7,100| up to x = 14,000: ∫ (100 − 2 |t|) dt over |t| ≤ 50 = 5,000 px²)
  // was not outlined anyway. So 15,000 px² are removed and nothing is added.
  const removed = 15_000;
  const compared = await pathologist.session.get<Comparison>(`${base}/compare?a=${before.id}&b=${after.id}`);
  t.is(compared.status, 200, JSON.stringify(compared.body));
  const { agreement, edits } = compared.body;
  t.true(Math.abs(edits.areaRemoved - removed) <= removed * 0.01, `removed ${edits.areaRemoved}, by hand ${removed}`);
  t.is(edits.areaAdded, 0);
  t.like(edits, { regionsAdded: 1, regionsRemoved: 1 });
  t.like(compared.body, { aNumber: 2, bNumber: 3 });
  // mIoU is below 1 by what the edit changed: tumour IoU 1 − 15,000 / 195,960,000 and the background's nearly 1, so about 0.99996.
  const tumourIou = 1 - removed / OUTLINED;
  t.true(agreement.miou < 1, String(agreement.miou));
  t.true(Math.abs(1 - agreement.tumour.iou - (1 - tumourIou)) <= (1 - tumourIou) * 0.05, `tumour IoU ${agreement.tumour.iou}, by hand ${tumourIou}`);
  t.true(agreement.downsample < 45, `compared at ${agreement.downsample} px per cell, over the outlines rather than the whole slide`);
  t.deepEqual(agreement.grid, { width: Math.ceil(100_000 / agreement.downsample), height: Math.ceil(80_000 / agreement.downsample) });

  // A hole's vertex moved gives both: (14,000, 7,200) → (13,900, 7,300). The hole's new edge (13,900, 7,300)–(14,000, 7,000)
  // runs along x = 14,000 − (y − 7,000) / 3 and crosses y = 7,200 at x = 13,933⅓.
  const reshaped = HOLE.map(([x, y]): [number, number] => (x === 14_000 && y === 7_200 ? [13_900, 7_300] : [x, y]));
  const again = await pathologist.session.post<SlideReview>(`${base}/edits`, { geojson: polygon(OUTER, reshaped), revision: saved.body.workflow.revision });
  t.is(again.status, 201, JSON.stringify(again.body));
  const hole = await pathologist.session.get<Comparison>(`${base}/compare?a=${before.id}&b=${again.body.versions[0]!.id}`);
  // Added (no longer cut out): the old hole right of that edge, ∫ (y − 7,000) / 3 dy for y from 7,000 to 7,200 = 200² / 6 ≈ 6,666.7 px².
  // Removed (newly cut out): the triangle (13,800, 7,200), (13,900, 7,300), (13,933⅓, 7,200), 133⅓ × 100 / 2 ≈ 6,666.7 px².
  t.true(Math.abs(hole.body.edits.areaAdded - 40_000 / 6) <= 40, String(hole.body.edits.areaAdded));
  t.true(Math.abs(hole.body.edits.areaRemoved - 40_000 / 6) <= 40, String(hole.body.edits.areaRemoved));
  t.true(hole.body.agreement.miou < 1);
  t.like(hole.body, { aNumber: 2, bNumber: 4 });

  // A version compared with itself is the same.
  const same = await pathologist.session.get<Comparison>(`${base}/compare?a=${after.id}&b=${after.id}`);
  t.is(same.body.agreement.miou, 1);
  t.like(same.body.edits, { areaAdded: 0, areaRemoved: 0, regionsAdded: 0, regionsRemoved: 0 });
});

test(`versions are numbered per slide, and the worklist names organs (${testDialect})`, async (t) => {
  const { app, slideIds } = await publishedSlides(t, { width: 1600, height: 1200 });
  const [first, second] = slideIds as [number, number];
  const pathologist = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const propose = (slideId: number, size: number) =>
    pathologist.session.post<SlideReview>(`/api/slides/${slideId}/annotations/versions`, {
      method: 'ai',
      model: 'unet-v1',
      geojson: polygon([
        [100, 100],
        [100 + size, 100],
        [100 + size, 100 + size],
        [100, 100 + size],
      ]),
    });
  // Interleaved, so that global ids and per-slide numbers differ.
  await propose(first, 200);
  await propose(second, 200);
  const last = await propose(first, 300);
  t.is(last.status, 201, JSON.stringify(last.body));
  t.deepEqual(
    last.body.versions.map((v) => v.number),
    [3, 2, 1],
    'newest first: the ingested baseline is v1',
  );
  const other = await pathologist.session.get<SlideReview>(`/api/slides/${second}/annotations/review`);
  t.deepEqual(other.body.versions.map((v) => v.number), [2, 1]);
  t.not(other.body.versions[0]!.id, 2, 'ids are global, numbers are per slide');

  const worklist = await pathologist.session.get<Worklist>('/api/annotations/worklist?state=proposed');
  t.is(worklist.status, 200);
  // By id on both sides: the slides of one folder are ingested in parallel, so `first` may have the higher id.
  const byId = (x: unknown[], y: unknown[]) => Number(x[0]) - Number(y[0]);
  t.deepEqual(
    worklist.body.items.map((i) => [i.slide.id, i.slide.organ, i.slide.organName]).sort(byId),
    [
      [first, 'LV', 'Liver'],
      [second, 'LV', 'Liver'],
    ].sort(byId),
  );
});
