import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, readlink, rm, truncate, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { bodyParser } from '@koa/bodyparser';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import Koa, { type Middleware } from 'koa';
import { requesterFor, type Requester } from '../../server/access/levels.js';
import type { User } from '../../server/access/users.repository.js';
import { loadConfig, type Config } from '../../server/config/index.js';
import { DownloadLimits, DownloadsRepository, DownloadsService, createDownloadsService, type DownloadLimitSettings } from '../../server/downloads/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { loadVocabulary } from '../../server/catalog/vocabulary.js';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { createSlideRelease } from '../../server/catalog/slide-release.js';
import { errorHandler } from '../../server/http/middleware/error-handler.js';
import { requestContext } from '../../server/http/middleware/request-context.js';
import { downloadRoutes } from '../../server/http/routes/downloads.js';
import { mountRoutes } from '../../server/http/route.js';
import type { Services } from '../../server/services.js';
import { listen } from '../../server/http/server.js';
import { packageRoot } from '../../server/package-info.js';
import { createCatalogService } from '../../server/services.js';
import { makeSlide } from '../support/slides.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { RecordingAudit } from '../support/recording-audit.js';
import { startTestApp } from '../support/app.js';
import { bearerHeaders } from '../support/accounts.js';

/**
 * Downloads through HTTP, on slides published by the real ingest (generated
 * SVS files with their XML). The routes are mounted as the application
 * mounts them, with the guard their access declares; the accounts middleware
 * is replaced by the test's stand-ins below, except where a test runs the
 * real application.
 */

const run = promisify(execFile);
const UNZIP = '/usr/bin/unzip';

interface PublishedSlide {
  id: number;
  name: string;
  file: string;
  xml: string | null;
  sha256: string;
  bytes: Buffer;
}

interface Store {
  config: Config;
  database: TestDatabase;
  /** Liver H&E with annotation; colon IHC (KI67) with annotation; colon H&E without; one withdrawn. */
  liver: PublishedSlide;
  colonIhc: PublishedSlide;
  colonHe: PublishedSlide;
  withdrawn: PublishedSlide;
  /** A 96 MiB file registered as a published slide (zeros, sparse): larger than what loopback sockets buffer, for tests of clients that stop reading. */
  big: { id: number; name: string; file: string; size: number };
}

const cleanups: (() => Promise<void> | void)[] = [];
let store: Promise<Store> | undefined;

/** Ingest the slides once for the whole file; every test gets services of its own on top. */
function published(): Promise<Store> {
  return (store ??= (async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-downloads-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));
    const database = await createMigratedTestDatabase();
    cleanups.push(() => database.drop());
    const { config } = loadConfig({
      configDir: path.join(packageRoot, 'config'),
      env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' },
    });
    const inbox = path.join(root, 'in');
    const specs = [
      { base: 'case-liver', size: [8000, 6000], xml: true, row: { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', pathology_info: '=trabecular' } },
      { base: 'case-colon-ihc', size: [8000, 6000], xml: true, row: { organ: 'Colon', histology: 'ADC', stain: 'IHC', marker: 'KI67', differentiation: 'WD', annotation_method: 'AI-assisted', pathology_info: '' } },
      { base: 'case-colon-he', size: [2400, 1800], xml: false, row: { organ: 'Colon', histology: 'ADC', stain: 'H&E', marker: '', differentiation: 'PD', annotation_method: 'manual', pathology_info: '' } },
      { base: 'case-withdrawn', size: [2400, 1800], xml: false, row: { organ: 'Kidney', histology: 'RCC', stain: 'H&E', marker: '', differentiation: '', annotation_method: 'manual', pathology_info: '' } },
    ];
    for (const [i, spec] of specs.entries()) {
      const made = await makeSlide({ width: spec.size[0]!, height: spec.size[1]!, seed: 11 + i, out: inbox, name: spec.base, tileSize: 240 });
      if (!spec.xml) await rm(made.xml);
      await rm(made.truth);
    }
    const rows = specs.map((s) => ({ file: `${s.base}.svs`, ...s.row, dataset: 'downloads-test', collection_date: '2010', consent: '' }));
    await writeFile(path.join(inbox, 'metadata.csv'), stringify(rows, { header: true }));
    const { log } = memoryLogger('warn');
    const { results } = await createIngestService(config, database.db, log).ingestFolder(inbox, { source: 'cli' });
    const bySource = new Map(results.map((r) => [r.file, r]));
    const slide = async (base: string): Promise<PublishedSlide> => {
      const result = bySource.get(`${base}.svs`);
      if (result?.outcome !== 'published') throw new Error(`${base} was not published: ${result?.reason}`);
      const row = await database.db.knex('slides').where({ id: result.slideId }).first();
      const file = path.join(config.paths.slides, row.file_path);
      return { id: row.id, name: row.name, file, xml: row.annotation_path ? path.join(config.paths.slides, row.annotation_path) : null, sha256: row.sha256, bytes: await readFile(file) };
    };
    const result: Omit<Store, 'big'> = {
      config,
      database,
      liver: await slide('case-liver'),
      colonIhc: await slide('case-colon-ihc'),
      colonHe: await slide('case-colon-he'),
      withdrawn: await slide('case-withdrawn'),
    };
    await database.db.knex('slides').where({ id: result.withdrawn.id }).update({ status: 'withdrawn' });

    const bigFile = path.join(config.paths.slides, 'SB1-KI-RCC-HE-XX-00-00-BIGBIGBIG0.svs');
    const bigSize = 96 * 1024 * 1024;
    await writeFile(bigFile, '');
    await truncate(bigFile, bigSize);
    const big = await new SlidesRepository(database.db.knex).create({
      name: 'SB1-KI-RCC-HE-XX-00-00-BIGBIGBIG0',
      filePath: path.basename(bigFile),
      fileSize: bigSize,
      sha256: createHash('sha256').update(Buffer.alloc(bigSize)).digest('hex'),
      vendor: 'aperio',
      width: 100_000,
      height: 100_000,
      levelCount: 1,
      mppX: 0.25,
      mppY: 0.25,
      objectivePower: 40,
    });
    return { ...result, big: { id: big.id, name: big.name, file: bigFile, size: bigSize } };
  })());
}

