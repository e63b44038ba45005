// Attacks on the cost of single requests, run against a real server: each request's work is bounded,
// what is beyond the bound is refused with a 400 that says why, and nothing CPU-heavy holds up the event loop.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import sharp from 'sharp';
import type { AnnotationFeatureCollection } from '../../server/annotations/index.js';
import { MAX_OUTLINE_VERTICES } from '../../server/annotations/index.js';
import type { SlideReview } from '../../server/annotation-review/index.js';
import { signedIn, viewerFetch, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const SMALLEST_CAP = String(4096 * 4096);

async function slideFolder(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bounded-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function app(t: ExecutionContext, env: Record<string, string> = {}): Promise<{ app: TestApp; dir: string }> {
  const dir = await slideFolder(t);
  return { app: await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: dir, ...env } }), dir };
}

async function madeSlide(target: TestApp, dir: string, options: { width: number; height: number; levels?: number; name: string }): Promise<number> {
  const made = await makeSlide({ ...options, seed: 5, out: path.join(dir, 'made'), tileSize: 256 });
  return (await registerSlide(target.database.db, made.svs, options.name)).id;
}

async function iiif(target: TestApp, slideId: number, request: string): Promise<{ status: number; error?: { code: string; message: string }; size?: [number, number] }> {
  const response = await viewerFetch(target, `/iiif/${slideId}/${request}`);
  const body = Buffer.from(await response.arrayBuffer());
  if (response.status !== 200) return { status: response.status, error: (JSON.parse(body.toString('utf8')) as { error: { code: string; message: string } }).error };
  const { width, height } = await sharp(body).metadata();
  return { status: 200, size: [width!, height!] };
}

/** A polygon of `vertices` vertices whose edges each span the width of the box: simple, and the worst case for a check that compares edges whose x ranges overlap. */
function comb(vertices: number, box: { left: number; right: number; top: number; bottom: number }): [number, number][] {
  const teeth = vertices - 2;
  const step = (box.bottom - box.top) / teeth;
  const ring: [number, number][] = [];
  for (let i = 0; i < teeth; i++) ring.push([i % 2 === 0 ? box.left : box.right - 100, box.top + i * step]);
  ring.push([box.right, box.bottom], [box.right, box.top - 50]);
  return ring;
}

function outline(ring: [number, number][]): AnnotationFeatureCollection {
  return {
    type: 'FeatureCollection',
    features: [
      {
        type: 'Feature',
        geometry: { type: 'Polygon', coordinates: [[...ring, ring[0]!]] },
        properties: { layerId: 1, layerName: 'Tumor', colour: '#ff0000', regionId: 1, type: 0, kind: 'polygon', text: '' },
      },
    ],
    unplacedHoles: [],
    crossingHoles: [],
  };
}

/**
 * Runs `work` while asking /healthz every 50 ms; returns what `work` gave and
 * the slowest answer to /healthz in milliseconds (at least one is asked).
 */
async function healthWhile<T>(target: TestApp, work: Promise<T>): Promise<{ result: T; slowestMs: number; workMs: number; answeredDuring: number }> {
  const begun = performance.now();
  let workMs: number | undefined;
  const finished = work.finally(() => (workMs = performance.now() - begun));
  let slowestMs = 0;
  let answeredDuring = 0;
  while (workMs === undefined || answeredDuring === 0) {
    const started = performance.now();
    const response = await fetch(target.url('/healthz'));
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`/healthz answered ${response.status}`);
    slowestMs = Math.max(slowestMs, performance.now() - started);
    if (workMs === undefined) answeredDuring++;
    else break;
    await sleep(50);
  }
  return { result: await finished, slowestMs, workMs: workMs!, answeredDuring };
}

