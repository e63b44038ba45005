import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { toDbTime } from '../../server/db/index.js';
import { DownloadLinks } from '../../server/downloads/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { createUser, logIn, type Answer, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide } from '../support/slides.js';

/**
 * Signed ZIP links (POST /api/downloads/links, GET /api/downloads/zip) on the
 * real application, with browser-like session clients: the summary before a
 * download, the link working for its own account within its time, and every
 * way it is refused, with the download gate applied at the GET.
 */

const run = promisify(execFile);
const day = 86_400_000;

interface LinkAnswer {
  selection: { slides: number[] } | { filter: string };
  slides: number;
  files: number;
  totalBytes: number;
  zip: { href: string; url: string; expiresAt: string } | null;
  zipRefusal: { status: number; code: string; message: string } | null;
}

interface Setup {
  app: TestApp;
  ids: number[];
  /** Each slide's file and annotation bytes, by id. */
  bytes: Map<number, number>;
  data: string;
}

/** The real application with three published slides (colon H&E, with annotations); ZIPs hold at most `maxBundleSlides`. */
async function setup(t: ExecutionContext, maxBundleSlides = 200, env: Record<string, string> = {}): Promise<Setup> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-links-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, {
    env: { SLIDEBANK_PATHS_DATA: data, SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false', SLIDEBANK_DOWNLOADS_MAX_BUNDLE_SLIDES: String(maxBundleSlides), ...env },
  });
  const inbox = path.join(data, 'in');
  for (const [i, name] of ['case-a', 'case-b', 'case-c'].entries()) {
    await makeSlide({ width: 1200, height: 900, seed: 40 + i, out: inbox, name, tileSize: 240 });
    await rm(path.join(inbox, `${name}.truth.json`));
  }
  const fallback = { organ: 'CO', histology: 'ADC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'links' };
  const { results } = await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback });
  t.true(results.every((r) => r.outcome === 'published'), JSON.stringify(results.map((r) => r.reason)));
  const rows = (await app.database.db.knex('slides').orderBy('id').select('id', 'file_size', 'annotation_path')) as { id: number; file_size: number; annotation_path: string | null }[];
  const bytes = new Map<number, number>();
  for (const row of rows) {
    const xml = row.annotation_path ? (await stat(path.join(app.config.paths.slides, row.annotation_path))).size : 0;
    bytes.set(row.id, Number(row.file_size) + xml);
  }
  return { app, ids: rows.map((r) => r.id), bytes, data };
}

async function researcher(app: TestApp, level: 'L2' | 'L3' = 'L2'): Promise<{ id: number; client: Client }> {
  const user = await createUser(app, { level, levelExpiresAt: level === 'L2' ? new Date(Date.now() + 365 * day) : null });
  return { id: user.id, client: await logIn(app, user.email) };
}

const code = (answer: Answer) => (answer.body as { error?: { code: string } }).error?.code;

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

async function unzipTest(t: ExecutionContext, dir: string, zip: Buffer): Promise<string> {
  const file = path.join(dir, `bundle-${Date.now()}.zip`);
  await writeFile(file, zip);
  const { stdout } = await run('/usr/bin/unzip', ['-t', file]);
  t.regex(stdout, /No errors detected/);
  return stdout;
}

