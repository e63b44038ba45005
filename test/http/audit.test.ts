import { bodyParser } from '@koa/bodyparser';
import test, { type ExecutionContext } from 'ava';
import { parse } from 'csv-parse/sync';
import Koa, { type Middleware } from 'koa';
import { UsersRepository } from '../../server/access/users.repository.js';
import { AUDIT_CSV_COLUMNS, AuditRepository, AuditService } from '../../server/audit/index.js';
import { toDbTime } from '../../server/db/index.js';
import { errorHandler } from '../../server/http/middleware/error-handler.js';
import { requestContext } from '../../server/http/middleware/request-context.js';
import { mountRoutes } from '../../server/http/route.js';
import { auditRoutes } from '../../server/http/routes/audit.js';
import { listen } from '../../server/http/server.js';
import type { Services } from '../../server/services.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { logLine, memoryLogger } from '../support/logs.js';


/** A JSON answer, read field by field in assertions. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests check the shapes themselves
type Json = any;
/**
 * TEST STAND-IN for the authentication middleware, not a security mechanism:
 * a request with `X-Test-Admin: <user id>` is that administrator's, anything
 * else is anonymous. The routes' own access declarations then apply; the
 * authentication middleware's tests cover who is an administrator.
 */
const standInAuthentication: Middleware = async (ctx, next) => {
  const id = ctx.get('X-Test-Admin');
  if (/^\d+$/.test(id)) ctx.state.requester = { user: { id: Number(id) }, level: 'L1', roles: ['admin'], via: 'token' };
  await next();
};

/** The audit routes as the app mounts them, behind the app's own error handling and the stand-in, calling `audit`. */
function auditApp(audit: AuditService, log: ReturnType<typeof memoryLogger>['log']): Koa {
  const app = new Koa();
  app.silent = true;
  app.context.services = { audit } as unknown as Services;
  app.use(requestContext(log));
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'] }));
  app.use(standInAuthentication);
  const router = mountRoutes(auditRoutes, { operatorAddress: () => false });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

/** The audit routes behind the app's own error handling, on a migrated database holding a few events. */
async function start(t: ExecutionContext) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const knex = database.db.knex;
  const clock = { now: new Date('2026-11-29T09:00:00.000Z') };
  const repository = new AuditRepository(knex, () => clock.now);
  const users = new UsersRepository(knex);
  const admin = (await users.create({ email: 'admin@example.org', passwordHash: null, level: 'L1', roles: ['admin'], emailConfirmedAt: clock.now })).id;
  const researcher = (await users.create({ email: 'researcher@example.org', passwordHash: null, level: 'L2', roles: [], emailConfirmedAt: clock.now })).id;

  const events: [string, string, number | null, string?, string?, Record<string, unknown>?][] = [
    ['2026-11-01T08:00:00.000Z', 'auth.login', researcher, 'user', String(researcher)],
    ['2026-11-02T08:00:00.000Z', 'dua.applied', researcher, 'dua_application', '1', { project: 'Liver =SUM(A1)' }],
    ['2026-11-03T08:00:00.000Z', 'dua.approved', admin, 'dua_application', '1', { userId: researcher }],
    ['2026-11-03T23:00:00.000Z', 'download.slide', researcher, 'slide', '=HYPERLINK("http://evil.example")'],
    ['2026-11-04T00:00:00.000Z', 'auth.login_failed', null, undefined, undefined, { email: 'nobody@example.org' }],
  ];
  for (const [at, action, actorId, subjectType, subjectId, details] of events) {
    clock.now = new Date(at);
    await repository.record({ action, actorId, ip: '10.0.0.1', ...(subjectType ? { subjectType, subjectId } : {}), ...(details ? { details } : {}) });
  }
  clock.now = new Date('2026-11-29T09:00:00.000Z');

  const { log } = memoryLogger();
  const http = await listen(auditApp(new AuditService(repository), log), { port: 0, host: '127.0.0.1', log });
  t.teardown(() => http.close(1000).then(() => undefined));

  const get = (path: string, asAdmin = true) => fetch(`${http.url}${path}`, { headers: asAdmin ? { 'X-Test-Admin': String(admin) } : {} });
  const json = async (path: string) => {
    const response = await get(path);
    return { status: response.status, headers: response.headers, body: (await response.json()) as Json };
  };
  return { get, json, repository, knex, admin, researcher };
}