test(`IIIF: a full-slide region at a distorted or tiny size is refused with 400 before anything is decoded; max and info.json offer only what renders within the cap (${testDialect})`, async (t) => {
  const { app: target, dir } = await app(t, { SLIDEBANK_TILES_MAX_RENDER_SOURCE_PIXELS: SMALLEST_CAP });
  // 8000×6000 with a level of 2000×1500, and the same with level 0 alone: 48 million pixels each, three times the cap.
  const pyramid = await madeSlide(target, dir, { width: 8000, height: 6000, name: 'pyramid.svs' });
  const flat = await madeSlide(target, dir, { width: 8000, height: 6000, levels: 1, name: 'flat.svs' });

  // A one-pixel-wide image as tall as the slide needs level 0 whole: refused, and the answer says why.
  const distorted = await iiif(target, pyramid, 'full/1,6000/0/default.jpg');
  t.is(distorted.status, 400);
  t.is(distorted.error?.code, 'render_too_large');
  t.regex(distorted.error!.message, /needs 48000000 of its pixels, more than the 16777216 one render may decode \(tiles\.maxRenderSourcePixels\)/);
  // A thumbnail of a slide without a pyramid would decode all of level 0: refused.
  const tiny = await iiif(target, flat, 'full/10,/0/default.jpg');
  t.is(tiny.status, 400);
  t.is(tiny.error?.code, 'render_too_large');
  // max is the largest image that renders within the cap: the 2000×1500 level as it is, not 4730×3547 from level 0.
  t.deepEqual((await iiif(target, pyramid, 'full/max/0/default.jpg')).size, [2000, 1500]);
  const flatMax = await iiif(target, flat, 'full/max/0/default.jpg');
  t.is(flatMax.status, 400);
  t.regex(flatMax.error!.message, /too large to render from this slide's stored levels/);
  // What fits is served: the level the requested scale needs, even where stored sizes are rounded.
  t.deepEqual((await iiif(target, pyramid, 'full/500,/0/default.jpg')).size, [500, 375]);
  t.deepEqual((await iiif(target, flat, '0,0,4096,4096/1024,/0/default.png')).size, [1024, 1024]);
  t.is((await iiif(target, flat, '0,0,4097,4096/1024,/0/default.png')).status, 400);
  t.is(target.services.tiles.iiifStats.refused, 4);

  // info.json offers only tiles and sizes that render within the cap.
  const info = async (id: number) => (await (await viewerFetch(target, `/iiif/${id}/info.json`)).json()) as { maxArea: number; sizes: { width: number; height: number }[]; tiles?: { scaleFactors: number[] }[] };
  const flatInfo = await info(flat);
  t.is(flatInfo.maxArea, 4096 * 4096);
  t.deepEqual(flatInfo.sizes, []);
  t.deepEqual(flatInfo.tiles?.[0]?.scaleFactors, [1, 2, 4, 8]);
  const pyramidInfo = await info(pyramid);
  t.deepEqual(pyramidInfo.sizes, [{ width: 2000, height: 1500 }]);
  t.deepEqual(pyramidInfo.tiles?.[0]?.scaleFactors, [1, 2, 4, 8, 16]);
  for (const size of pyramidInfo.sizes) t.deepEqual((await iiif(target, pyramid, `full/${size.width},${size.height}/0/default.jpg`)).size, [size.width, size.height]);
  // Every offered scale factor serves its tiles; the next one would not be.
  t.is((await iiif(target, flat, '0,0,4096,4096/512,512/0/default.jpg')).status, 200);
  t.is((await iiif(target, flat, '0,0,8000,6000/512,384/0/default.jpg')).status, 400);

  // Deep Zoom tiles of the low levels of a slide without a pyramid would decode the whole slide: refused the same way.
  const dzTile = await viewerFetch(target, `/tiles/${flat}_files/0/0_0.jpeg`);
  t.is(dzTile.status, 400);
  t.like(await dzTile.json(), { error: { code: 'render_too_large' } });
  t.is((await viewerFetch(target, `/tiles/${pyramid}_files/0/0_0.jpeg`)).status, 200);
});

test(`IIIF: a render whose client has gone is not carried out (${testDialect})`, async (t) => {
  // One IIIF render at a time (half of two render slots), so that the second request waits behind the first.
  const { app: target, dir } = await app(t, { SLIDEBANK_TILES_RENDER_CONCURRENCY: '2' });
  const flat = await madeSlide(target, dir, { width: 8192, height: 8192, levels: 1, name: 'flat.svs' });
  t.is((await viewerFetch(target, `/iiif/${flat}/info.json`)).status, 200);
  // The first decodes all 67 million pixels of the slide and writes a 16-megapixel PNG: seconds.
  const first = viewerFetch(target, `/iiif/${flat}/full/max/0/default.png`);
  const queue = () => target.services.tiles.iiifQueue();
  for (let i = 0; i < 600 && queue().running === 0; i++) await sleep(20);
  t.is(queue().running, 1, 'the first render holds the one IIIF slot');
  const gone = new AbortController();
  const second = viewerFetch(target, `/iiif/${flat}/0,0,8192,8192/4000,/0/default.jpg`, { signal: gone.signal }).catch((error: unknown) => error);
  for (let i = 0; i < 600 && queue().waiting === 0; i++) await sleep(20);
  t.is(queue().waiting, 1, 'the second render waits behind it');
  gone.abort();
  t.is((await first).status, 200);
  t.true((await second) instanceof Error, 'the client gave up');
  for (let i = 0; i < 100 && target.services.tiles.iiifStats.abandoned === 0; i++) await sleep(100);
  t.is(target.services.tiles.iiifStats.abandoned, 1);

  // The same through the service, with the client already gone: nothing is rendered or cached.
  const stopped = new AbortController();
  stopped.abort();
  const error = await t.throwsAsync(target.services.tiles.iiifImage(flat, { region: { kind: 'pixels', x: 0, y: 0, width: 2048, height: 2048 }, size: { kind: 'max', upscale: false }, format: 'jpeg' }, stopped.signal));
  t.like(error, { status: 499, code: 'client_closed_request' });
  t.is(target.services.tiles.iiifStats.abandoned, 2);
});

/** A published slide of 1600×1200 with a pathologist and a curator, as the review tests have it. */
async function reviewed(t: ExecutionContext, env: Record<string, string> = {}) {
  const { app: target, dir } = await app(t, env);
  const slideId = await madeSlide(target, dir, { width: 1600, height: 1200, name: 'case.svs' });
  const pathologist = await signedIn(target, { level: 'L1', roles: ['pathologist'] });
  return { target, slideId, pathologist, base: `/api/slides/${slideId}/annotations` };
}

function square(x: number, y: number, size: number): [number, number][] {
  return [
    [x, y],
    [x + size, y],
    [x + size, y + size],
    [x, y + size],
  ];
}

test(`outlines: more vertices than an outline may have is a 400 that names the cap, and nothing is added (${testDialect})`, async (t) => {
  const { pathologist, base } = await reviewed(t, { SLIDEBANK_HTTP_BODY_LIMIT: '20mb' });
  // A circle: cheap for any crossing check, so only the cap can refuse it.
  const n = MAX_OUTLINE_VERTICES + 1;
  const circle = Array.from({ length: n }, (_, i): [number, number] => [800 + 500 * Math.cos((2 * Math.PI * i) / n), 600 + 500 * Math.sin((2 * Math.PI * i) / n)]);
  const refused = await pathologist.session.post<{ error: { code: string; message: string } }>(`${base}/versions`, { method: 'manual', geojson: outline(circle) });
  t.is(refused.status, 400);
  t.is(refused.body.error.code, 'invalid_annotation');
  t.regex(refused.body.error.message, new RegExp(`has ${n} vertices, more than the ${MAX_OUTLINE_VERTICES} an outline may have`));
  t.is((await pathologist.session.get<SlideReview>(`${base}/review`)).body.versions.length, 0, 'nothing was added');
  // At the cap it is taken.
  const taken = await pathologist.session.post(`${base}/versions`, { method: 'manual', geojson: outline(circle.slice(0, MAX_OUTLINE_VERTICES)) });
  t.is(taken.status, 201, JSON.stringify(taken.body).slice(0, 300));
});

test(`comparisons: a bad or too fine downsample is a 400 that says why and names the smallest that would do (${testDialect})`, async (t) => {
  const { target, pathologist, base } = await reviewed(t);
  const a = (await pathologist.session.post<SlideReview>(`${base}/versions`, { method: 'manual', geojson: outline(square(100, 100, 400)) })).body.versions[0]!.id;
  const saved = await pathologist.session.post<SlideReview>(`${base}/edits`, { geojson: outline(square(150, 100, 400)), revision: 1 });
  const b = saved.body.versions[0]!.id;
  const answer = (downsample: string) => pathologist.session.get<{ error?: { code: string; message: string; details?: { smallestDownsample: number } }; agreement?: { downsample: number } }>(`${base}/compare?a=${a}&b=${b}&downsample=${downsample}`);

  const beyond = await answer('999999999');
  t.is(beyond.status, 400);
  t.is(beyond.body.error?.code, 'invalid_downsample');
  t.regex(beyond.body.error!.message, /from 1 to 1600/);
  t.is((await answer('0')).status, 400);
  t.is((await answer('two')).status, 400);
  t.is((await answer('4')).body.agreement?.downsample, 4);
  t.is((await answer('1')).status, 200, 'a 1600×1200 slide fits the grid at full resolution');

  // A slide as large as the attacker's: full resolution is 2.4 billion cells.
  await target.database.db.knex('slides').where({ id: saved.body.slide.id }).update({ width: 60000, height: 40000 });
  const fine = await answer('1');
  t.is(fine.status, 400);
  t.is(fine.body.error?.code, 'downsample_too_fine');
  t.regex(fine.body.error!.message, /at most 16000000 cells .* use a downsample of at least 13$/);
  t.is(fine.body.error?.details?.smallestDownsample, 13);
  t.is((await answer('13')).body.agreement?.downsample, 13);
});

test(`statistics are read from the figures stored when each version was confirmed, not recomputed (${testDialect})`, async (t) => {
  const { target, slideId, pathologist, base } = await reviewed(t);
  const curator = await signedIn(target, { level: 'L1', roles: ['curator'] });
  const researcher = await signedIn(target, { level: 'L1' });
  await curator.session.post(`${base}/versions`, { method: 'ai', model: 'unet', geojson: outline(square(100, 100, 400)) });
  await pathologist.session.post(`${base}/edits`, { geojson: outline(square(100, 100, 500)), revision: 1 });
  t.is((await pathologist.session.post(`${base}/confirm`, { revision: 2 })).status, 200);

  // The version files are gone: a statistics request that compared them again would fail.
  const versions = path.join(target.config.paths.data, 'annotations', String(slideId));
  for (const file of await readdir(versions)) await rm(path.join(versions, file));
  const stats = await (researcher.session as Client).get<{ organs: { proposals: { compared: number; pending: number; meanMiou: number; byRound: { round: number; compared: number }[] } }[] }>('/api/annotations/statistics');
  t.is(stats.status, 200, JSON.stringify(stats.body));
  const proposals = stats.body.organs.find((o) => o.proposals.compared > 0)!.proposals;
  t.like(proposals, { compared: 1, pending: 0 });

  // They are the figures stored at the confirmation.
  const stored = (await target.database.db.knex('annotation_comparisons').where({ slide_id: slideId }).select('miou', 'tumour_iou', 'round')) as { miou: number; tumour_iou: number; round: number }[];
  t.is(stored.length, 1);
  t.true(Math.abs(stored[0]!.tumour_iou - (400 * 400) / (500 * 500)) < 0.01, String(stored[0]!.tumour_iou));
  t.true(Math.abs(proposals.meanMiou - stored[0]!.miou) < 1e-9);
  t.deepEqual(proposals.byRound, [{ round: 1, compared: 1, meanMiou: stored[0]!.miou }]);
});

test(`/healthz keeps answering while the most expensive request of each bounded kind runs: none holds the main thread (${testDialect})`, async (t) => {
  t.timeout(10 * 60_000);
  const { app: target, dir } = await app(t, { SLIDEBANK_HTTP_BODY_LIMIT: '20mb' });
  // 8192 × 8192 without a pyramid: exactly the default cap of source pixels for one render.
  const slideId = await madeSlide(target, dir, { width: 8192, height: 8192, levels: 1, name: 'large.svs' });
  const pathologist = await signedIn(target, { level: 'L1', roles: ['pathologist'] });
  const curator = await signedIn(target, { level: 'L1', roles: ['curator'] });
  const base = `/api/slides/${slideId}/annotations`;
  // Measured against the request's own duration in the same run, so that a loaded machine slows both alike: work held on the
  // main thread would keep a /healthz probe waiting for about as long as the request itself.
  const seen: string[] = [];
  const watch = async <T>(name: string, work: Promise<T>) => {
    const { result, slowestMs, workMs, answeredDuring } = await healthWhile(target, work);
    seen.push(`${name}: ${Math.round(workMs)} ms, ${answeredDuring} /healthz answers during it, the slowest ${Math.round(slowestMs)} ms`);
    t.true(answeredDuring >= 2, `/healthz was answered ${answeredDuring} times while ${name} ran for ${Math.round(workMs)} ms`);
    t.true(slowestMs < workMs / 2, `/healthz took ${Math.round(slowestMs)} ms while ${name} ran for ${Math.round(workMs)} ms`);
    return result;
  };

  // Outlines at the vertex cap whose every edge spans the slide: a check comparing overlapping edges pairwise takes minutes.
  // (The bodies are written before the clock starts: this process is the client too.)
  const box = { left: 100, right: 8100, top: 100, bottom: 8050 };
  const proposed = JSON.stringify({ method: 'ai', model: 'm', geojson: outline(comb(MAX_OUTLINE_VERTICES, box)) });
  const edited = JSON.stringify({ geojson: outline(comb(MAX_OUTLINE_VERTICES, { ...box, left: 600 })), revision: 1 });
  const proposal = await watch('outline', curator.session.post<SlideReview>(`${base}/versions`, proposed));
  t.is(proposal.status, 201, JSON.stringify(proposal.body).slice(0, 300));
  const edit = await watch('outline', pathologist.session.post<SlideReview>(`${base}/edits`, edited));
  t.is(edit.status, 201, JSON.stringify(edit.body).slice(0, 300));
  const [b, a] = edit.body.versions.map((v) => v.id);
  // Confirming compares the two and stores the figures.
  t.is((await watch('confirm', pathologist.session.post(`${base}/confirm`, { revision: 2 }))).status, 200);

  // The comparison at the finest grid the server allows for these outlines.
  const tooFine = await pathologist.session.get<{ error: { details: { smallestDownsample: number } } }>(`${base}/compare?a=${a}&b=${b}&downsample=1`);
  t.is(tooFine.status, 400);
  const finest = tooFine.body.error.details.smallestDownsample;
  const compared = await watch('compare', pathologist.session.get<{ agreement: { downsample: number } }>(`${base}/compare?a=${a}&b=${b}&downsample=${finest}`));
  t.is(compared.status, 200);
  t.is(compared.body.agreement.downsample, finest);

  // The largest IIIF image the cap allows: all 67 million pixels of level 0 decoded, 4096 × 4096 sent.
  const image = await watch('iiif', viewerFetch(target, `/iiif/${slideId}/full/max/0/default.jpg`).then(async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) })));
  t.is(image.status, 200);
  t.like(await sharp(image.body).metadata(), { width: 4096, height: 4096 });

  // Statistics are read from the figures stored at confirmation: nothing long to watch.
  const stats = await pathologist.session.get<{ organs: { proposals: { compared: number } }[] }>('/api/annotations/statistics');
  t.is(stats.status, 200);
  t.is(stats.body.organs.reduce((n, o) => n + o.proposals.compared, 0), 1);

  t.log(seen.join('\n'));
});