test.after.always(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

/** The test's stand-in for the accounts middleware: `x-test-user: <id>:<level>` becomes `ctx.state.requester`. */
const standInRequester: Middleware = (ctx, next) => {
  const match = /^(\d+):(L[0-3])$/.exec(ctx.get('x-test-user'));
  if (match) {
    ctx.state.requester = { user: { id: Number(match[1]) }, level: match[2], roles: [], via: 'token' };
  }
  return next();
};

interface Harness {
  store: Store;
  audit: RecordingAudit;
  limits: DownloadLimits;
  url(pathname: string): string;
  /** Fetch as user 7 at L2 unless `user` says otherwise (`null`: nobody). */
  get(pathname: string, init?: RequestInit & { user?: string | null }): Promise<Response>;
  post(pathname: string, body: unknown, user?: string | null): Promise<Response>;
}

const DEFAULT_LIMITS: DownloadLimitSettings = { maxBundleSlides: 200, maxBundleBytes: 0, concurrentPerUser: 4, bytesPerDay: 0 };

async function harness(
  t: ExecutionContext,
  { limits: limitSettings = {}, requester = standInRequester, nginx = '' }: {
    limits?: Partial<DownloadLimitSettings>;
    requester?: Middleware;
    nginx?: string;
  } = {},
): Promise<Harness> {
  const s = await published();
  const { log } = memoryLogger('warn');
  const audit = new RecordingAudit();
  const limits = new DownloadLimits({ ...DEFAULT_LIMITS, ...limitSettings });
  const downloads = new DownloadsService({
    slides: new DownloadsRepository(s.database.db.knex),
    release: createSlideRelease(s.database.db),
    catalog: createCatalogService(s.config, s.database.db),
    vocabulary: loadVocabulary(s.config.ingest.vocabularies),
    audit,
    limits,
    slidesDir: s.config.paths.slides,
    nginxAccelRedirect: nginx,
    log,
  });
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(log));
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'] }));
  app.context.services = { downloads } as unknown as Services;
  app.use(requester);
  const router = mountRoutes(downloadRoutes, { operatorAddress: () => false });
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(() => server.close(1000).then(() => undefined));
  const headersFor = (user: string | null | undefined): Record<string, string> => (user === null ? {} : { 'x-test-user': user ?? '7:L2' });
  return {
    store: s,
    audit,
    limits,
    url: (pathname) => `${server.url}${pathname}`,
    get: (pathname, init = {}) => {
      const { user, headers, ...rest } = init;
      return fetch(`${server.url}${pathname}`, { ...rest, headers: { ...headersFor(user), ...(headers as Record<string, string>) } });
    },
    post: (pathname, body, user) =>
      fetch(`${server.url}${pathname}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headersFor(user) }, body: JSON.stringify(body) }),
  };
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const bytesOf = async (response: Response) => Buffer.from(await response.arrayBuffer());

/** Settling (and so auditing) runs when the response closes, a moment after the client has read it. */
async function eventually<T>(probe: () => T | undefined, what: string, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function errorOf(response: Response): Promise<{ code: string; message: string }> {
  return ((await response.json()) as { error: { code: string; message: string } }).error;
}

// --- single files ---------------------------------------------------------------------------------

test(`GET a slide: the published file whole, with its checksum, validators and name, audited as complete (${testDialect})`, async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const response = await h.get(`/api/slides/${liver.id}/files/slide`);
  t.is(response.status, 200);
  const body = await bytesOf(response);
  t.true(body.equals(liver.bytes));
  t.is(sha256(body), liver.sha256);
  const base64 = Buffer.from(liver.sha256, 'hex').toString('base64');
  t.like(Object.fromEntries(response.headers), {
    'accept-ranges': 'bytes',
    'content-length': String(liver.bytes.length),
    'content-type': 'application/octet-stream',
    'content-disposition': `attachment; filename="${liver.name}.svs"`,
    etag: `"sha256-${liver.sha256}"`,
    'repr-digest': `sha-256=:${base64}:`,
    digest: `SHA-256=${base64}`,
    'x-checksum-sha256': liver.sha256,
    'cache-control': 'private, no-transform',
  });
  t.truthy(Date.parse(response.headers.get('last-modified') ?? ''));
  const event = await eventually(() => h.audit.of('download.slide')[0], 'the audit event');
  t.like(event, { action: 'download.slide', actorId: 7, subjectType: 'slide', subjectId: liver.id, ip: '127.0.0.1' });
  t.like(event.details, { slideIds: [liver.id], bytes: liver.bytes.length, size: liver.bytes.length, complete: true, range: null, status: 200, via: 'app' });
  t.like(h.limits.snapshot('user:7'), { running: 0, sentToday: liver.bytes.length });
});

test('Range requests are byte-exact: a-b, a-, -n, clipped, one byte, the last byte', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const size = liver.bytes.length;
  const cases: [string, number, number][] = [
    ['bytes=0-99', 0, 99],
    ['bytes=1000-', 1000, size - 1],
    ['bytes=-4096', size - 4096, size - 1],
    ['bytes=123456-99999999999', 123456, size - 1],
    ['bytes=0-0', 0, 0],
    [`bytes=${size - 1}-${size - 1}`, size - 1, size - 1],
    ['bytes=-999999999999', 0, size - 1],
  ];
  for (const [range, start, end] of cases) {
    const response = await h.get(`/api/slides/${liver.id}/files/slide`, { headers: { Range: range } });
    t.is(response.status, 206, range);
    t.is(response.headers.get('content-range'), `bytes ${start}-${end}/${size}`, range);
    t.is(response.headers.get('content-length'), String(end - start + 1), range);
    t.is(response.headers.get('x-checksum-sha256'), liver.sha256, `${range}: the checksum is the whole file's`);
    t.true((await bytesOf(response)).equals(liver.bytes.subarray(start, end + 1)), range);
  }
  const events = await eventually(() => (h.audit.of('download.slide').length === cases.length ? h.audit.of('download.slide') : undefined), 'all audit events');
  t.deepEqual(events.map((e) => e.details!.range).sort(), cases.map(([, start, end]) => `${start}-${end}`).sort());
  t.true(events.every((e) => e.details!.complete === true && e.details!.status === 206));
});

test('HEAD: the headers of the GET and no body; a Range on HEAD is ignored (RFC 9110 §14.2); nothing is audited', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const head = await h.get(`/api/slides/${liver.id}/files/slide`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), String(liver.bytes.length));
  t.is(head.headers.get('etag'), `"sha256-${liver.sha256}"`);
  t.is((await head.arrayBuffer()).byteLength, 0);
  const ranged = await h.get(`/api/slides/${liver.id}/files/slide`, { method: 'HEAD', headers: { Range: 'bytes=0-9' } });
  t.is(ranged.status, 200);
  t.is(ranged.headers.get('content-length'), String(liver.bytes.length));
  await sleep(100);
  t.is(h.audit.events.length, 0);
});

