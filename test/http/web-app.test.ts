import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import Koa from 'koa';
import { errorHandler } from '../../server/http/middleware/error-handler.js';
import { requestContext } from '../../server/http/middleware/request-context.js';
import { webApp } from '../../server/http/middleware/web-app.js';
import { listen } from '../../server/http/server.js';
import { memoryLogger } from '../support/logs.js';

/** The web portal's static files behind the API: caching, the SPA fallback, and what it leaves alone. */

async function serve(t: { teardown(fn: () => Promise<void> | void): void }, root: string) {
  const { log, lines } = memoryLogger();
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(log));
  app.use(errorHandler());
  app.use(webApp(root, log));
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(async () => {
    await http.close(1000);
  });
  return { url: (p: string) => `${http.url}${p}`, lines };
}

test('hashed assets are cached for a year, index.html is revalidated, browser navigations get the app, everything else its 404', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-web-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'assets'));
  await writeFile(path.join(root, 'index.html'), '<!doctype html><title>app</title>');
  await writeFile(path.join(root, 'assets', 'index-Ab12.js'), 'console.log(1)');
  await writeFile(path.join(root, 'favicon.svg'), '<svg/>');
  const { url } = await serve(t, root);
  const html = { Accept: 'text/html,application/xhtml+xml' };

  const asset = await fetch(url('/assets/index-Ab12.js'));
  t.is(asset.status, 200);
  t.is(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  t.regex(asset.headers.get('content-type') ?? '', /^text\/javascript/);
  t.is(await asset.text(), 'console.log(1)');
  t.is((await fetch(url('/favicon.svg'))).headers.get('cache-control'), 'public, max-age=3600');

  for (const pathname of ['/', '/catalog?organ=LV', '/slides/12', '/account/confirm']) {
    const page = await fetch(url(pathname), { headers: html });
    t.is(page.status, 200, pathname);
    t.is(page.headers.get('cache-control'), 'no-cache', pathname);
    t.is(await page.text(), '<!doctype html><title>app</title>', pathname);
  }
  // (node:http, not fetch: fetch adds Cache-Control: no-cache to a conditional request, which rightly defeats it.)
  const since = (await fetch(url('/'))).headers.get('last-modified')!;
  const revalidated = await new Promise<number>((resolve, reject) => {
    http.get(url('/'), { headers: { 'If-Modified-Since': since } }, (response) => resolve(response.resume().statusCode!)).on('error', reject);
  });
  t.is(revalidated, 304);

  // The API, tiles and health keep their JSON 404s; a missing file is not the app; scripts asking for JSON are not browsers.
  for (const pathname of ['/api/nothing', '/tiles/1.dzi', '/iiif/1/info.json', '/healthz', '/assets/index-OLD.js', '/missing']) {
    const response = await fetch(url(pathname), { headers: pathname === '/missing' ? {} : html });
    t.is(response.status, 404, pathname);
    t.like(await response.json(), { error: { code: 'not_found' } }, pathname);
  }
  const escape = await fetch(url('/..%2f..%2f..%2fetc%2fpasswd'), { headers: html });
  t.is(await escape.text(), '<!doctype html><title>app</title>', 'no way out of the folder: a path outside it is only a client route');
  t.is((await fetch(url('/'), { method: 'POST', headers: html })).status, 404, 'only GET and HEAD');
  const head = await fetch(url('/assets/index-Ab12.js'), { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers.get('content-length'), '14');
});

test('without a built app the server still runs and says so once', async (t) => {
  const { url, lines } = await serve(t, path.join(os.tmpdir(), 'slidebank-no-such-web-dist'));
  t.true(lines.some((l) => l.level === 40 && /not built/.test(String(l.msg))));
  t.is((await fetch(url('/'), { headers: { Accept: 'text/html' } })).status, 404);
});
