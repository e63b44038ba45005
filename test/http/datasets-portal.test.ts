/**
 * Datasets from the portal: `GET /api/datasets` lists the datasets and their
 * releases for L3 members and admins, and `GET /api/datasets/:name/bag.zip`
 * streams a release as a bag serialized in one ZIP (RFC 8493 §4). The ZIP is
 * checked with Debian's unzip, its bag with the independent RFC 8493 check of
 * test/bagit and with server/bagit's validator and signature verifier, and its
 * slides against the slide store.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import { parseTagFile, validateBag, type TrustedKey } from '../../server/bagit/index.js';
import { createDatasetsService } from '../../server/datasets/index.js';
import type { DatasetSummary } from '../../server/datasets/views.js';
import { createIngestService } from '../../server/ingest/create.js';
import { rfc8493Problems } from '../bagit/rfc8493-check.js';
import { bearerHeaders, signedIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const run = promisify(execFile);
const UNZIP = '/usr/bin/unzip';
const ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'liver-study', collection_date: '2010', consent: '' };

interface Slide {
  id: number;
  name: string;
}

interface Origin {
  app: TestApp;
  root: string;
  slides: Slide[];
  trusted: TrustedKey[];
  l3: Record<string, string>;
}

/**
 * A site with three generated slides taken in by ingest, and two datasets:
 * liver (release 1: a and b; release 2: a, b and c) and pair (release 1: a
 * and c; then c is withdrawn and release 2 holds a alone).
 */
async function origin(t: ExecutionContext): Promise<Origin> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-datasets-portal-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, {
    env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_SITE_NAME: 'Origin Hospital', SLIDEBANK_SITE_PUBLIC_URL: 'http://origin.example:8080' },
  });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  for (const [i, seed] of [41, 42, 43].entries()) await makeSlide({ width: 1600, height: 1200, seed, out: inbox, name: `case-${i}`, tileSize: 240 });
  await writeFile(path.join(inbox, 'metadata.csv'), stringify([0, 1, 2].map((i) => ({ file: `case-${i}.svs`, ...ROW, pathology_info: `case ${i}` })), { header: true }));
  const ingested = await createIngestService(app.config, app.database.db, memoryLogger().log).ingestFolder(inbox, { source: 'cli' });
  t.deepEqual(ingested.results.map((r) => r.outcome), ['published', 'published', 'published']);
  const slides = ingested.results.map((r) => ({ id: r.slideId!, name: r.name! }));
  const [a, b, c] = slides as [Slide, Slide, Slide];

  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('liver', 'HCC with viable tumour annotations');
  await datasets.add('liver', { slides: [a.id, b.id] });
  await datasets.release('liver', '1', 'curator');
  await datasets.add('liver', { slides: [c.id] });
  await datasets.release('liver', '2', 'curator');
  await datasets.create('pair');
  await datasets.add('pair', { slides: [a.id, c.id] });
  await datasets.release('pair', '1', 'curator');
  await datasets.withdraw('pair', c.id, 'consent withdrawn');
  await datasets.release('pair', '2', 'curator');

  const site = (await (await fetch(app.url('/api/site'))).json()) as { name: string; signingKey: { publicKey: string } };
  return { app, root, slides, trusted: [{ name: site.name, publicKey: site.signingKey.publicKey }], l3: await bearerHeaders(app, { level: 'L3' }) };
}

/** Download a ZIP to a file, test it with unzip and unpack it; returns the folders at its top. */
async function unpack(t: ExecutionContext, response: Response): Promise<{ dir: string; top: string[]; listing: string }> {
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'application/zip');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bagzip-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const zip = path.join(dir, 'bag.zip');
  await pipeline(Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream), createWriteStream(zip));
  t.regex((await run(UNZIP, ['-t', zip])).stdout, /No errors detected/);
  const listing = (await run(UNZIP, ['-Z1', zip])).stdout;
  const out = path.join(dir, 'x');
  await run(UNZIP, ['-q', zip, '-d', out]);
  return { dir: out, top: await readdir(out), listing };
}

/** The files this process has open. */
async function openFiles(): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  return Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
}

/** A view as its JSON reads: times as ISO 8601 strings. */
type InJson<T> = T extends Date ? string : T extends (infer U)[] ? InJson<U>[] : T extends object ? { [K in keyof T]: InJson<T[K]> } : T;

function storeFile(app: TestApp, name: string): string {
  return path.join(app.config.paths.slides, `${name}.svs`);
}