test('If-Range: the current ETag (or Last-Modified date) resumes with 206; an old ETag gets the whole file with 200', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const url = `/api/slides/${liver.id}/files/slide`;
  const first = await h.get(url, { method: 'HEAD' });
  const etag = first.headers.get('etag')!;
  const lastModified = first.headers.get('last-modified')!;

  const match = await h.get(url, { headers: { Range: 'bytes=500-', 'If-Range': etag } });
  t.is(match.status, 206);
  t.true((await bytesOf(match)).equals(liver.bytes.subarray(500)));

  const byDate = await h.get(url, { headers: { Range: 'bytes=500-', 'If-Range': lastModified } });
  t.is(byDate.status, 206);
  await byDate.arrayBuffer();

  const stale = await h.get(url, { headers: { Range: 'bytes=500-', 'If-Range': '"sha256-0000"' } });
  t.is(stale.status, 200);
  t.is(stale.headers.get('content-range'), null);
  t.true((await bytesOf(stale)).equals(liver.bytes));

  const weak = await h.get(url, { headers: { Range: 'bytes=500-', 'If-Range': `W/${etag}` } });
  t.is(weak.status, 200, 'a weak validator never matches');
  await weak.arrayBuffer();
});

test('416 for a range past the end or a malformed one, with Content-Range: bytes */size; several ranges get the whole file', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const url = `/api/slides/${liver.id}/files/slide`;
  const size = liver.bytes.length;
  for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0', 'bytes=500-100', 'bytes=abc', 'bytes=']) {
    const response = await h.get(url, { headers: { Range: range } });
    t.is(response.status, 416, range);
    t.is(response.headers.get('content-range'), `bytes */${size}`, range);
    const error = await errorOf(response);
    t.is(error.code, 'range_not_satisfiable', range);
  }
  const several = await h.get(url, { headers: { Range: 'bytes=0-9,20-29' } });
  t.is(several.status, 200);
  t.true((await bytesOf(several)).equals(liver.bytes));
  const otherUnit = await h.get(url, { headers: { Range: 'pages=1-2' } });
  t.is(otherUnit.status, 200);
  await otherUnit.arrayBuffer();
  await sleep(100);
  t.is(h.audit.of('download.slide').length, 2, '416s are not deliveries');
});

test('annotations: the scrubbed XML with its computed checksum; ranges work there too', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  const xml = await readFile(liver.xml!);
  const response = await h.get(`/api/slides/${liver.id}/files/annotation`);
  t.is(response.status, 200);
  t.true((await bytesOf(response)).equals(xml));
  t.is(response.headers.get('content-type'), 'application/xml');
  t.is(response.headers.get('content-disposition'), `attachment; filename="${liver.name}.xml"`);
  t.is(response.headers.get('x-checksum-sha256'), sha256(xml));
  t.is(response.headers.get('etag'), `"sha256-${sha256(xml)}"`);
  const tail = await h.get(`/api/slides/${liver.id}/files/annotation`, { headers: { Range: 'bytes=-20' } });
  t.is(tail.status, 206);
  t.true((await bytesOf(tail)).equals(xml.subarray(xml.length - 20)));
  const event = await eventually(() => h.audit.of('download.annotation')[0], 'the audit event');
  t.like(event.details, { file: `annotations/${liver.name}.xml`, complete: true });
});

test('404: unknown, withdrawn, a slide without annotation, and ids that are not ids', async (t) => {
  const h = await harness(t);
  const { withdrawn, colonHe } = h.store;
  const cases: [string, string][] = [
    ['/api/slides/999999/files/slide', 'slide_not_found'],
    [`/api/slides/${withdrawn.id}/files/slide`, 'slide_not_found'],
    [`/api/slides/${withdrawn.id}/files/annotation`, 'slide_not_found'],
    [`/api/slides/${colonHe.id}/files/annotation`, 'annotation_not_found'],
    ['/api/slides/abc/files/slide', 'slide_not_found'],
    ['/api/slides/0/files/slide', 'slide_not_found'],
  ];
  for (const [url, code] of cases) {
    const response = await h.get(url);
    t.is(response.status, 404, url);
    t.is((await errorOf(response)).code, code, url);
  }
  t.is((await h.get(`/api/slides/${colonHe.id}/files/thumbnail`)).status, 404);
});

test('a published slide whose file is missing or not what the catalog says: 500 with a clear code, before any byte is sent; an empty one is sent empty', async (t) => {
  const h = await harness(t);
  const { config, database } = h.store;
  const register = async (name: string, fileSize: number) =>
    new SlidesRepository(database.db.knex).create({
      name,
      filePath: `${name}.svs`,
      fileSize,
      sha256: 'ab'.repeat(32),
      vendor: 'aperio',
      width: 10,
      height: 10,
      levelCount: 1,
      mppX: null,
      mppY: null,
      objectivePower: null,
    });
  const missing = await register('SB1-PR-ADC-HE-XX-00-00-MISSING000', 10);
  const changed = await register('SB1-PR-ADC-HE-XX-00-00-CHANGED000', 10);
  await writeFile(path.join(config.paths.slides, 'SB1-PR-ADC-HE-XX-00-00-CHANGED000.svs'), Buffer.alloc(11));
  t.teardown(() => database.db.knex('slides').whereIn('id', [missing.id, changed.id]).delete());

  for (const [id, code] of [
    [missing.id, 'file_missing'],
    [changed.id, 'slide_file_mismatch'],
  ] as const) {
    const single = await h.get(`/api/slides/${id}/files/slide`);
    t.is(single.status, 500);
    t.is(single.headers.get('etag'), null);
    t.like(await errorOf(single), { code });
    const bundle = await h.post('/api/downloads', { slides: [h.store.colonHe.id, id] });
    t.is(bundle.status, 500);
    t.like(await errorOf(bundle), { code });
  }
  t.is(h.audit.events.length, 0);
  t.like(h.limits.snapshot('user:7'), { running: 0, reserved: 0 });

  const empty = await register('SB1-PR-ADC-HE-XX-00-00-EMPTY00000', 0);
  await writeFile(path.join(config.paths.slides, 'SB1-PR-ADC-HE-XX-00-00-EMPTY00000.svs'), '');
  t.teardown(() => database.db.knex('slides').where({ id: empty.id }).delete());
  const whole = await h.get(`/api/slides/${empty.id}/files/slide`);
  t.is(whole.status, 200, 'an empty file is sent as what it is');
  t.is(whole.headers.get('content-length'), '0');
  t.is((await whole.arrayBuffer()).byteLength, 0);
  t.is((await h.get(`/api/slides/${empty.id}/files/slide`, { headers: { Range: 'bytes=0-' } })).status, 416);
});

