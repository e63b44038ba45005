import test from 'ava';
import Koa from 'koa';
import { z } from 'zod';
import { publicAccess } from '../../../server/http/access.js';
import { mountRoutes, route } from '../../../server/http/route.js';

const answer = (path: string, pattern?: RegExp) =>
  route({
    method: 'get',
    path,
    ...(pattern ? { pattern } : {}),
    tag: 'test',
    summary: path,
    access: publicAccess,
    params: z.object({}).passthrough(),
    response: { description: 'the path it was mounted at' },
    handle: () => ({ mountedAt: path }),
  });

async function serve(t: { teardown(fn: () => void): void }, app: Koa): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => server.close());
  const { port } = server.address() as { port: number };
  return `http://127.0.0.1:${port}`;
}

test('routes are found by their first path segment, in any case; other paths pass on to what follows', async (t) => {
  const table = mountRoutes([answer('/api/things/{id}'), answer('/tiles/{slide}.dzi', /^\/tiles\/(?<slide>[^/]+)\.dzi$/), answer('/healthz')], { operatorAddress: () => false });
  const app = new Koa();
  app.use(table.routes());
  app.use(table.allowedMethods());
  // What follows the API (the web portal) answers only GET.
  app.use((ctx) => {
    if (ctx.method === 'GET') ctx.body = { fellThrough: ctx.path };
  });
  const base = await serve(t, app);
  const json = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${base}${path}`, init);
    return { status: response.status, body: response.status === 405 ? null : await response.json() };
  };
  t.deepEqual(await json('/api/things/7'), { status: 200, body: { mountedAt: '/api/things/{id}' } });
  t.deepEqual(await json('/API/things/7'), { status: 200, body: { mountedAt: '/api/things/{id}' } });
  t.deepEqual(await json('/tiles/3.dzi'), { status: 200, body: { mountedAt: '/tiles/{slide}.dzi' } });
  t.deepEqual(await json('/healthz'), { status: 200, body: { mountedAt: '/healthz' } });
  t.deepEqual(await json('/api/other'), { status: 200, body: { fellThrough: '/api/other' } });
  t.deepEqual(await json('/portal/page'), { status: 200, body: { fellThrough: '/portal/page' } });
  t.is((await json('/tiles/3.dzi', { method: 'POST' })).status, 405);
});

test('a route whose first path segment is a parameter is refused when mounted', (t) => {
  t.throws(() => mountRoutes([answer('/{anything}/x')], { operatorAddress: () => false }), { message: /first path segment is fixed text/ });
});