test(`who may list datasets and download bags: anonymous 401, L2 403, L3 and admin 200, with a session or a token, on ${testDialect}`, async (t) => {
  const app = await startTestApp(t);
  const zip = '/api/datasets/none/bag.zip?version=1';
  for (const url of ['/api/datasets', zip]) {
    const anonymous = await fetch(app.url(url));
    t.is(anonymous.status, 401, url);
    t.like(await anonymous.json(), { error: { code: 'unauthenticated' } });
  }
  const l2 = await signedIn(app, { level: 'L2', levelExpiresAt: new Date(Date.now() + 86_400_000) });
  const staff = await signedIn(app, { level: 'L1', roles: ['curator'] });
  for (const client of [l2.session, l2.token, staff.session]) {
    t.is((await client.get('/api/datasets')).status, 403);
    t.is((await client.get(zip)).status, 403);
  }
  for (const spec of [{ level: 'L3' as const }, { level: 'L1' as const, roles: ['admin' as const] }]) {
    const who = await signedIn(app, spec);
    for (const client of [who.session, who.token]) {
      const answer = await client.get<{ items: unknown[] }>('/api/datasets');
      t.is(answer.status, 200);
      t.deepEqual(answer.body, { items: [] });
      t.like((await client.get(zip)).body, { error: { code: 'dataset_not_found' } });
    }
  }
});