test('the guard comes first: nobody gets 401, an L1 user 403, before any slide is looked at', async (t) => {
  const h = await harness(t);
  const { liver } = h.store;
  for (const url of [`/api/slides/${liver.id}/files/slide`, '/api/slides/999999/files/slide', '/api/downloads/manifest?slides=1']) {
    t.is((await h.get(url, { user: null })).status, 401, url);
    t.is((await h.get(url, { user: '8:L1' })).status, 403, url);
  }
  t.is((await h.post('/api/downloads', { slides: [liver.id] }, null)).status, 401);
  t.is((await h.post('/api/downloads', { slides: [liver.id] }, '8:L1')).status, 403);
  t.is(h.audit.events.length, 0);
});

test(`the real application: anonymous 401, L1, an expired DUA and staff 403; L2 and L3 download with a token, audited under their id (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-downloads-app-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data, SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' } });
  const inbox = path.join(data, 'in');
  await makeSlide({ width: 2400, height: 1800, seed: 31, out: inbox, name: 'case-app', tileSize: 240 });
  await rm(path.join(inbox, 'case-app.truth.json'));
  const fallback = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'app' };
  const [published] = (await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback })).results;
  t.is(published?.outcome, 'published', published?.reason ?? '');
  const id = published!.slideId!;
  const file = `/api/slides/${id}/files/slide`;
  const day = 86_400_000;

  for (const url of [file, `/api/slides/${id}/files/annotation`, `/api/downloads/manifest?slides=${id}`]) {
    t.is((await fetch(app.url(url))).status, 401, url);
    t.is((await fetch(app.url(url), { headers: { 'x-test-user': '7:L3' } })).status, 401, `${url}: the test's stand-in header means nothing to the real application`);
  }
  const refused: [string, Parameters<typeof bearerHeaders>[1]][] = [
    ['L1', { level: 'L1' }],
    ['an L2 whose DUA expired', { level: 'L2', levelExpiresAt: new Date(Date.now() - day) }],
    ['an administrator without a level', { level: 'L1', roles: ['admin'] }],
  ];
  for (const [who, spec] of refused) {
    const headers = await bearerHeaders(app, spec);
    const response = await fetch(app.url(file), { headers });
    t.is(response.status, 403, who);
    t.like(await errorOf(response), { code: 'level_required' }, who);
    t.is((await fetch(app.url('/api/downloads'), { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ slides: [id] }) })).status, 403, who);
  }

  const l2 = await bearerHeaders(app, { level: 'L2', levelExpiresAt: new Date(Date.now() + 365 * day) });
  const got = await fetch(app.url(file), { headers: { ...l2, Range: 'bytes=0-99' } });
  t.is(got.status, 206);
  t.is((await bytesOf(got)).length, 100);
  const l3 = await bearerHeaders(app, { level: 'L3' });
  const bundle = await fetch(app.url('/api/downloads'), { method: 'POST', headers: { ...l3, 'content-type': 'application/json' }, body: JSON.stringify({ slides: [id] }) });
  t.is(bundle.status, 200);
  await saveZip(t, bundle);
  const manifest = await fetch(app.url(`/api/downloads/manifest?slides=${id}`), { headers: l2 });
  t.is(manifest.status, 200);
  t.is(((await manifest.json()) as ManifestJson).files.length, 2);

  const slideEvent = await eventually(() => app.audit.of('download.slide')[0], 'the file download in the audit log');
  const bundleEvent = await eventually(() => app.audit.of('download.bundle')[0], 'the bundle in the audit log');
  t.like(slideEvent.details, { range: '0-99', bytes: 100, complete: true });
  t.not(slideEvent.actorId, bundleEvent.actorId, 'each is recorded under its own user');
  t.true(typeof slideEvent.actorId === 'number' && typeof bundleEvent.actorId === 'number');
});

/** A user record as the accounts repository returns it. */
function user(id: number, fields: Partial<User>): User {
  const now = new Date();
  return {
    id,
    email: `u${id}@hospital.example`,
    name: `User ${id}`,
    institution: 'Test',
    level: 'L1',
    levelExpiresAt: null,
    roles: [],
    emailConfirmedAt: now,
    disabledAt: null,
    lastLoginAt: null,
    createdAt: now,
    ...fields,
  };
}

test('the routes\' declared access (L2): L2 and L3 download; L1, an expired DUA and staff without a level are refused', async (t) => {
  const now = new Date();
  const yesterday = new Date(now.getTime() - 86_400_000);
  const nextYear = new Date(now.getTime() + 365 * 86_400_000);
  const users: Record<string, User> = {
    '1': user(1, { level: 'L1' }),
    '2': user(2, { level: 'L2', levelExpiresAt: yesterday }),
    '3': user(3, { level: 'L1', roles: ['admin', 'curator'] }),
    '4': user(4, { level: 'L2', levelExpiresAt: nextYear }),
    '5': user(5, { level: 'L3' }),
    '6': user(6, { level: 'L2', emailConfirmedAt: null }),
  };
  /** The test's stand-in for the accounts middleware, resolving `x-test-account` with the real level rules. */
  const accounts: Middleware = (ctx, next) => {
    const found = users[ctx.get('x-test-account')];
    if (found) ctx.state.requester = requesterFor(found, 'token', new Date()) satisfies Requester;
    return next();
  };
  const h = await harness(t, { requester: accounts });
  const { liver } = h.store;
  const as = (id: string) => h.get(`/api/slides/${liver.id}/files/slide`, { user: null, method: 'HEAD', headers: { 'x-test-account': id } });
  t.is((await as('1')).status, 403, 'L1');
  t.is((await as('2')).status, 403, 'an L2 whose DUA expired yesterday counts as L1');
  t.is((await as('3')).status, 403, 'staff roles do not stand in for L2');
  t.is((await as('6')).status, 403, 'an unconfirmed address is L0');
  t.is((await as('4')).status, 200, 'L2 with a valid DUA');
  t.is((await as('5')).status, 200, 'L3');
  t.is((await as('none')).status, 401, 'nobody');
  const refused = await h.get(`/api/slides/${liver.id}/files/slide`, { user: null, headers: { 'x-test-account': '2' } });
  t.like(await errorOf(refused), { code: 'level_required' });
  const got = await h.get(`/api/slides/${liver.id}/files/slide`, { user: null, headers: { 'x-test-account': '4' } });
  t.is(sha256(await bytesOf(got)), liver.sha256);
  const event = await eventually(() => h.audit.of('download.slide')[0], 'the audit event');
  t.is(event.actorId, 4, 'the audit names the user the accounts middleware resolved');
});