const actionsOf = (body: Json) => body.items.map((e: { action: string }) => e.action);

test(`GET /api/admin/audit lists events newest first with filters and pages (${testDialect})`, async (t) => {
  const { json, admin, researcher } = await start(t);
  const all = await json('/api/admin/audit');
  t.is(all.status, 200);
  t.is(all.headers.get('cache-control'), 'no-store');
  t.like(all.body, { total: 5, page: 1, pageSize: 50 });
  t.deepEqual(actionsOf(all.body), ['auth.login_failed', 'download.slide', 'dua.approved', 'dua.applied', 'auth.login']);
  t.deepEqual(all.body.items[2], {
    id: all.body.items[2].id,
    at: '2026-11-03T08:00:00.000Z',
    action: 'dua.approved',
    actorId: admin,
    actorEmail: 'admin@example.org',
    subjectType: 'dua_application',
    subjectId: '1',
    ip: '10.0.0.1',
    details: { userId: researcher },
  });

  t.deepEqual(actionsOf((await json('/api/admin/audit?action=dua.approved')).body), ['dua.approved']);
  t.deepEqual(actionsOf((await json('/api/admin/audit?action=dua.*')).body), ['dua.approved', 'dua.applied']);
  t.deepEqual(actionsOf((await json(`/api/admin/audit?actor=${researcher}`)).body), ['download.slide', 'dua.applied', 'auth.login']);
  t.deepEqual(actionsOf((await json('/api/admin/audit?subjectType=dua_application&subjectId=1')).body), ['dua.approved', 'dua.applied']);
  t.deepEqual(actionsOf((await json('/api/admin/audit?from=2026-11-02&to=2026-11-03')).body), ['download.slide', 'dua.approved', 'dua.applied'], 'a day as `to` includes that day');
  t.deepEqual(actionsOf((await json('/api/admin/audit?from=2026-11-03T17:00:00%2B09:00&to=2026-11-04T00:00:00Z')).body), ['download.slide', 'dua.approved'], 'times with zones');
  const second = await json('/api/admin/audit?page=2&pageSize=2');
  t.like(second.body, { total: 5, page: 2, pageSize: 2 });
  t.deepEqual(actionsOf(second.body), ['dua.approved', 'dua.applied']);
});

test(`a bad audit query is a 400 that names each problem (${testDialect})`, async (t) => {
  const { json } = await start(t);
  for (const [query, message] of [
    ['who=me', /^who is not a parameter here$/],
    ['actor=admin', /actor must be a whole number/],
    ['actor=0', /actor must be a whole number from 1/],
    ['from=yesterday', /from must be a date \(2026-11-29, a UTC day\) or a time with its zone/],
    ['to=2026-02-30', /to is not a real date: 2026-02-30/],
    ['from=2026-13-01T00:00:00Z', /from is not a real date/],
    ['from=2026-11-29T10:00:00', /from must be a date .* or a time with its zone/],
    ['from=2026-11-05&to=2026-11-01', /from must be before to/],
    ['pageSize=501', /pageSize must be a whole number from 1 to 500/],
    ['action=DROP%20TABLE', /action must be an action name such as dua.approved, or a family such as dua\.\*/],
    ['action=a&action=b', /action is given more than once/],
  ] as const) {
    const response = await json(`/api/admin/audit?${query}`);
    t.is(response.status, 400, query);
    t.is(response.body.error.code, 'invalid_query');
    t.regex(response.body.error.message, message, query);
  }
  const both = await json('/api/admin/audit?actor=x&pageSize=0');
  t.deepEqual(both.body.error.details.problems.map((p: { field: string }) => p.field), ['actor', 'pageSize'], 'every problem at once');
  t.is((await json('/api/admin/audit.csv?page=2')).status, 400, 'the export has no pages');
});