test.serial(`the list, the full and holey bags as ZIP, an incremental bag, refusals and a client that goes away, on ${testDialect}`, async (t) => {
  t.timeout(10 * 60_000);
  const { app, slides, trusted, l3, root } = await origin(t);
  const [a, b, c] = slides as [Slide, Slide, Slide];
  const get = (url: string) => fetch(app.url(url), { headers: l3 });

  // --- The list.
  const list = (await (await get('/api/datasets')).json()) as { items: InJson<DatasetSummary>[] };
  const size = async (s: Slide) => (await readFile(storeFile(app, s.name))).length;
  t.deepEqual(
    list.items.map((d) => ({ ...d, createdAt: typeof d.createdAt, releases: d.releases.map((r) => ({ ...r, releasedAt: typeof r.releasedAt })) })),
    [
      {
        name: 'liver',
        description: 'HCC with viable tumour annotations',
        createdAt: 'string',
        members: 3,
        withdrawals: 0,
        releases: [
          { version: '1', releasedAt: 'string', slides: 2, slideBytes: (await size(a)) + (await size(b)), annotations: 2, withdrawals: 0, withdrawnAfter: 0 },
          { version: '2', releasedAt: 'string', slides: 3, slideBytes: (await size(a)) + (await size(b)) + (await size(c)), annotations: 3, withdrawals: 0, withdrawnAfter: 0 },
        ],
      },
      {
        name: 'pair',
        description: null,
        createdAt: 'string',
        members: 1,
        withdrawals: 1,
        releases: [
          { version: '1', releasedAt: 'string', slides: 2, slideBytes: (await size(a)) + (await size(c)), annotations: 2, withdrawals: 0, withdrawnAfter: 1 },
          { version: '2', releasedAt: 'string', slides: 1, slideBytes: await size(a), annotations: 1, withdrawals: 1, withdrawnAfter: 0 },
        ],
      },
    ],
  );
  t.false(Number.isNaN(Date.parse(list.items[0]!.releases[0]!.releasedAt)));

  // --- The full bag: one folder, valid by the RFC and by our validator, signed, the slides as in the store.
  const full = await get('/api/datasets/liver/bag.zip?version=1');
  t.regex(full.headers.get('content-disposition') ?? '', /attachment; filename="liver_1\.zip"/);
  const fullZip = await unpack(t, full);
  t.deepEqual(fullZip.top, ['liver_1'], 'a single top-level folder, the bag');
  t.regex(fullZip.listing, /^liver_1\/bagit\.txt\n/, 'bagit.txt comes first');
  const bag = path.join(fullZip.dir, 'liver_1');
  t.deepEqual(rfc8493Problems(bag), []);
  t.false((await readdir(bag)).includes('fetch.txt'), 'a complete bag has no fetch.txt');
  const valid = await validateBag(bag, { trustedKeys: trusted });
  t.is(valid.signedBy?.signer, 'Origin Hospital');
  t.deepEqual(valid.holes, []);
  t.deepEqual(
    valid.payload.map((p) => p.path).filter((p) => p.startsWith('data/slides/')).sort(),
    [a, b].map((s) => `data/slides/${s.name}.svs`).sort(),
  );
  for (const s of [a, b]) {
    t.true((await readFile(path.join(bag, 'data', 'slides', `${s.name}.svs`))).equals(await readFile(storeFile(app, s.name))), `${s.name}.svs is the stored file`);
  }
  t.like(Object.fromEntries(parseTagFile(await readFile(path.join(bag, 'bag-info.txt'), 'utf8'), 'bag-info.txt')), { 'Source-Organization': 'Origin Hospital', 'External-Identifier': 'liver@1' });
  t.regex(await readFile(path.join(bag, 'tagmanifest-sha256.txt'), 'utf8'), /^(?![\s\S]*fetch\.txt)/, 'the tag manifest does not list fetch.txt');
  // Recorded when the server sees the answer end, which may come a moment after the client has read it all.
  while (app.audit.of('dataset.exported').length === 0) await sleep(20);
  t.like(app.audit.of('dataset.exported').at(-1), { subjectId: 'liver', details: { version: '1', since: null, holey: false, format: 'zip', complete: true } });

  // --- The holey bag: fetch.txt points at this site's download URLs; everything else is there and signed.
  const holeyZip = await unpack(t, await get('/api/datasets/liver/bag.zip?version=1&holey=1'));
  const holey = path.join(holeyZip.dir, 'liver_1');
  const fetchLines = (await readFile(path.join(holey, 'fetch.txt'), 'utf8')).trim().split('\n').sort();
  t.deepEqual(fetchLines, await Promise.all([a, b].map(async (s) => `http://origin.example:8080/api/slides/${s.id}/files/slide ${await size(s)} data/slides/${s.name}.svs`)).then((l) => l.sort()));
  t.deepEqual(rfc8493Problems(holey).sort(), [a, b].map((s) => `data/slides/${s.name}.svs not yet fetched`).sort());
  const holeyValid = await validateBag(holey, { trustedKeys: trusted, allowHoles: true });
  t.deepEqual(holeyValid.holes.sort(), [a, b].map((s) => `data/slides/${s.name}.svs`).sort());
  t.is(await readFile(path.join(holey, 'manifest-sha256.txt'), 'utf8'), await readFile(path.join(bag, 'manifest-sha256.txt'), 'utf8'), 'the same payload manifest');

  // --- An incremental bag: only slide c travels.
  const increment = await unpack(t, await get('/api/datasets/liver/bag.zip?version=2&since=1'));
  t.deepEqual(increment.top, ['liver_2_since_1']);
  const incrementBag = path.join(increment.dir, 'liver_2_since_1');
  t.deepEqual(rfc8493Problems(incrementBag), []);
  await t.notThrowsAsync(validateBag(incrementBag, { trustedKeys: trusted }));
  t.deepEqual(await readdir(path.join(incrementBag, 'data', 'slides')), [`${c.name}.svs`]);
  t.true((await readFile(path.join(incrementBag, 'data', 'slides', `${c.name}.svs`))).equals(await readFile(storeFile(app, c.name))));
  t.like(Object.fromEntries(parseTagFile(await readFile(path.join(incrementBag, 'bag-info.txt'), 'utf8'), 'bag-info.txt')), { 'Slidebank-Since-Version': '1' });

  // --- Refusals.
  const refusals: [string, number, string][] = [
    ['/api/datasets/nothing/bag.zip?version=1', 404, 'dataset_not_found'],
    ['/api/datasets/liver/bag.zip?version=9', 404, 'release_not_found'],
    ['/api/datasets/liver/bag.zip?version=2&since=7', 404, 'release_not_found'],
    ['/api/datasets/liver/bag.zip?version=1&since=2', 400, 'invalid_query'],
    ['/api/datasets/liver/bag.zip?version=1&since=1', 400, 'invalid_query'],
    ['/api/datasets/liver/bag.zip?version=1&version=2', 400, 'invalid_query'],
    ['/api/datasets/liver/bag.zip?version=1&holey=yes', 400, 'invalid_query'],
  ];
  for (const [url, status, code] of refusals) {
    const answer = await get(url);
    t.is(answer.status, status, url);
    t.like(await answer.json(), { error: { code } }, url);
  }
  const problems: [string, RegExp][] = [
    ['/api/datasets/liver/bag.zip?version=1&version=2', /version is given more than once; give it once/],
    ['/api/datasets/liver/bag.zip?version=1&holey=yes', /holey must be 1 or 0/],
    [`/api/datasets/liver/bag.zip?version=${'1'.repeat(51)}`, /version must be at most 50 characters/],
    ['/api/datasets/liver/bag?since=1&version=1', /since must name a release older than 1/],
    ['/api/datasets/.hidden/bag.zip', /There is no dataset with that name/],
  ];
  for (const [url, message] of problems) {
    const answer = (await (await get(url)).json()) as { error: { message: string } };
    t.regex(answer.error.message, message, url);
  }
  const pair = await unpack(t, await get('/api/datasets/pair/bag.zip?version=2'));
  const pairMeta = JSON.parse(await readFile(path.join(pair.dir, 'pair_2', 'data', 'metadata.json'), 'utf8')) as { withdrawals: { name: string; reason: string }[] };
  t.deepEqual(pairMeta.withdrawals.map((w) => [w.name, w.reason]), [[c.name, 'consent withdrawn']]);
  // A release made before c was withdrawn from pair is served without c, and names it in the signed withdrawal notice.
  const stale = await unpack(t, await get('/api/datasets/pair/bag.zip?version=1'));
  const staleBag = path.join(stale.dir, 'pair_1');
  t.deepEqual(rfc8493Problems(staleBag), []);
  const staleValid = await validateBag(staleBag, { trustedKeys: trusted });
  t.true(staleValid.tagFiles.includes('slidebank-withdrawn.json'));
  t.deepEqual(staleValid.payload.map((p) => p.path).filter((p) => p.startsWith('data/slides/')), [`data/slides/${a.name}.svs`]);
  const notice = JSON.parse(await readFile(path.join(staleBag, 'slidebank-withdrawn.json'), 'utf8')) as { withdrawn: { name: string; reason: string }[] };
  t.deepEqual(notice.withdrawn.map((w) => [w.name, w.reason]), [[c.name, 'consent withdrawn']]);

  // --- A client that goes away mid-slide: the archive stops, the scratch folder goes, the audit says how far it got.
  const bigFile = path.join(root, 'big.svs');
  await writeFile(bigFile, '');
  await truncate(bigFile, 64 * 1024 * 1024);
  const zeros = createHash('sha256');
  for (let i = 0; i < 64; i++) zeros.update(Buffer.alloc(1024 * 1024));
  const big = await registerSlide(app.database.db, bigFile, 'SB1-LV-HCC-HE-MD-99-99-0000000099');
  await app.database.db.knex('slides').where({ id: big.id }).update({ sha256: zeros.digest('hex') });
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('big');
  await datasets.add('big', { slides: [big.id] });
  await datasets.release('big', '1', 'curator');
  const exportsBefore = app.audit.of('dataset.exported').length;
  const received = await new Promise<number>((resolve, reject) => {
    const request = http.get(app.url('/api/datasets/big/bag.zip?version=1'), { headers: l3 }, (response) => {
      let got = 0;
      response.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got > 256 * 1024 && !response.isPaused()) {
          response.pause();
          request.destroy();
          resolve(got);
        }
      });
    });
    request.on('error', (error) => ((error as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(error)));
  });
  while (app.audit.of('dataset.exported').length === exportsBefore) await sleep(20);
  const event = app.audit.of('dataset.exported').at(-1)!;
  t.like(event, { subjectId: 'big', details: { complete: false, holey: false } });
  t.true((event.details!.bytes as number) >= received && (event.details!.bytes as number) < 64 * 1024 * 1024, `sent ${String(event.details!.bytes)} bytes`);
  t.deepEqual((await readdir(app.config.paths.cache)).filter((n) => n.startsWith('bagzip-')), [], 'no scratch folder is left');
  // The slide file is closed (the close itself finishes a moment after the archive stops).
  while ((await openFiles()).includes(bigFile)) await sleep(20);
  t.pass('the slide file was closed');
});

test(`scratch folders left by a server stopped mid-answer are cleared before the next bag is made, on ${testDialect}`, async (t) => {
  const { app, l3 } = await origin(t);
  const cache = app.config.paths.cache;
  const threeDaysAgo = new Date(Date.now() - 3 * 24 * 60 * 60 * 1000);
  for (const name of ['bagzip-leftover', 'holey-leftover', 'bagzip-running', 'overlays']) {
    await mkdir(path.join(cache, name, 'data'), { recursive: true });
    await writeFile(path.join(cache, name, 'data', 'fetch.txt'), 'x');
  }
  for (const name of ['bagzip-leftover', 'holey-leftover', 'overlays']) await utimes(path.join(cache, name), threeDaysAgo, threeDaysAgo);

  const response = await fetch(app.url('/api/datasets/liver/bag.zip?version=1&holey=1'), { headers: l3 });
  t.is(response.status, 200);
  await response.arrayBuffer();
  const left = await readdir(cache);
  t.false(left.includes('bagzip-leftover'));
  t.false(left.includes('holey-leftover'));
  t.true(left.includes('bagzip-running'), 'a scratch folder younger than two days may be another node\'s answer in progress');
  t.true(left.includes('overlays'), 'the rest of the cache is not touched');
});
