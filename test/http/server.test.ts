import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import Koa from 'koa';
import { ExitCode, FatalError } from '../../server/errors.js';
import { listen } from '../../server/http/server.js';
import { memoryLogger } from '../support/logs.js';

/**
 * An app whose one route answers after `ms` milliseconds: a stand-in for a
 * slow tile or download. `arrived` resolves when a request is being handled.
 */
function slowApp(ms: number): Koa & { arrived: Promise<void> } {
  const app = new Koa();
  let signal!: () => void;
  const arrived = new Promise<void>((resolve) => (signal = resolve));
  app.use(async (ctx) => {
    signal();
    // Stop waiting when the connection is cut, so no timer outlives the test.
    const abandoned = new AbortController();
    ctx.res.once('close', () => abandoned.abort());
    await sleep(Number(ctx.query.ms ?? ms), undefined, { signal: abandoned.signal }).catch(() => undefined);
    ctx.body = 'done';
  });
  return Object.assign(app, { arrived });
}

test('closing lets an in-flight request finish and refuses new connections', async (t) => {
  const { log } = memoryLogger();
  const app = slowApp(300);
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  const inFlight = fetch(`${http.url}/?ms=300`).then(async (r) => ({ status: r.status, body: await r.text() }));
  await app.arrived;

  const closed = http.close(5000);
  await t.throwsAsync(fetch(`${http.url}/?ms=0`), undefined, 'no new connections while draining');
  t.deepEqual(await inFlight, { status: 200, body: 'done' });
  t.deepEqual(await closed, { cut: 0 });
});

test('closing cuts requests that outlast the bound, and says so', async (t) => {
  const { log, lines } = memoryLogger();
  const app = slowApp(60_000);
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  const stuck = new Promise<string>((resolve) => {
    const req = request(`${http.url}/`, (res) => resolve(`answered ${res.statusCode}`));
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end();
  });
  await app.arrived;
  t.deepEqual(await http.close(200), { cut: 1 });
  t.is(await stuck, 'ECONNRESET');
  t.true(lines.some((l) => l.msg === 'shutdown timeout: cutting requests still in flight' && l.requests === 1));
});

test('idle keep-alive connections do not hold the shutdown', async (t) => {
  const { log } = memoryLogger();
  const http = await listen(slowApp(0), { port: 0, host: '127.0.0.1', log });
  const response = await fetch(`${http.url}/`, { keepalive: true });
  t.is(await response.text(), 'done');
  t.deepEqual(await http.close(30_000), { cut: 0 });
});

test('a port in use is a FatalError that names the port and what to do', async (t) => {
  const { log } = memoryLogger();
  const first = await listen(slowApp(0), { port: 0, host: '127.0.0.1', log });
  t.teardown(() => first.close(1000).then(() => undefined));
  const error = await t.throwsAsync(listen(slowApp(0), { port: first.port, host: '127.0.0.1', log }), { instanceOf: FatalError });
  t.is(error?.exitCode, ExitCode.network);
  t.is(error?.message, `http: port ${first.port} on 127.0.0.1 is already in use. Stop the other process or choose another port with PORT`);
});

test('an address that is not on this machine is a FatalError', async (t) => {
  const { log } = memoryLogger();
  const error = await t.throwsAsync(listen(slowApp(0), { port: 0, host: '192.0.2.1', log }), { instanceOf: FatalError });
  t.regex(error?.message ?? '', /cannot listen on 192\.0\.2\.1: no such address on this machine/);
});
