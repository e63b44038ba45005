/**
 * Compression: the portal's JSON answers and scripts go out gzip- or
 * brotli-encoded as the client asks, and decode to the bytes an
 * uncompressed answer carries; tiles and downloads go out as they are; the
 * portal's pre-compressed files (.br and .gz beside each built file) are
 * sent as they were written, with Content-Encoding and Vary.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from 'node:zlib';
import test, { type ExecutionContext } from 'ava';
import { createApp } from '../../server/http/app.js';
import { listen } from '../../server/http/server.js';
import { bearerHeaders } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The bytes as they came over the wire, not decoded. */
  body: Buffer;
}

/** node:http, not fetch: fetch decodes what it accepts and hides the encoding. */
function raw(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Raw> {
  return new Promise((resolve, reject) => {
    http
      .request(url, { method, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
        response.on('error', reject);
      })
      .on('error', reject)
      .end();
  });
}

function decoded(answer: Raw): Buffer {
  switch (answer.headers['content-encoding']) {
    case 'br':
      return brotliDecompressSync(answer.body);
    case 'gzip':
      return gunzipSync(answer.body);
    default:
      return answer.body;
  }
}

const varies = (answer: Raw) => String(answer.headers.vary ?? '').toLowerCase().split(/\s*,\s*/).includes('accept-encoding');

/** The whole application (createApp) on a test app's services, serving the portal from `webRoot`. */
async function withPortal(t: ExecutionContext, app: TestApp, webRoot: string): Promise<(pathname: string) => string> {
  const { log } = memoryLogger();
  const server = await listen(createApp({ config: app.config, log, db: app.database.db, services: app.services, webRoot }), { port: 0, host: '127.0.0.1', log });
  t.teardown(() => server.close(1000).then(() => undefined));
  return (pathname) => `${server.url}${pathname}`;
}

test('a JSON answer is sent with brotli or gzip as the client asks, and decodes to the same bytes', async (t) => {
  const app = await startTestApp(t);
  const url = app.url('/api/openapi.json');
  const plain = await raw(url, { 'Accept-Encoding': 'identity' });
  t.is(plain.status, 200);
  t.is(plain.headers['content-encoding'], undefined);
  t.true(varies(plain), 'Vary: Accept-Encoding, so caches keep the encodings apart');
  t.true(plain.body.length > 10_000);

  for (const [accept, encoding] of [
    ['br', 'br'],
    ['gzip', 'gzip'],
    ['gzip, deflate, br', 'br'],
    ['gzip;q=1, br;q=0', 'gzip'],
  ] as const) {
    const answer = await raw(url, { 'Accept-Encoding': accept });
    t.is(answer.status, 200, accept);
    t.is(answer.headers['content-encoding'], encoding, accept);
    t.true(varies(answer), accept);
    t.regex(String(answer.headers['content-type']), /^application\/json/, accept);
    t.true(answer.body.length < plain.body.length / 3, `${accept}: ${answer.body.length} of ${plain.body.length} bytes`);
    t.true(decoded(answer).equals(plain.body), `${accept}: the same bytes once decoded`);
  }

  // Without Accept-Encoding, as it is: and a small answer is not worth encoding.
  t.is((await raw(url)).headers['content-encoding'], undefined);
  const small = await raw(app.url('/api/site'), { 'Accept-Encoding': 'br, gzip' });
  t.is(small.status, 200);
  t.is(small.headers['content-encoding'], undefined);
  // Errors are JSON too: the encoding does not hide their status.
  const missing = await raw(app.url('/api/slides/1'), { 'Accept-Encoding': 'gzip' });
  t.is(missing.status, 401);
});

test('tiles and slide downloads are sent as they are, whole or in part', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-compression-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var') } });
  const made = await makeSlide({ width: 1200, height: 900, seed: 3, out: root, name: 'tiles' });
  const slide = await registerSlide(app.database.db, made.svs);
  await app.database.db
    .knex('slides')
    .where({ id: slide.id })
    .update({ sha256: createHash('sha256').update(await readFile(made.svs)).digest('hex'), annotation_path: made.xml });
  const accept = { 'Accept-Encoding': 'br, gzip' };
  const viewer = { ...(await bearerHeaders(app, { level: 'L1' })), ...accept };

  const dzi = await raw(app.url(`/tiles/${slide.id}.dzi`), viewer);
  t.is(dzi.status, 200);
  t.is(dzi.headers['content-encoding'], undefined, 'the descriptor');
  for (const tile of [`/tiles/${slide.id}_files/0/0_0.jpeg`, `/tiles/${slide.id}_files/0/0_0.png`]) {
    const answer = await raw(app.url(tile), viewer);
    t.is(answer.status, 200, tile);
    t.regex(String(answer.headers['content-type']), /^image\//, tile);
    t.is(answer.headers['content-encoding'], undefined, tile);
  }

  const researcher = { ...(await bearerHeaders(app, { level: 'L2' })), ...accept };
  const file = await readFile(made.svs);
  const download = await raw(app.url(`/api/slides/${slide.id}/files/slide`), researcher);
  t.is(download.status, 200, download.body.subarray(0, 300).toString());
  t.is(download.headers['content-encoding'], undefined);
  t.is(Number(download.headers['content-length']), file.length);
  t.true(download.body.equals(file));
  const part = await raw(app.url(`/api/slides/${slide.id}/files/slide`), { ...researcher, Range: 'bytes=0-1999' });
  t.is(part.status, 206);
  t.is(part.headers['content-encoding'], undefined);
  t.true(part.body.equals(file.subarray(0, 2000)));
  // XML would compress well, but a download goes out as it is: its length, digests and ranges are the file's.
  const xml = await readFile(made.xml);
  const annotation = await raw(app.url(`/api/slides/${slide.id}/files/annotation`), researcher);
  t.is(annotation.status, 200);
  t.true(xml.length > 1024);
  t.regex(String(annotation.headers['content-type']), /^application\/xml/);
  t.is(annotation.headers['content-encoding'], undefined);
  t.true(annotation.body.equals(xml));
});

test('portal files: the pre-compressed copy the client accepts, with Vary; compressed on the fly when there is none', async (t) => {
  const app = await startTestApp(t);
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-compression-web-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'assets'));
  const script = Buffer.from(`export const words = ${JSON.stringify(Array.from({ length: 400 }, (_, i) => `word ${i}`))};\n`);
  await writeFile(path.join(root, 'index.html'), '<!doctype html><title>app</title>');
  await writeFile(path.join(root, 'assets', 'index-Ab12.js'), script);
  // Made as the build makes them; the server must send these very bytes.
  const br = brotliCompressSync(script);
  const gz = gzipSync(script, { level: 9 });
  await writeFile(path.join(root, 'assets', 'index-Ab12.js.br'), br);
  await writeFile(path.join(root, 'assets', 'index-Ab12.js.gz'), gz);
  await writeFile(path.join(root, 'assets', 'plain-Cd34.js'), script);
  await writeFile(path.join(root, 'assets', 'logo-Ef56.png'), Buffer.alloc(4096, 1));
  const url = await withPortal(t, app, root);

  const brotli = await raw(url('/assets/index-Ab12.js'), { 'Accept-Encoding': 'gzip, deflate, br' });
  t.is(brotli.status, 200);
  t.is(brotli.headers['content-encoding'], 'br');
  t.true(varies(brotli));
  t.regex(String(brotli.headers['content-type']), /^text\/javascript/);
  t.is(brotli.headers['cache-control'], 'public, max-age=31536000, immutable');
  t.is(Number(brotli.headers['content-length']), br.length);
  t.true(brotli.body.equals(br), 'the .br file as written');
  t.true(decoded(brotli).equals(script));

  const gzip = await raw(url('/assets/index-Ab12.js'), { 'Accept-Encoding': 'gzip' });
  t.is(gzip.headers['content-encoding'], 'gzip');
  t.true(gzip.body.equals(gz), 'the .gz file as written');

  const identity = await raw(url('/assets/index-Ab12.js'), { 'Accept-Encoding': 'identity' });
  t.is(identity.headers['content-encoding'], undefined);
  t.true(varies(identity));
  t.true(identity.body.equals(script));
  const refused = await raw(url('/assets/index-Ab12.js'), { 'Accept-Encoding': 'br;q=0, gzip;q=0' });
  t.is(refused.headers['content-encoding'], undefined);

  const head = await raw(url('/assets/index-Ab12.js'), { 'Accept-Encoding': 'br' }, 'HEAD');
  t.is(head.headers['content-encoding'], 'br');
  t.is(Number(head.headers['content-length']), br.length);

  // A script the build left without copies is compressed on the fly, to the same bytes once decoded.
  const onTheFly = await raw(url('/assets/plain-Cd34.js'), { 'Accept-Encoding': 'gzip' });
  t.is(onTheFly.headers['content-encoding'], 'gzip');
  t.true(decoded(onTheFly).equals(script));
  // Images are never compressed again.
  const image = await raw(url('/assets/logo-Ef56.png'), { 'Accept-Encoding': 'br, gzip' });
  t.is(image.status, 200);
  t.is(image.headers['content-encoding'], undefined);
});

test('the built portal has .br and .gz copies of its scripts, styles and index.html, and they decode to the files', async (t) => {
  const dist = path.join(import.meta.dirname, '..', '..', 'web', 'dist');
  let index: Buffer;
  try {
    index = await readFile(path.join(dist, 'index.html'));
  } catch {
    t.pass('web/dist is not built here (npm run build:web)');
    return;
  }
  t.true(brotliDecompressSync(await readFile(path.join(dist, 'index.html.br'))).equals(index));
  t.true(gunzipSync(await readFile(path.join(dist, 'index.html.gz'))).equals(index));
  const script = /<script[^>]+src="\/(assets\/[^"]+\.js)"/.exec(index.toString())?.[1];
  t.truthy(script);
  const source = await readFile(path.join(dist, script!));
  t.true(brotliDecompressSync(await readFile(path.join(dist, `${script!}.br`))).equals(source));
  t.true(gunzipSync(await readFile(path.join(dist, `${script!}.gz`))).equals(source));
});