test(`GET /api/admin/audit.csv downloads every match oldest first, formulas defused, and the export is itself audited (${testDialect})`, async (t) => {
  const { get, repository, admin, researcher } = await start(t);
  const response = await get('/api/admin/audit.csv');
  t.is(response.status, 200);
  t.is(response.headers.get('content-type'), 'text/csv; charset=utf-8');
  t.regex(response.headers.get('content-disposition') ?? '', /^attachment; filename="slidebank-audit-\d{4}-\d\d-\d\dT[\d-]+Z\.csv"$/);
  t.is(response.headers.get('cache-control'), 'no-store');
  const text = await response.text();
  t.true(text.startsWith(`${AUDIT_CSV_COLUMNS.join(',')}\n`));
  const rows = parse(text, { columns: true }) as Record<string, string>[];
  t.deepEqual(rows.map((r) => r.action), ['auth.login', 'dua.applied', 'dua.approved', 'download.slide', 'auth.login_failed', 'audit.exported'], 'the export is recorded before it runs, so it lists itself');
  t.like(rows[2], { at: '2026-11-03T08:00:00.000Z', actor_id: String(admin), actor_email: 'admin@example.org', subject_type: 'dua_application', subject_id: '1', ip: '10.0.0.1' });
  t.deepEqual(JSON.parse(rows[2]!.details!), { userId: researcher });
  t.is(rows[3]!.subject_id, `'=HYPERLINK("http://evil.example")`, 'a cell that would be a formula starts with a quote');
  t.like(rows[4], { actor_id: '', actor_email: '', subject_type: '', subject_id: '' });

  const filtered = parse(await (await get('/api/admin/audit.csv?action=dua.*&to=2026-11-02')).text(), { columns: true }) as Record<string, string>[];
  t.deepEqual(filtered.map((r) => r.action), ['dua.applied']);

  const exports = await repository.list({ action: 'audit.exported', limit: 10, offset: 0 });
  t.is(exports.total, 2);
  t.like(exports.items[0], { actorId: admin, details: { filters: { action: 'dua.*', to: '2026-11-03T00:00:00.000Z' } } });
  t.regex(exports.items[0]!.ip ?? '', /127\.0\.0\.1$/);
});

test(`a large export streams whole, across the repository's batches (${testDialect})`, async (t) => {
  const { get, knex } = await start(t);
  const at = toDbTime(new Date('2026-11-10T00:00:00.000Z'));
  const bulk = Array.from({ length: 2_500 }, (_, i) => ({ at, action: 'download.slide', actor_id: null, subject_type: 'slide', subject_id: String(i), ip: null, details: null }));
  for (let i = 0; i < bulk.length; i += 500) await knex('audit_log').insert(bulk.slice(i, i + 500));
  const rows = parse(await (await get('/api/admin/audit.csv?action=download.slide')).text(), { columns: true }) as Record<string, string>[];
  t.is(rows.length, 2_501);
  t.deepEqual(rows.slice(1).map((r) => Number(r.subject_id)), bulk.map((_, i) => i), 'in order, none twice, none missing');
});

test(`both audit routes need the administrator (${testDialect})`, async (t) => {
  const { get, repository } = await start(t);
  for (const path of ['/api/admin/audit', '/api/admin/audit.csv']) {
    const response = await get(path, false);
    t.is(response.status, 401, path);
    t.is(((await response.json()) as { error: { code: string } }).error.code, 'unauthenticated');
  }
  t.is((await repository.list({ action: 'audit.exported', limit: 1, offset: 0 })).total, 0, 'a refused export is not an export');
});

test(`an export that fails part-way cuts the response, so a partial file is never taken for a whole one, and says so in the log (${testDialect})`, async (t) => {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  class FailingAfterOneBatch extends AuditRepository {
    override async *entries() {
      yield { id: 1, at: new Date(), action: 'auth.login', actorId: null, actorEmail: null, subjectType: null, subjectId: null, ip: null, details: {} };
      await new Promise((resolve) => setTimeout(resolve, 50));
      throw new Error('connection lost');
    }
  }
  const { log, lines } = memoryLogger();
  const http = await listen(auditApp(new AuditService(new FailingAfterOneBatch(database.db.knex)), log), { port: 0, host: '127.0.0.1', log });
  t.teardown(() => http.close(1000).then(() => undefined));

  const response = await fetch(`${http.url}/api/admin/audit.csv`, { headers: { 'X-Test-Admin': '1' } });
  t.is(response.status, 200, 'the rows had started');
  await t.throwsAsync(response.text(), undefined, 'the body ends in a network error, not a clean end');
  t.truthy(await logLine(lines, (line) => line.msg === 'audit export failed part-way; the response was cut'));
});