test('nginx offload: access is checked here, the bytes are nginx\'s (X-Accel-Redirect and the headers, no body)', async (t) => {
  const h = await harness(t, { nginx: '/protected-slides/' });
  const { liver } = h.store;
  const response = await h.get(`/api/slides/${liver.id}/files/slide`, { headers: { Range: 'bytes=0-9' } });
  t.is(response.status, 200);
  t.is(response.headers.get('x-accel-redirect'), `/protected-slides/${path.basename(liver.file)}`);
  t.is(response.headers.get('content-disposition'), `attachment; filename="${liver.name}.svs"`);
  t.is(response.headers.get('x-checksum-sha256'), liver.sha256);
  t.is((await response.arrayBuffer()).byteLength, 0);
  const annotation = await h.get(`/api/slides/${liver.id}/files/annotation`);
  t.is(annotation.headers.get('x-accel-redirect'), `/protected-slides/${path.basename(liver.xml!)}`);
  await annotation.arrayBuffer();
  t.is((await h.get(`/api/slides/${liver.id}/files/slide`, { user: '8:L1' })).status, 403, 'refused requests are not redirected');
  const event = await eventually(() => h.audit.of('download.slide')[0], 'the audit event');
  t.like(event.details, { via: 'nginx', range: '0-9', bytes: 10, complete: null });
});

test('the configuration keys reach the service (downloads.nginxAccelRedirect from the environment)', async (t) => {
  const s = await published();
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: s.database.url, SLIDEBANK_PATHS_DATA: path.dirname(s.config.paths.slides), SLIDEBANK_DOWNLOADS_NGINX_ACCEL_REDIRECT: '/internal/slides/', SLIDEBANK_DOWNLOADS_CONCURRENT_PER_USER: '1' },
  });
  t.like(config.downloads, { nginxAccelRedirect: '/internal/slides/', concurrentPerUser: 1, maxBundleSlides: 200, bytesPerDay: 0 });
  const audit = new RecordingAudit();
  const service = createDownloadsService(config, s.database.db, memoryLogger('warn').log, { catalog: createCatalogService(config, s.database.db), audit });
  const answer = await service.file({ actorId: 1, ip: null }, s.liver.id, 'slide', { method: 'GET' });
  t.like(answer, { kind: 'offload', uri: `/internal/slides/${path.basename(s.liver.file)}` });
  t.throws(() => loadConfig({ configDir: path.join(packageRoot, 'config'), env: { DATABASE_URL: s.database.url, SLIDEBANK_DOWNLOADS_NGINX_ACCEL_REDIRECT: 'protected' } }), {
    message: /downloads\.nginxAccelRedirect.*must be empty or an internal location prefix/,
  });
});

// Serial (ava runs these before the concurrent tests): they count the open files under the slide store, which other tests' downloads would add to.
test.serial('a client that goes away mid-file: the file is closed and the audit says how much was sent, not complete', async (t) => {
  const h = await harness(t);
  const { big } = h.store;
  const dir = path.dirname(big.file);
  const before = await openUnder(dir);
  const received = await new Promise<number>((resolve, reject) => {
    const request = http.get(h.url(`/api/slides/${big.id}/files/slide`), { headers: { 'x-test-user': '7:L2' } }, (response) => {
      let got = 0;
      response.once('data', (chunk: Buffer) => {
        got += chunk.length;
        response.pause();
        setTimeout(() => {
          request.destroy();
          resolve(got);
        }, 200);
      });
    });
    request.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
  });
  const event = await eventually(() => h.audit.of('download.slide')[0], 'the audit event');
  t.is(event.details!.complete, false);
  t.true((event.details!.bytes as number) >= received && (event.details!.bytes as number) < big.size, `sent ${event.details!.bytes}`);
  t.deepEqual(await settledOpen(dir, before), before, 'no file handle is left open');
  t.like(h.limits.snapshot('user:7'), { running: 0 });
});

// --- bundles --------------------------------------------------------------------------------------

/** A response's body saved as a file, for unzip. */
async function saveZip(t: ExecutionContext, response: Response): Promise<{ zip: string; dir: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bundle-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const zip = path.join(dir, 'bundle.zip');
  await writeFile(zip, await bytesOf(response));
  return { zip, dir };
}