test(`a signed link: the size first, then the ZIP with a plain GET of its own account's session, audited (${testDialect})`, async (t) => {
  const { app, ids, bytes, data } = await setup(t);
  const rita = await researcher(app);
  const [a, b] = ids as [number, number];

  const made = await rita.client.post<LinkAnswer>('/api/downloads/links', { slides: [a, b] });
  t.is(made.status, 200, JSON.stringify(made.body));
  t.like(made.body, { selection: { slides: [a, b] }, slides: 2, files: 4, totalBytes: bytes.get(a)! + bytes.get(b)!, zipRefusal: null });
  const zip = made.body.zip!;
  t.regex(zip.href, new RegExp(`^/api/downloads/zip\\?user=${rita.id}&slides=${a}%2C${b}&expires=\\d+&signature=[\\w-]{43}$`));
  t.is(zip.url, app.url(zip.href));
  const left = Date.parse(zip.expiresAt) - Date.now();
  t.true(left > 9 * 60_000 && left <= 10 * 60_000, `valid for ten minutes (${left} ms)`);
  t.is(app.audit.of('download.bundle').length, 0, 'making a link downloads nothing');

  const got = await rita.client.get<Buffer>(zip.href);
  t.is(got.status, 200);
  t.is(got.headers.get('content-type'), 'application/zip');
  t.regex(got.headers.get('content-disposition') ?? '', /^attachment; filename="slidebank-\d{8}-\d{6}-2-slides\.zip"/);
  const listing = await unzipTest(t, data, got.body);
  t.is((listing.match(/testing: slides\//g) ?? []).length, 2);
  const event = await eventually(() => app.audit.of('download.bundle')[0], 'the bundle in the audit log');
  t.is(event.actorId, rita.id);
  t.like(event.details, { selection: { slides: [a, b] }, slides: 2, complete: true });

  const head = await fetch(app.url(zip.href), { method: 'HEAD', headers: { cookie: [...rita.client.cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
  t.is(head.status, 200);
  t.is(head.headers.get('content-type'), 'application/zip');
  await sleep(100);
  t.is(app.audit.of('download.bundle').length, 1, 'a HEAD builds and audits nothing');

  // The same link again, within its time, works again (each use passes the gate and is audited).
  t.is((await rita.client.get(zip.href)).status, 200);

  // A filter: every published slide, as "all results" of an unfiltered catalog.
  const all = await rita.client.post<LinkAnswer>('/api/downloads/links', { filter: '' });
  t.like(all.body, { selection: { filter: '' }, slides: 3, totalBytes: [...bytes.values()].reduce((x, y) => x + y, 0) });
  const allZip = await rita.client.get<Buffer>(all.body.zip!.href);
  t.is(allZip.status, 200);
  t.is(((await unzipTest(t, data, allZip.body)).match(/testing: slides\//g) ?? []).length, 3);
});

test('refused links: expired 410, changed or foreign 403, another account 403, nobody 401', async (t) => {
  const { app, ids } = await setup(t);
  const rita = await researcher(app);
  const [a, b, c] = ids as [number, number, number];
  const { zip } = (await rita.client.post<LinkAnswer>('/api/downloads/links', { slides: [a] })).body;
  const href = zip!.href;
  const url = new URL(href, 'http://x');
  const changed = (key: string, value: string) => {
    const next = new URL(url);
    next.searchParams.set(key, value);
    return `${next.pathname}${next.search}`;
  };

  for (const [what, tampered] of [
    ['another slide', changed('slides', String(b))],
    ['more slides', changed('slides', `${a},${c}`)],
    ['a later expiry', changed('expires', String(Number(url.searchParams.get('expires')) + 3600))],
    ['another user', changed('user', String(rita.id + 1))],
    ['another signature', changed('signature', 'A'.repeat(43))],
  ] as const) {
    const answer = await rita.client.get(tampered);
    t.is(answer.status, 403, what);
    t.is(code(answer), 'download_link_invalid', what);
  }
  const both = await rita.client.get(`${href}&filter=`);
  t.is(both.status, 400, 'slides and filter together');
  const unsigned = await rita.client.get(`/api/downloads/zip?user=${rita.id}&slides=${a}&expires=9999999999`);
  t.is(unsigned.status, 400, 'no signature');

  // A link signed with other keys (another server) is not this server's.
  const foreign = new DownloadLinks(['another server key that is long enough'], 600_000).issue(rita.id, 'zip', { kind: 'slides', ids: [a] }, new Date());
  const foreignHref = `/api/downloads/zip?${new URLSearchParams(Object.entries(foreign.query).map(([k, v]): [string, string] => [k, String(v)]))}`;
  t.is(code(await rita.client.get(foreignHref)), 'download_link_invalid');

  // Expired: signed by this server's own keys, eleven minutes ago.
  const old = new DownloadLinks(app.services.access.sessionKeys).issue(rita.id, 'zip', { kind: 'slides', ids: [a] }, new Date(Date.now() - 11 * 60_000));
  const oldHref = `/api/downloads/zip?${new URLSearchParams(Object.entries(old.query).map(([k, v]): [string, string] => [k, String(v)]))}`;
  const expired = await rita.client.get(oldHref);
  t.is(expired.status, 410);
  t.is(code(expired), 'download_link_expired');
  t.regex((expired.body as { error: { message: string } }).error.message, /expired at .*Start the download again/);

  // Another researcher, however entitled, cannot use Rita's link; nobody at all gets 401.
  const otto = await researcher(app, 'L3');
  const foreignUse = await otto.client.get(href);
  t.is(foreignUse.status, 403);
  t.is(code(foreignUse), 'download_link_not_yours');
  t.is((await fetch(app.url(href))).status, 401);

  await sleep(100);
  t.is(app.audit.of('download.bundle').length, 0, 'nothing refused was delivered');
  t.is((await rita.client.get(href)).status, 200, 'the link itself still works for Rita');
});

test('the gate applies at the GET: a level lost or an agreement expired after the link was made is 403; a withdrawn slide is not served', async (t) => {
  const { app, ids, data } = await setup(t);
  const [a, b, c] = ids as [number, number, number];
  const knex = app.database.db.knex;

  const rita = await researcher(app);
  const ritaLink = (await rita.client.post<LinkAnswer>('/api/downloads/links', { slides: [a] })).body.zip!.href;
  await knex('users').where({ id: rita.id }).update({ level: 'L1' });
  const demoted = await rita.client.get(ritaLink);
  t.is(demoted.status, 403);
  t.is(code(demoted), 'level_required');

  const lena = await researcher(app);
  const lenaLink = (await lena.client.post<LinkAnswer>('/api/downloads/links', { slides: [a] })).body.zip!.href;
  await knex('users').where({ id: lena.id }).update({ level_expires_at: toDbTime(new Date(Date.now() - day)) });
  const lapsed = await lena.client.get(lenaLink);
  t.is(lapsed.status, 403, 'the data use agreement expired between the link and the GET');
  t.is(code(lapsed), 'level_required');

  // Withdrawn after the links were made: a link naming it is refused whole; a filter link leaves it out.
  const otto = await researcher(app, 'L3');
  const byIds = (await otto.client.post<LinkAnswer>('/api/downloads/links', { slides: [a, b] })).body.zip!.href;
  const byFilter = await otto.client.post<LinkAnswer>('/api/downloads/links', { filter: 'organ=CO' });
  t.is(byFilter.body.slides, 3);
  await knex('slides').where({ id: b }).update({ status: 'withdrawn' });
  const refused = await otto.client.get(byIds);
  t.is(refused.status, 404);
  t.is(code(refused), 'slide_not_found');
  t.deepEqual((refused.body as { error: { details: { missing: number[] } } }).error.details.missing, [b]);
  const filtered = await otto.client.get<Buffer>(byFilter.body.zip!.href);
  t.is(filtered.status, 200);
  const listing = await unzipTest(t, data, filtered.body);
  t.is((listing.match(/testing: slides\//g) ?? []).length, 2, 'the withdrawn slide is left out');
  const event = await eventually(() => app.audit.of('download.bundle')[0], 'the bundle in the audit log');
  t.deepEqual([...(event.details!.slideIds as number[])].sort(), [a, c].sort());
  t.is(app.audit.of('download.bundle').length, 1, 'only the delivered ZIP is audited');
});

test('the size of a selection too large for a ZIP: no link, the reason, and the manifest still answers', async (t) => {
  const { app, ids } = await setup(t, 2);
  const rita = await researcher(app);
  const answer = await rita.client.post<LinkAnswer>('/api/downloads/links', { filter: '' });
  t.is(answer.status, 200);
  t.like(answer.body, { slides: 3, files: 6, zip: null, zipRefusal: { status: 413, code: 'bundle_too_large' } });
  t.regex(answer.body.zipRefusal!.message, /at most 2.*slidebank fetch/);
  const manifest = await rita.client.get<{ slides: number }>('/api/downloads/manifest?filter=');
  t.is(manifest.status, 200);
  t.is(manifest.body.slides, 3);
  t.is((await rita.client.post<LinkAnswer>('/api/downloads/links', { slides: ids.slice(0, 2) })).body.zip === null, false, 'two slides fit');

  const l1 = await createUser(app, { level: 'L1' });
  const viewer = await logIn(app, l1.email);
  t.is((await viewer.post('/api/downloads/links', { slides: [ids[0]] })).status, 403, 'L1 may not even ask');
  t.is((await viewer.post('/api/downloads/links', {}, { csrf: false })).status, 403);
});

test('the size of a selection past the daily allowance: no link, and why', async (t) => {
  const { app, ids, bytes } = await setup(t, 200, { SLIDEBANK_DOWNLOADS_BYTES_PER_DAY: String(1024) });
  const rita = await researcher(app);
  const answer = await rita.client.post<LinkAnswer>('/api/downloads/links', { slides: [ids[0]] });
  t.like(answer.body, { slides: 1, totalBytes: bytes.get(ids[0]!)!, zip: null, zipRefusal: { status: 413, code: 'exceeds_daily_allowance' } });
});
