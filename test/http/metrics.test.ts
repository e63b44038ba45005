import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../server/config/index.js';
import { packageRoot } from '../../server/package-info.js';
import { pageCacheReadUnavailable, scaledJpegStatus, scaledJpegUnavailable } from '../../server/wsi/index.js';
import { bearerHeaders, createUser } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/** The value of one sample in Prometheus text, or undefined when the series is absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[3] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) return Number(match[4]);
  }
  return undefined;
}

async function scrape(app: TestApp, headers: Record<string, string> = {}): Promise<string> {
  const answer = await fetch(app.url('/metrics'), { headers });
  if (answer.status !== 200) throw new Error(`/metrics answered ${answer.status}: ${await answer.text()}`);
  return answer.text();
}

async function generatedSlide(t: { teardown(fn: () => Promise<void>): void }, app: TestApp) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // 1000×800 with 240-pixel tiles: interior tiles of the full-resolution level pass through, edge tiles are rendered.
  const made = await makeSlide({ width: 1000, height: 800, out: dir, name: 'metrics', seed: 7 });
  return registerSlide(app.database.db, made.svs);
}

test('tile requests show up in the latency histogram by kind, and in the cache hit and miss counters', async (t) => {
  const app = await startTestApp(t);
  const slide = await generatedSlide(t, app);
  const viewer = await bearerHeaders(app);
  const before = await scrape(app);
  t.is(sample(before, 'slidebank_tile_request_duration_seconds_count', { kind: 'passthrough', status: '200' }), undefined);

  // Deep Zoom level 10 is full resolution (ceil(log2(1000))).
  const interior = await fetch(app.url(`/tiles/${slide.id}_files/10/1_1.jpeg`), { headers: viewer });
  t.is(interior.headers.get('x-tile-source'), 'stored');
  const again = await fetch(app.url(`/tiles/${slide.id}_files/10/1_1.jpeg`), { headers: viewer });
  t.is(again.status, 200);
  const edge = await fetch(app.url(`/tiles/${slide.id}_files/10/4_3.jpeg`), { headers: viewer });
  // Cut from the stored edge tile by libjpeg-turbo where the addon is built.
  const cut = scaledJpegUnavailable() ? 'rendered' : 'cropped';
  t.is(edge.headers.get('x-tile-source'), cut);
  const missing = await fetch(app.url(`/tiles/${slide.id}_files/10/99_99.jpeg`), { headers: viewer });
  t.is(missing.status, 404);

  const text = await scrape(app);
  t.is(sample(text, 'slidebank_tile_request_duration_seconds_count', { kind: 'passthrough', status: '200' }), 2);
  t.is(sample(text, 'slidebank_tile_request_duration_seconds_count', { kind: cut, status: '200' }), 1);
  t.is(sample(text, 'slidebank_tile_request_duration_seconds_count', { kind: 'error', status: '404' }), 1);
  t.true((sample(text, 'slidebank_tile_request_duration_seconds_bucket', { kind: cut, status: '200', le: '+Inf' }) ?? 0) === 1);
  t.is(sample(text, 'slidebank_tile_cache_hits_total'), 1, 'the repeated tile came from the encoded cache');
  t.is(sample(text, 'slidebank_tile_cache_misses_total'), 3);
  t.regex(text, /^# TYPE slidebank_tile_request_duration_seconds histogram$/m);
  t.regex(text, /^process_resident_memory_bytes \d+/m, 'the process metrics are there');
  t.regex(text, /^nodejs_eventloop_lag_seconds /m);

  // Counters keep counting across scrapes instead of being re-added.
  const third = await scrape(app);
  t.is(sample(third, 'slidebank_tile_cache_misses_total'), 3);
});

test('downloaded bytes are counted, and DUA applications and users are gauged from the database', async (t) => {
  const app = await startTestApp(t);
  const slide = await generatedSlide(t, app);
  const admin = await createUser(app, { level: 'L1', roles: ['admin'] });
  const researcher = await createUser(app, { level: 'L1' });
  const applicant = await createUser(app, { level: 'L1' });
  await app.services.agreements.grantAdministrativeApproval(researcher.id, { actorId: admin.id });
  await app.services.agreements.apply({ actorId: applicant.id }, { researchPurpose: 'Tumour segmentation', project: 'Liver', principalInvestigator: 'A. Researcher' });

  const empty = await scrape(app);
  t.is(sample(empty, 'slidebank_download_bytes_total', { kind: 'file', via: 'app' }), 0);
  t.is(sample(empty, 'slidebank_dua_applications', { status: 'approved' }), 1);
  t.is(sample(empty, 'slidebank_dua_applications', { status: 'submitted' }), 1);
  t.is(sample(empty, 'slidebank_users', { level: 'L2' }), 1);

  const download = await fetch(app.url(`/api/slides/${slide.id}/files/slide`), { headers: await bearerHeaders(app, { level: 'L2' }) });
  t.is(download.status, 200);
  const bytes = (await download.arrayBuffer()).byteLength;
  t.is(bytes, slide.fileSize);
  // The byte count is settled when the response has closed; the next scrape may race it by a moment.
  let text = await scrape(app);
  for (let i = 0; i < 50 && sample(text, 'slidebank_download_bytes_total', { kind: 'file', via: 'app' }) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    text = await scrape(app);
  }
  t.is(sample(text, 'slidebank_download_bytes_total', { kind: 'file', via: 'app' }), bytes);
  t.is(sample(text, 'slidebank_users', { level: 'L2' }), 2, 'the downloader made through bearerHeaders is L2 as well');
});

test('callers outside metrics.allow are refused unless they bring an administrator token', async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-metrics-data-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  await mkdir(path.join(data, 'slides'));
  const app = await startTestApp(t, { env: { SLIDEBANK_METRICS_ALLOW: '10.20.0.0/16, 2001:db8::/32', SLIDEBANK_PATHS_DATA: data } });
  const anonymous = await fetch(app.url('/metrics'));
  t.is(anonymous.status, 403);
  const body = (await anonymous.json()) as { error: { code: string } };
  t.is(body.error.code, 'operator_only');
  t.is((await fetch(app.url('/metrics'), { headers: await bearerHeaders(app, { level: 'L2' }) })).status, 403, 'a researcher may not');
  t.is((await fetch(app.url('/healthz/details'))).status, 403);

  const admin = await bearerHeaders(app, { level: 'L1', roles: ['admin'] });
  const text = await scrape(app, admin);
  t.regex(text, /^# HELP slidebank_dua_applications /m);
  const details = await fetch(app.url('/healthz/details'), { headers: admin });
  t.is(details.status, 200);
  const health = (await details.json()) as { status: string; database: { status: string }; folders: Record<string, { status: string; freeBytes: number }> };
  t.is(health.database.status, 'up');
  t.is(health.folders.slides?.status, 'ok');
  t.true((health.folders.data?.freeBytes ?? 0) > 0);
  t.is(health.folders.cache?.status, 'missing', 'the cache folder was never made');
  t.is(health.status, 'degraded');
  // Which of the tile engine's fast paths this process takes, and through which libjpeg-turbo.
  const { tiles } = health as unknown as { tiles: { scaledJpeg: { active: boolean; library?: string; source?: string; reason?: string }; pageCacheReads: { active: boolean } } };
  const scaled = scaledJpegStatus();
  t.deepEqual(tiles.scaledJpeg, JSON.parse(JSON.stringify(scaled)));
  if (scaled.active && process.platform === 'linux') t.regex(tiles.scaledJpeg.library ?? '', /\/libturbojpeg\.so/);
  t.is(tiles.pageCacheReads.active, pageCacheReadUnavailable() === undefined);
});

test('loopback may read the metrics by default; a bad metrics.allow entry stops the start with a clear message', async (t) => {
  const app = await startTestApp(t);
  t.is((await fetch(app.url('/metrics'))).status, 200);
  const error = t.throws(() => loadConfig({ configDir: path.join(packageRoot, 'config'), env: { SLIDEBANK_METRICS_ALLOW: '127.0.0.1, 10.0.0.0/40' } }));
  t.regex(error?.message ?? '', /metrics\.allow\.1.*CIDR range/);
});