test(`POST /api/downloads with slide ids: a ZIP that unzip -t accepts, whose files match the store and the manifest (${testDialect})`, async (t) => {
  const h = await harness(t);
  const { liver, colonIhc, colonHe } = h.store;
  const response = await h.post('/api/downloads', { slides: [colonHe.id, liver.id, colonIhc.id, liver.id] });
  t.is(response.status, 200, await response.clone().text().then((text) => text.slice(0, 200)));
  t.is(response.headers.get('content-type'), 'application/zip');
  t.regex(response.headers.get('content-disposition') ?? '', /^attachment; filename="slidebank-\d{8}-\d{6}-3-slides\.zip"$/);
  const { zip, dir } = await saveZip(t, response);

  const tested = await run(UNZIP, ['-t', zip]);
  t.regex(tested.stdout, /No errors detected/);
  const names = (await run(UNZIP, ['-Z1', zip])).stdout.trim().split('\n');
  t.deepEqual(names.slice(0, 4), ['README.txt', 'metadata.csv', 'metadata.json', 'manifest-sha256.txt']);
  t.deepEqual(names.slice(4).sort(), [
    `annotations/${colonIhc.name}.xml`,
    `annotations/${liver.name}.xml`,
    `slides/${colonHe.name}.svs`,
    `slides/${colonIhc.name}.svs`,
    `slides/${liver.name}.svs`,
  ].sort());
  t.notRegex((await run(UNZIP, ['-v', zip])).stdout, /Defl/, 'STORE only');

  const out = path.join(dir, 'x');
  await run(UNZIP, ['-q', zip, '-d', out]);
  // The manifest's checksums, checked the way the README tells researchers to.
  const checked = await run('sha256sum', ['-c', 'manifest-sha256.txt'], { cwd: out });
  t.is(checked.stdout.trim().split('\n').length, 8, 'README, metadata.csv, metadata.json and five slide and annotation files');
  t.true(checked.stdout.trim().split('\n').every((line) => line.endsWith(': OK')));
  const manifest = await readFile(path.join(out, 'manifest-sha256.txt'), 'utf8');
  t.true(manifest.includes(`${liver.sha256}  slides/${liver.name}.svs\n`), 'slide checksums are the catalog\'s');
  for (const slide of [liver, colonIhc, colonHe]) {
    t.true((await readFile(path.join(out, 'slides', `${slide.name}.svs`))).equals(slide.bytes));
  }
  t.true((await readFile(path.join(out, 'annotations', `${liver.name}.xml`))).equals(await readFile(liver.xml!)));

  const json = JSON.parse(await readFile(path.join(out, 'metadata.json'), 'utf8'));
  t.is(json.slides.length, 3);
  const liverRecord = json.slides.find((s: { id: number }) => s.id === liver.id);
  t.like(liverRecord, {
    name: liver.name,
    organ: { code: 'LV', name: 'Liver' },
    histology: { code: 'HCC' },
    stain: { code: 'HE', name: 'H&E' },
    differentiation: { code: 'MD' },
    annotationMethod: { code: 'M', name: 'manual' },
    pathologyInfo: '=trabecular',
    width: 8000,
    height: 6000,
    slideFile: { path: `slides/${liver.name}.svs`, size: liver.bytes.length, sha256: liver.sha256 },
  });
  t.is(typeof liverRecord.mpp.x, 'number');
  t.is(json.licence.id, 'CC-BY-NC-4.0');
  t.like(json.slides.find((s: { id: number }) => s.id === colonIhc.id), { stain: { code: 'IHC' }, marker: { code: 'KI67' } });
  t.is(json.slides.find((s: { id: number }) => s.id === colonHe.id).annotationFile, null);

  const csv = await readFile(path.join(out, 'metadata.csv'), 'utf8');
  t.regex(csv.split('\n')[0]!, /^id,name,organ,organ_name,histology,histology_name,stain,stain_name,marker/);
  t.true(csv.includes(`,LV,Liver,HCC,`));
  t.true(csv.includes(`'=trabecular`), 'a formula-like cell is defused for spreadsheets');

  const readme = await readFile(path.join(out, 'README.txt'), 'utf8');
  t.regex(readme, /CC BY-NC 4\.0/);
  t.regex(readme, /https:\/\/creativecommons\.org\/licenses\/by-nc\/4\.0\//);
  t.regex(readme, /data use agreement of Slidebank user #7/);
  t.regex(readme, /sha256sum -c manifest-sha256\.txt/);
  t.regex(readme, new RegExp(`slide ids ${[liver.id, colonIhc.id, colonHe.id].sort((a, b) => a - b).join(', ')}|slide ids ${colonHe.id}, ${liver.id}, ${colonIhc.id}`));

  const event = await eventually(() => h.audit.of('download.bundle')[0], 'the audit event');
  t.like(event, { actorId: 7, subjectType: 'bundle' });
  t.like(event.details, { slides: 3, files: 5, complete: true, entries: 9, totalEntries: 9, bytes: (await readFile(zip)).length });
  t.deepEqual((event.details!.slideIds as number[]).sort(), [liver.id, colonIhc.id, colonHe.id].sort());
});

test('POST /api/downloads with a filter: the slides the catalog shows for it (colon, IHC or not)', async (t) => {
  const h = await harness(t);
  const { colonIhc, colonHe } = h.store;
  const response = await h.post('/api/downloads', { filter: 'organ=co' });
  t.is(response.status, 200);
  const { zip } = await saveZip(t, response);
  t.regex((await run(UNZIP, ['-t', zip])).stdout, /No errors detected/);
  const names = (await run(UNZIP, ['-Z1', zip])).stdout.trim().split('\n');
  t.deepEqual(names.filter((n) => n.startsWith('slides/')).sort(), [`slides/${colonHe.name}.svs`, `slides/${colonIhc.name}.svs`].sort());
  t.deepEqual(names.filter((n) => n.startsWith('annotations/')), [`annotations/${colonIhc.name}.xml`]);
  const readme = (await run(UNZIP, ['-p', zip, 'README.txt'])).stdout;
  t.regex(readme, /catalog filter "organ=co"/, 'the selection as it was asked for');

  const ihc = await h.post('/api/downloads', { filter: 'organ=CO;stain=IHC;q=ki67' });
  const ihcZip = await saveZip(t, ihc);
  t.deepEqual((await run(UNZIP, ['-Z1', ihcZip.zip])).stdout.trim().split('\n').filter((n) => n.startsWith('slides/')), [`slides/${colonIhc.name}.svs`]);
  const event = await eventually(() => h.audit.of('download.bundle').find((e) => (e.details!.selection as { filter?: string }).filter === 'organ=CO;stain=IHC;q=ki67'), 'the audit event');
  t.deepEqual(event.details!.slideIds, [colonIhc.id]);
});

test('bad selections: empty, unknown, withdrawn, malformed', async (t) => {
  const h = await harness(t);
  const { liver, withdrawn } = h.store;
  const cases: [unknown, number, string, RegExp][] = [
    [{ slides: [] }, 400, 'empty_selection', /No published slide matches/],
    [{ filter: 'organ=PR' }, 400, 'empty_selection', /No published slide matches/],
    [{ filter: 'organ=KI' }, 400, 'empty_selection', /No published slide matches/],
    [{ slides: [liver.id, 999999] }, 404, 'slide_not_found', /999999/],
    [{ slides: [withdrawn.id] }, 404, 'slide_not_found', new RegExp(String(withdrawn.id))],
    [{ slides: ['1'] }, 400, 'invalid_request', /slides must hold slide ids/],
    [{ slides: [1.5] }, 400, 'invalid_request', /slides must hold slide ids/],
    [{ slides: [2 ** 31] }, 400, 'invalid_request', /slides must hold slide ids/],
    [{ slides: 3 }, 400, 'invalid_request', /slides must be a list of slide ids/],
    [{ slides: [liver.id], filter: 'organ=LV' }, 400, 'invalid_request', /Give either slides or filter, not both/],
    [{ ids: [liver.id] }, 400, 'invalid_request', /ids is not a field here/],
    [{}, 400, 'invalid_request', /Nothing was selected/],
    [[liver.id], 400, 'invalid_request', /The request body must be a JSON object/],
    [{ filter: 7 }, 400, 'invalid_request', /filter must be a filter expression string/],
    [{ filter: 'organ' }, 400, 'invalid_request', /"organ" is not key=value/],
    [{ filter: 'colour=red' }, 400, 'invalid_request', /"colour" is not a filter key/],
    [{ filter: `q=${'x'.repeat(4000)}` }, 400, 'invalid_request', /at most 4000 are allowed/],
    [{ filter: 'q=a b c d e f g h i j k' }, 400, 'invalid_request', /q has 11 words; at most 10/],
  ];
  for (const [body, status, code, message] of cases) {
    const what = JSON.stringify(body).slice(0, 100);
    const response = await h.post('/api/downloads', body);
    t.is(response.status, status, what);
    const error = await errorOf(response);
    t.is(error.code, code, what);
    t.regex(error.message, message, what);
  }
  const notJson = await fetch(h.url('/api/downloads'), { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-user': '7:L2' }, body: '{"slides": [' });
  t.is(notJson.status, 400);
  const missing = (await errorOf(await h.post('/api/downloads', { slides: [liver.id, 999999] }))).message;
  t.regex(missing, /999999/);
  t.is(h.audit.events.length, 0);
  t.like(h.limits.snapshot('user:7'), { running: 0, reserved: 0 });
});

test('limits: 413 past maxBundleSlides or maxBundleBytes', async (t) => {
  const h = await harness(t, { limits: { maxBundleSlides: 2, maxBundleBytes: 1_000_000 } });
  const { liver, colonIhc, colonHe } = h.store;
  const tooMany = await h.post('/api/downloads', { slides: [liver.id, colonIhc.id, colonHe.id] });
  t.is(tooMany.status, 413);
  t.like(await errorOf(tooMany), { code: 'bundle_too_large' });
  const tooManyByFilter = await h.post('/api/downloads', { filter: 'dataset=downloads-test' });
  t.is(tooManyByFilter.status, 413);
  const tooBig = await h.post('/api/downloads', { slides: [liver.id, colonIhc.id] });
  t.is(tooBig.status, 413);
  t.regex((await errorOf(tooBig)).message, /at most 976\.6 KiB/);
  const fits = await h.post('/api/downloads', { slides: [colonHe.id] });
  t.is(fits.status, 200);
  await fits.arrayBuffer();
});

test('limits: 429 with Retry-After past concurrentPerUser, counted per user, free again once a download ends', async (t) => {
  const h = await harness(t, { limits: { concurrentPerUser: 1 } });
  const { liver, big } = h.store;
  // The first download stays open: its client reads one chunk and stops.
  const first = await h.get(`/api/slides/${big.id}/files/slide`);
  t.is(first.status, 200);
  const reader = first.body!.getReader();
  await reader.read();

  const second = await h.get(`/api/slides/${liver.id}/files/slide`);
  t.is(second.status, 429);
  t.is(second.headers.get('retry-after'), '30');
  t.like(await errorOf(second), { code: 'too_many_downloads' });
  const bundle = await h.post('/api/downloads', { slides: [liver.id] });
  t.is(bundle.status, 429, 'bundles count too');
  await bundle.arrayBuffer();
  const someoneElse = await h.get(`/api/slides/${liver.id}/files/slide`, { user: '8:L2' });
  t.is(someoneElse.status, 200, 'another user is not affected');
  await someoneElse.arrayBuffer();
  t.is((await h.get(`/api/slides/${liver.id}/files/slide`, { method: 'HEAD' })).status, 200, 'HEAD sends nothing and is not limited');

  await reader.cancel();
  await eventually(() => (h.limits.snapshot('user:7').running === 0 ? true : undefined), 'the slot to be freed');
  const third = await h.get(`/api/slides/${liver.id}/files/slide`);
  t.is(third.status, 200);
  await third.arrayBuffer();
});

test('limits: bytesPerDay answers 429 with Retry-After until midnight UTC, and 413 for one download larger than the allowance', async (t) => {
  const { liver, colonHe } = await published();
  const allowance = liver.bytes.length + colonHe.bytes.length / 2;
  const h = await harness(t, { limits: { bytesPerDay: allowance } });
  const first = await h.get(`/api/slides/${liver.id}/files/slide`);
  t.is(first.status, 200);
  await first.arrayBuffer();
  await eventually(() => (h.limits.snapshot('user:7').sentToday === liver.bytes.length ? true : undefined), 'the bytes to be charged');

  const second = await h.get(`/api/slides/${colonHe.id}/files/slide`);
  t.is(second.status, 429);
  const retryAfter = Number(second.headers.get('retry-after'));
  const now = new Date();
  const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  t.true(Math.abs(retryAfter - (midnight - now.getTime()) / 1000) < 5, `Retry-After ${retryAfter}`);
  t.like(await errorOf(second), { code: 'daily_allowance_used' });

  const part = await h.get(`/api/slides/${colonHe.id}/files/slide`, { headers: { Range: 'bytes=0-999' } });
  t.is(part.status, 206, 'a range that still fits is allowed');
  await part.arrayBuffer();

  const other = await harness(t, { limits: { bytesPerDay: 1000 } });
  const tooBig = await other.get(`/api/slides/${liver.id}/files/slide`);
  t.is(tooBig.status, 413);
  t.like(await errorOf(tooBig), { code: 'exceeds_daily_allowance' });
});

test.serial('a client that goes away mid-archive: every file is closed, the audit says partial with the bytes sent, the slot is freed', async (t) => {
  const h = await harness(t, { limits: { concurrentPerUser: 1 } });
  const { liver, big, colonHe } = h.store;
  const dir = path.dirname(liver.file);
  const before = await openUnder(dir);
  const received = await new Promise<number>((resolve, reject) => {
    const request = http.request(
      h.url('/api/downloads'),
      { method: 'POST', headers: { 'content-type': 'application/json', 'x-test-user': '7:L2' } },
      (response) => {
        let got = 0;
        response.on('data', (chunk: Buffer) => {
          got += chunk.length;
          // Past the small files and into the first slide, then stop reading and hang up.
          if (got > 256 * 1024 && !response.isPaused()) {
            response.pause();
            setTimeout(() => {
              request.destroy();
              resolve(got);
            }, 200);
          }
        });
      },
    );
    request.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
    request.end(JSON.stringify({ slides: [liver.id, big.id, colonHe.id] }));
  });
  const event = await eventually(() => h.audit.of('download.bundle')[0], 'the audit event');
  t.is(event.details!.complete, false);
  const sent = event.details!.bytes as number;
  const total = liver.bytes.length + big.size + colonHe.bytes.length;
  t.true(sent >= received && sent < total, `sent ${sent} of at least ${total}; the client read ${received}`);
  t.true((event.details!.entries as number) < (event.details!.totalEntries as number));
  t.deepEqual(await settledOpen(dir, before), before, 'no slide or annotation file is left open');
  t.like(h.limits.snapshot('user:7'), { running: 0, reserved: 0 });
  const again = await h.post('/api/downloads', { slides: [colonHe.id] });
  t.is(again.status, 200, 'the slot is free again');
  await again.arrayBuffer();
});

// --- manifests ------------------------------------------------------------------------------------

interface ManifestJson {
  format: string;
  selection: unknown;
  slides: number;
  totalBytes: number;
  files: { slideId: number; slide: string; kind: string; path: string; href: string; url: string; size: number; sha256: string }[];
}

test('GET /api/downloads/manifest: every file with its URL, size and SHA-256; the URLs deliver exactly those bytes', async (t) => {
  const h = await harness(t);
  const { liver, colonIhc, colonHe } = h.store;
  const response = await h.get(`/api/downloads/manifest?slides=${liver.id},${colonHe.id}`);
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'private, no-store');
  const manifest = (await response.json()) as ManifestJson;
  t.like(manifest, { format: 'slidebank-manifest', selection: { slides: [liver.id, colonHe.id] }, slides: 2 });
  t.deepEqual(manifest.files.map((f) => f.path).sort(), [`annotations/${liver.name}.xml`, `slides/${colonHe.name}.svs`, `slides/${liver.name}.svs`].sort());
  t.is(manifest.totalBytes, manifest.files.reduce((sum, f) => sum + f.size, 0));
  for (const file of manifest.files) {
    t.is(file.url, h.url(file.href));
    const got = await bytesOf(await h.get(file.href));
    t.is(got.length, file.size, file.path);
    t.is(sha256(got), file.sha256, file.path);
  }

  const byFilter = (await (await h.get(`/api/downloads/manifest?filter=${encodeURIComponent('organ=CO;stain=IHC')}`)).json()) as ManifestJson;
  t.deepEqual(byFilter.selection, { filter: 'organ=CO;stain=IHC' });
  t.deepEqual(byFilter.files.map((f) => f.slideId), [colonIhc.id, colonIhc.id]);
  const byParameters = (await (await h.get('/api/downloads/manifest?organ=CO&stain=IHC')).json()) as ManifestJson;
  t.deepEqual(byParameters.files, byFilter.files, 'the catalog\'s query parameters select the same');
  const repeated = (await (await h.get('/api/downloads/manifest?organ=CO&organ=lv&stain=IHC,HE')).json()) as ManifestJson;
  t.deepEqual(repeated.selection, { filter: 'organ=CO,lv;stain=IHC,HE' }, 'repeated and comma-separated, as the search takes them');
  t.deepEqual([...new Set(repeated.files.map((f) => f.slideId))].sort(), [liver.id, colonIhc.id, colonHe.id].sort());
  const byIds = (await (await h.get(`/api/downloads/manifest?slides=${colonHe.id},%20${liver.id},${colonHe.id}`)).json()) as ManifestJson;
  t.deepEqual(byIds.selection, { slides: [colonHe.id, liver.id] }, 'each id once, in the order given');

  const tsv = await h.get(`/api/downloads/manifest?slides=${liver.id}&format=tsv`);
  t.regex(tsv.headers.get('content-type') ?? '', /^text\/tab-separated-values/);
  const lines = (await tsv.text()).trim().split('\n');
  t.is(lines[0], 'url\tsize\tsha256\tpath\tslide_id\tkind\tslide');
  t.is(lines[1], [h.url(`/api/slides/${liver.id}/files/slide`), liver.bytes.length, liver.sha256, `slides/${liver.name}.svs`, liver.id, 'slide', liver.name].join('\t'));
  t.is(lines.length, 3);
});

test('manifest errors: nothing selected, two forms, unknown parameters, bad ids, empty, withdrawn', async (t) => {
  const h = await harness(t);
  const { withdrawn } = h.store;
  const cases: [string, number, string, RegExp][] = [
    ['', 400, 'invalid_query', /Nothing was selected/],
    ['?format=tsv', 400, 'invalid_query', /Nothing was selected/],
    ['?slides=1&filter=organ=LV', 400, 'invalid_query', /Give one of slides, filter or the search parameters/],
    ['?slides=1&organ=LV', 400, 'invalid_query', /Give one of slides, filter or the search parameters/],
    ['?slides=1&slides=2', 400, 'invalid_query', /slides is given more than once/],
    ['?slides=1,x', 400, 'invalid_query', /slides must be slide ids separated by commas; not "x"/],
    ['?slides=1&format=xml', 400, 'invalid_query', /format must be json or tsv/],
    ['?page=2&slides=1', 400, 'invalid_query', /page is not a parameter here/],
    ['?filter=organ', 400, 'invalid_query', /"organ" is not key=value/],
    ['?organ=CO&q=a&q=b', 400, 'invalid_query', /q is given more than once/],
    [`?q=${'a%20'.repeat(11)}`, 400, 'invalid_query', /q has 11 words; at most 10/],
    ['?organ=PR', 400, 'empty_selection', /No published slide matches/],
    [`?slides=${withdrawn.id}`, 404, 'slide_not_found', new RegExp(String(withdrawn.id))],
  ];
  for (const [query, status, code, message] of cases) {
    const response = await h.get(`/api/downloads/manifest${query}`);
    t.is(response.status, status, query);
    const error = await errorOf(response);
    t.is(error.code, code, query);
    t.regex(error.message, message, query);
  }
});

// --- helpers for file-handle checks -----------------------------------------------------------------

/** Files under `dir` this process has open. */
async function openUnder(dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(dir)).sort();
}

/** The open files under `dir` once closing has had a moment to happen (closing a file is asynchronous). */
async function settledOpen(dir: string, expected: string[]): Promise<string[]> {
  let open = await openUnder(dir);
  for (let i = 0; i < 100 && open.length > expected.length; i++) {
    await sleep(20);
    open = await openUnder(dir);
  }
  return open;
}
