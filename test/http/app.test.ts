import test from 'ava';
import { AppError } from '../../server/errors.js';
import { version } from '../../server/package-info.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { logLine } from '../support/logs.js';

test(`GET /healthz answers 200 with the database status on ${testDialect}`, async (t) => {
  const { url } = await startTestApp(t);
  const response = await fetch(url('/healthz'));
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'no-store');
  const body = (await response.json()) as Record<string, unknown>;
  t.like(body, { status: 'ok', version, database: { status: 'up', dialect: testDialect } });
  t.is(typeof body.uptimeSeconds, 'number');
});

test(`GET /healthz answers 503 when the database is gone, without saying why in public on ${testDialect}`, async (t) => {
  const { url, database, logs } = await startTestApp(t);
  await database.db.close();
  const response = await fetch(url('/healthz'));
  t.is(response.status, 503);
  const body = (await response.json()) as Record<string, unknown>;
  t.like(body, { status: 'unavailable', database: { status: 'down' } });
  t.false(JSON.stringify(body).includes('error'), 'the reason stays in the log');
  t.truthy(await logLine(logs, (l) => l.msg === 'health check: database down' && typeof l.reason === 'string'));
});

test('an unknown route is a JSON 404 with a stable code and the request id', async (t) => {
  const { url } = await startTestApp(t);
  const response = await fetch(url('/api/nothing-here?x=1'));
  t.is(response.status, 404);
  t.regex(response.headers.get('content-type') ?? '', /^application\/json/);
  const requestId = response.headers.get('x-request-id');
  t.deepEqual(await response.json(), {
    error: { code: 'not_found', message: 'Nothing here: GET /api/nothing-here', requestId },
  });
});

test('a wrong method is a JSON 405 that lists the allowed ones', async (t) => {
  const { url } = await startTestApp(t);
  const response = await fetch(url('/healthz'), { method: 'DELETE' });
  t.is(response.status, 405);
  t.is(response.headers.get('allow'), 'HEAD, GET');
  t.like(await response.json(), { error: { code: 'method_not_allowed' } });
});

test('a malformed JSON body is a 400 invalid_json', async (t) => {
  const { url } = await startTestApp(t);
  const response = await fetch(url('/healthz'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"slides": [1, 2,',
  });
  t.is(response.status, 400);
  const { error } = (await response.json()) as { error: { code: string; message: string } };
  t.is(error.code, 'invalid_json');
  t.regex(error.message, /^The request body is not valid JSON/);
});

test('a body over the configured limit is a 413 payload_too_large', async (t) => {
  const { url } = await startTestApp(t, { env: { SLIDEBANK_HTTP_BODY_LIMIT: '1kb' } });
  const response = await fetch(url('/healthz'), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ padding: 'x'.repeat(4096) }),
  });
  t.is(response.status, 413);
  t.like(await response.json(), { error: { code: 'payload_too_large' } });
});

test('an unexpected error is a 500 that leaks no message or stack, and is logged with both', async (t) => {
  const { url, logs } = await startTestApp(t, {
    extend: (app) =>
      app.use(async (ctx) => {
        if (ctx.path === '/boom') throw new TypeError('secret internals at /srv/slidebank/server/x.ts:12');
      }),
  });
  const response = await fetch(url('/boom'));
  t.is(response.status, 500);
  const text = await response.text();
  t.false(text.includes('secret internals'));
  t.false(text.includes('.ts:'));
  const { error } = JSON.parse(text) as { error: { code: string; message: string; requestId: string } };
  t.is(error.code, 'internal_error');
  t.true(error.message.includes(error.requestId), 'the message tells the user what to quote');
  const logged = logs.find((l) => l.msg === 'unhandled error');
  t.is(logged?.reqId, error.requestId);
  t.regex(JSON.stringify(logged?.err), /secret internals.*TypeError|TypeError.*secret internals/s);
});

test('an AppError keeps its status, code, message and details', async (t) => {
  const { url } = await startTestApp(t, {
    extend: (app) =>
      app.use(async (ctx) => {
        ctx.set('Content-Disposition', 'attachment; filename="half-made.svs"');
        throw new AppError(409, 'slide_exists', 'That slide is already in the catalog', { details: { slide: 'x' } });
      }),
  });
  const response = await fetch(url('/anything'));
  t.is(response.status, 409);
  t.is(response.headers.get('content-disposition'), null, 'headers of the abandoned success are dropped');
  t.like(await response.json(), {
    error: { code: 'slide_exists', message: 'That slide is already in the catalog', details: { slide: 'x' } },
  });
});

test('a sane incoming X-Request-Id is kept; anything else is replaced', async (t) => {
  const { url, logs } = await startTestApp(t);
  const kept = await fetch(url('/healthz'), { headers: { 'x-request-id': 'nginx-4f2a9c' } });
  t.is(kept.headers.get('x-request-id'), 'nginx-4f2a9c');
  const replaced = await fetch(url('/healthz'), { headers: { 'x-request-id': 'bad id\twith "quotes"' } });
  t.regex(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  await replaced.arrayBuffer();
  t.truthy(await logLine(logs, (l) => l.reqId === 'nginx-4f2a9c' && l.msg === 'request' && l.status === 200));
});

test('responses carry security headers', async (t) => {
  const { url } = await startTestApp(t);
  const { headers } = await fetch(url('/healthz'));
  t.is(headers.get('x-content-type-options'), 'nosniff');
  t.is(headers.get('x-frame-options'), 'DENY');
  t.is(headers.get('referrer-policy'), 'same-origin');
  t.regex(headers.get('content-security-policy') ?? '', /default-src 'self'.*frame-ancestors 'none'/);
  t.is(headers.get('x-powered-by'), null);
});

test('each request is logged once with method, status and duration', async (t) => {
  const { url, logs } = await startTestApp(t);
  const response = await fetch(url('/missing'));
  const id = response.headers.get('x-request-id');
  await response.arrayBuffer();
  await logLine(logs, (l) => l.msg === 'request' && l.reqId === id);
  const lines = logs.filter((l) => l.msg === 'request' && l.reqId === id);
  t.is(lines.length, 1);
  t.like(lines[0], { method: 'GET', url: '/missing', status: 404 });
  t.is(typeof lines[0]?.ms, 'number');
});
