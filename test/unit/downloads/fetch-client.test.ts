import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { fetchFiles, retryAfterMs, STATE_FILE, type FetchEvent } from '../../../server/downloads/client/fetch-files.js';
import type { FetchableFile } from '../../../server/downloads/manifest.js';
import { parseRange } from '../../../server/downloads/range.js';

/**
 * The fetch client against a small HTTP server of the test's own that can be
 * made to misbehave: cut a body short, ignore Range, ask to wait, serve other
 * bytes than the manifest says.
 */

const TOKEN = 'secret-token';
const DATA = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 8)) & 0xff));
const SHA = createHash('sha256').update(DATA).digest('hex');
const ETAG = `"sha256-${SHA}"`;

interface Behaviour {
  /** Cut the connection after this many body bytes, for the first `times` requests. */
  cutAfter?: { bytes: number; times: number };
  ignoreRange?: boolean;
  busyTimes?: number;
  /** Serve these bytes instead (a file that changed, or is corrupt on the server). */
  serve?: Buffer;
  etag?: string;
  status?: number;
}

interface Seen {
  range?: string;
  ifRange?: string;
  authorization?: string;
}

async function server(t: ExecutionContext, behaviour: Behaviour = {}): Promise<{ url: string; requests: Seen[] }> {
  const requests: Seen[] = [];
  let cuts = 0;
  let busy = 0;
  const srv = http.createServer((req, res) => {
    requests.push({ range: req.headers.range, ifRange: req.headers['if-range'] as string | undefined, authorization: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${TOKEN}`) return void res.writeHead(401).end('{"error":{"message":"who are you"}}');
    if (behaviour.status) return void res.writeHead(behaviour.status, { 'content-type': 'application/json' }).end('{"error":{"message":"no such slide"}}');
    if (behaviour.busyTimes && busy < behaviour.busyTimes) {
      busy++;
      return void res.writeHead(429, { 'retry-after': '1' }).end('{"error":{"message":"slow down"}}');
    }
    const body = behaviour.serve ?? DATA;
    const etag = behaviour.etag ?? ETAG;
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    const decision = parseRange(req.headers.range, body.length);
    const ifRangeOk = req.headers['if-range'] === undefined || req.headers['if-range'] === etag;
    if (!behaviour.ignoreRange && decision.kind === 'partial' && ifRangeOk) {
      ({ start, end } = decision);
      status = 206;
    }
    const headers: Record<string, string> = { etag, 'content-length': String(end - start + 1), 'accept-ranges': 'bytes' };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
    res.writeHead(status, headers);
    const slice = body.subarray(start, end + 1);
    if (behaviour.cutAfter && cuts < behaviour.cutAfter.times) {
      cuts++;
      res.write(slice.subarray(0, behaviour.cutAfter.bytes), () => res.destroy());
      return;
    }
    res.end(slice);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  return { url: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`, requests };
}

async function outDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-fetch-unit-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const FILE: FetchableFile = { path: 'slides/A.svs', href: '/api/slides/1/files/slide', size: DATA.length, sha256: SHA };

function options(url: string, out: string, files: FetchableFile[] = [FILE], events: FetchEvent[] = []) {
  return { server: url, token: TOKEN, files, out, parallel: 2, retries: 3, backoffMs: () => 5, onEvent: (e: FetchEvent) => events.push(e) };
}

test('a body cut short is resumed with Range and If-Range in the same run', async (t) => {
  const { url, requests } = await server(t, { cutAfter: { bytes: 100_000, times: 1 } });
  const out = await outDir(t);
  const events: FetchEvent[] = [];
  const [outcome] = await fetchFiles(options(url, out, [FILE], events));
  t.like(outcome, { status: 'resumed', path: 'slides/A.svs' });
  t.true((await readFile(path.join(out, 'slides', 'A.svs'))).equals(DATA));
  t.is(requests.length, 2);
  // What had reached the disk when the connection broke (at most the 100,000 bytes sent) is where it resumes.
  const from = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1]);
  t.true(from > 0 && from <= 100_000, `resumed from ${from}`);
  t.is(requests[1]!.ifRange, ETAG);
  t.true(requests.every((r) => r.authorization === `Bearer ${TOKEN}`));
  t.true(events.some((e) => e.type === 'retry' && /interrupted/.test(e.reason)));
  t.like(events.find((e) => e.type === 'start' && e.resumeFrom === from), { size: DATA.length });
});

test('a server that ignores Range (200) restarts the file from its first byte', async (t) => {
  const { url } = await server(t, { ignoreRange: true });
  const out = await outDir(t);
  await mkdir(path.join(out, 'slides'), { recursive: true });
  await writeFile(path.join(out, 'slides', 'A.svs.part'), DATA.subarray(0, 1000));
  const [outcome] = await fetchFiles(options(url, out));
  t.like(outcome, { status: 'downloaded', bytes: DATA.length });
  t.true((await readFile(path.join(out, 'slides', 'A.svs'))).equals(DATA));
});

test('a file that changed on the server (If-Range does not match) is fetched whole, not spliced', async (t) => {
  const changed = Buffer.from(DATA);
  changed[0] = changed[0]! ^ 0xff;
  const changedSha = createHash('sha256').update(changed).digest('hex');
  const { url, requests } = await server(t, { serve: changed, etag: '"sha256-new"' });
  const out = await outDir(t);
  await mkdir(path.join(out, 'slides'), { recursive: true });
  await writeFile(path.join(out, 'slides', 'A.svs.part'), DATA.subarray(0, 5000));
  await writeFile(path.join(out, STATE_FILE), JSON.stringify({ version: 1, files: { 'slides/A.svs': { etag: ETAG } } }));
  const [outcome] = await fetchFiles(options(url, out, [{ ...FILE, sha256: changedSha }]));
  t.like(outcome, { status: 'downloaded' });
  t.is(requests[0]!.ifRange, ETAG);
  t.true((await readFile(path.join(out, 'slides', 'A.svs'))).equals(changed));
});

test('429 with Retry-After is waited out without using up the attempts', async (t) => {
  const { url, requests } = await server(t, { busyTimes: 2 });
  const out = await outDir(t);
  const started = Date.now();
  const [outcome] = await fetchFiles({ ...options(url, out), retries: 0 });
  t.like(outcome, { status: 'downloaded' });
  t.is(requests.length, 3);
  t.true(Date.now() - started >= 1900, 'Retry-After: 1 was honoured twice');
});

test('bytes that do not match the manifest are fetched again, then reported; nothing is left under the final name', async (t) => {
  const corrupt = Buffer.from(DATA);
  corrupt[1234] = corrupt[1234]! ^ 1;
  const { url, requests } = await server(t, { serve: corrupt });
  const out = await outDir(t);
  const [outcome] = await fetchFiles(options(url, out));
  t.like(outcome, { status: 'failed' });
  t.regex(outcome!.reason!, /checksum did not match the manifest's/);
  t.is(requests.length, 4, 'the first attempt and three retries');
  await t.throwsAsync(stat(path.join(out, 'slides', 'A.svs')));
  await t.throwsAsync(stat(path.join(out, 'slides', 'A.svs.part')));
});

test('refusals are not retried; unsafe paths and other origins are never requested, and the token goes nowhere else', async (t) => {
  const { url, requests } = await server(t, { status: 404 });
  const out = await outDir(t);
  const outcomes = await fetchFiles(
    options(url, out, [
      FILE,
      { ...FILE, path: '../escape.svs' },
      { ...FILE, path: 'slides/B.svs', href: 'http://elsewhere.example/api/slides/2/files/slide' },
      { ...FILE, path: 'slides/C.svs', sha256: null },
      { ...FILE, path: 'slides/A.svs' },
    ]),
  );
  t.like(outcomes[0], { status: 'failed', reason: '404: no such slide' });
  t.regex(outcomes[1]!.reason!, /unsafe path/);
  t.regex(outcomes[2]!.reason!, /points outside http:\/\/127\.0\.0\.1:\d+ \(http:\/\/elsewhere\.example\)/);
  t.regex(outcomes[3]!.reason!, /no SHA-256/);
  t.regex(outcomes[4]!.reason!, /listed twice/);
  t.is(requests.length, 1);
});

test('a file already present is verified once and then skipped by its recorded size and mtime; a wrong one is replaced', async (t) => {
  const { url, requests } = await server(t);
  const out = await outDir(t);
  await mkdir(path.join(out, 'slides'), { recursive: true });
  await writeFile(path.join(out, 'slides', 'A.svs'), DATA);
  await writeFile(path.join(out, 'slides', 'B.svs'), Buffer.from('not the slide'));
  const files = [FILE, { ...FILE, path: 'slides/B.svs' }];
  const first = await fetchFiles(options(url, out, files));
  t.like(first[0], { status: 'skipped', reason: 'already present, checksum verified' });
  t.like(first[1], { status: 'downloaded' });
  t.true((await readFile(path.join(out, 'slides', 'B.svs'))).equals(DATA));
  t.is(requests.length, 1);
  const second = await fetchFiles(options(url, out, files));
  t.deepEqual(second.map((o) => o.reason), ['already verified', 'already verified']);
  t.is(requests.length, 1);
});

test('a partial file longer than the file is started afresh; one that is complete is only verified', async (t) => {
  const { url, requests } = await server(t);
  const out = await outDir(t);
  await mkdir(path.join(out, 'slides'), { recursive: true });
  await writeFile(path.join(out, 'slides', 'A.svs.part'), Buffer.concat([DATA, Buffer.from('extra')]));
  await writeFile(path.join(out, 'slides', 'B.svs.part'), DATA);
  const outcomes = await fetchFiles(options(url, out, [FILE, { ...FILE, path: 'slides/B.svs' }]));
  t.like(outcomes[0], { status: 'downloaded' });
  t.like(outcomes[1], { status: 'resumed', bytes: 0 });
  t.is(requests.length, 1);
  t.is(requests[0]!.range, undefined);
});

test('Retry-After as seconds or as a date', (t) => {
  const now = Date.parse('2026-11-29T10:00:00Z');
  t.is(retryAfterMs('30', now), 30_000);
  t.is(retryAfterMs('Sun, 29 Nov 2026 10:01:00 GMT', now), 60_000);
  t.is(retryAfterMs('soon', now), null);
  t.is(retryAfterMs(null, now), null);
});
