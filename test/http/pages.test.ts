import { bodyParser } from '@koa/bodyparser';
import test, { type ExecutionContext } from 'ava';
import Koa, { type Middleware } from 'koa';
import { UsersRepository } from '../../server/access/users.repository.js';
import { AuditRepository } from '../../server/audit/index.js';
import { errorHandler } from '../../server/http/middleware/error-handler.js';
import { requestContext } from '../../server/http/middleware/request-context.js';
import { pageRoutes } from '../../server/http/routes/pages.js';
import { mountRoutes } from '../../server/http/route.js';
import type { Services } from '../../server/services.js';
import { listen } from '../../server/http/server.js';
import { ensureDefaultGuide, PagesRepository, PagesService } from '../../server/pages/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';


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

/** The pages routes behind the app's own error handling and body parser, on a migrated database, with a clock the test sets. */
async function start(t: ExecutionContext) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const clock = { now: new Date('2026-11-29T09:00:00.000Z') };
  const knex = database.db.knex;
  const audit = new AuditRepository(knex, () => clock.now);
  const repository = new PagesRepository(knex);
  const pages = new PagesService(repository, audit, () => clock.now);
  const admin = await new UsersRepository(knex).create({ email: 'admin@example.org', passwordHash: null, level: 'L1', roles: ['admin'], emailConfirmedAt: clock.now });

  const { log } = memoryLogger();
  const app = new Koa();
  app.silent = true;
  app.use(requestContext(log));
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: '1mb', encoding: 'utf-8' }));
  app.context.services = { pages } as unknown as Services;
  app.use(standInAuthentication);
  const router = mountRoutes(pageRoutes, { operatorAddress: () => false });
  app.use(router.routes());
  app.use(router.allowedMethods());
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(() => http.close(1000).then(() => undefined));

  const call = async (method: string, path: string, body?: unknown, asAdmin = true) => {
    const headers: Record<string, string> = asAdmin ? { 'X-Test-Admin': String(admin.id) } : {};
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(`${http.url}${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Json) : undefined };
  };
  return { call, clock, audit, repository, admin: admin.id, knex };
}

const page = (fields: Record<string, unknown> = {}) => ({ kind: 'news', slug: 'scanner-upgrade', title: 'Scanner upgrade', body: 'New **scanner** in room 3.', ...fields });

test(`an administrator writes, publishes, edits, unpublishes and deletes a news item; readers see it only while published; every write is audited (${testDialect})`, async (t) => {
  const { call, clock, audit, admin } = await start(t);

  const created = await call('POST', '/api/admin/pages', page());
  t.is(created.status, 201);
  t.is(created.headers.get('location'), `/api/admin/pages/${created.body!.id}`);
  t.is(created.headers.get('cache-control'), 'no-store');
  t.like(created.body, { kind: 'news', slug: 'scanner-upgrade', published: false, publishedAt: null, authorId: admin, html: '<p>New <strong>scanner</strong> in room 3.</p>\n' });
  const id = created.body!.id as number;

  t.is((await call('GET', '/api/news/scanner-upgrade', undefined, false)).status, 404, 'a draft is not public');
  t.deepEqual((await call('GET', '/api/news', undefined, false)).body, { items: [], total: 0, page: 1, pageSize: 10 });
  t.deepEqual((await call('GET', '/api/admin/pages?kind=news')).body!.items.map((p: { id: number }) => p.id), [id], 'administrators see drafts');

  clock.now = new Date('2026-11-29T10:00:00.000Z');
  const published = await call('POST', `/api/admin/pages/${id}/publish`);
  t.is(published.status, 200);
  t.like(published.body, { published: true, publishedAt: '2026-11-29T10:00:00.000Z' });
  const read = await call('GET', '/api/news/scanner-upgrade', undefined, false);
  t.is(read.status, 200);
  t.deepEqual(read.body, {
    slug: 'scanner-upgrade',
    title: 'Scanner upgrade',
    html: '<p>New <strong>scanner</strong> in room 3.</p>\n',
    publishedAt: '2026-11-29T10:00:00.000Z',
    updatedAt: '2026-11-29T10:00:00.000Z',
  });
  t.is((await call('POST', `/api/admin/pages/${id}/publish`)).status, 409);

  clock.now = new Date('2026-11-29T11:00:00.000Z');
  const edited = await call('PUT', `/api/admin/pages/${id}`, { slug: 'new-scanner', title: 'New scanner', body: 'Room 4 now.' });
  t.is(edited.status, 200);
  t.like(edited.body, { slug: 'new-scanner', title: 'New scanner', body: 'Room 4 now.', publishedAt: '2026-11-29T10:00:00.000Z', updatedAt: '2026-11-29T11:00:00.000Z' });
  t.is((await call('GET', '/api/news/scanner-upgrade', undefined, false)).status, 404, 'the old slug is gone');
  t.is((await call('GET', '/api/news/new-scanner', undefined, false)).body!.html, '<p>Room 4 now.</p>\n');

  t.like((await call('POST', `/api/admin/pages/${id}/unpublish`)).body, { published: false, publishedAt: null });
  t.is((await call('GET', '/api/news/new-scanner', undefined, false)).status, 404);
  t.is((await call('POST', `/api/admin/pages/${id}/unpublish`)).status, 409);

  const deleted = await call('DELETE', `/api/admin/pages/${id}`);
  t.is(deleted.status, 204);
  t.is((await call('GET', `/api/admin/pages/${id}`)).status, 404);
  t.is((await call('DELETE', `/api/admin/pages/${id}`)).status, 404);

  const events = (await audit.list({ subjectType: 'page', limit: 20, offset: 0 })).items.reverse();
  t.deepEqual(events.map((e) => e.action), ['page.created', 'page.published', 'page.updated', 'page.unpublished', 'page.deleted']);
  for (const event of events) {
    t.is(event.actorId, admin);
    t.regex(event.ip ?? '', /127\.0\.0\.1$/);
    t.is(event.subjectId, String(id));
  }
});

test(`news is listed newest first a page at a time; the guide in its order; both as sanitised HTML (${testDialect})`, async (t) => {
  const { call, clock, repository } = await start(t);
  await ensureDefaultGuide(repository, new Date('2026-10-01T00:00:00.000Z'));
  for (const [i, slug] of ['first', 'second', 'third'].entries()) {
    clock.now = new Date(Date.UTC(2026, 10, 1 + i));
    t.is((await call('POST', '/api/admin/pages', page({ slug, title: slug, publish: true }))).status, 201);
  }
  await call('POST', '/api/admin/pages', page({ slug: 'unpublished' }));
  await call('POST', '/api/admin/pages', page({ kind: 'guide', slug: 'downloads', title: 'Downloading data', position: 2, publish: true }));
  await call('POST', '/api/admin/pages', page({ kind: 'guide', slug: 'draft-chapter', title: 'Draft' }));

  const first = await call('GET', '/api/news?pageSize=2', undefined, false);
  t.is(first.status, 200);
  t.like(first.body, { total: 3, page: 1, pageSize: 2 });
  t.deepEqual(first.body!.items.map((p: { slug: string }) => p.slug), ['third', 'second']);
  t.is(first.body!.items[0].html, '<p>New <strong>scanner</strong> in room 3.</p>\n');
  t.deepEqual((await call('GET', '/api/news?page=2&pageSize=2', undefined, false)).body!.items.map((p: { slug: string }) => p.slug), ['first']);
  t.deepEqual((await call('GET', '/api/news?page=3&pageSize=2', undefined, false)).body!.items, []);

  const guide = await call('GET', '/api/guide', undefined, false);
  t.deepEqual(guide.body!.items.map((p: { slug: string; title: string }) => [p.slug, p.title]), [
    ['getting-started', 'Getting started'],
    ['downloads', 'Downloading data'],
  ]);
  t.false('html' in guide.body!.items[0], 'the guide list is a table of contents');
  const started = await call('GET', '/api/guide/getting-started', undefined, false);
  t.is(started.status, 200);
  t.regex(started.body!.html, /<h2>2\. Apply for a data use agreement<\/h2>/);
  t.is((await call('GET', '/api/guide/draft-chapter', undefined, false)).status, 404);
  t.is((await call('GET', '/api/news/downloads', undefined, false)).status, 404, 'a guide page is not news');
});

test(`hostile Markdown is stored as written and served without scripts, handlers or javascript: links (${testDialect})`, async (t) => {
  const { call } = await start(t);
  const body = [
    '# Notice',
    '<script>alert(1)</script>',
    '<img src="x" onerror="alert(2)">',
    '[click](javascript:alert(3)) [tab](java&#x09;script:alert(4)) <a href="JAVASCRIPT:alert(5)">caps</a>',
    '<iframe src="https://evil.example"></iframe><form action="/x"><input name="q"></form>',
    '<div onclick="alert(6)" style="position:fixed">styled</div>',
    '![pixel](data:image/png;base64,AAAA) [ok](https://example.org/ "Example")',
  ].join('\n\n');
  const created = await call('POST', '/api/admin/pages', page({ body, publish: true }));
  t.is(created.status, 201);
  t.is(created.body!.body, body, 'the Markdown is kept as written');
  const { html } = (await call('GET', '/api/news/scanner-upgrade', undefined, false)).body as { html: string };
  for (const forbidden of [/<script/i, /onerror/i, /onclick/i, /javascript:/i, /<iframe/i, /<form/i, /<input/i, /style=/i, /data:/i, /alert\(/]) {
    t.notRegex(html, forbidden);
  }
  t.regex(html, /<h1>Notice<\/h1>/);
  t.regex(html, /<a href="https:\/\/example\.org\/" title="Example" rel="noopener noreferrer nofollow">ok<\/a>/);
  t.regex(html, /<div>styled<\/div>/);
});

test(`bad input is a 400 that names every problem, and nothing is written (${testDialect})`, async (t) => {
  const { call, audit, knex } = await start(t);
  const cases: [unknown, RegExp][] = [
    [{}, /kind is missing.*slug is missing.*title is missing.*body is missing/],
    [page({ kind: 'blog' }), /kind must be news or guide/],
    [page({ slug: 'Has Spaces' }), /slug must be lower-case letters and digits/],
    [page({ slug: 'a--b' }), /slug must be lower-case/],
    [page({ slug: 'x'.repeat(101) }), /slug is at most 100 characters/],
    [page({ title: '   ' }), /title is empty/],
    [page({ title: 't'.repeat(201) }), /title is at most 200 characters/],
    [page({ title: 'Hello <b>world</b>' }), /title is plain text: HTML tags are not allowed/],
    [page({ title: 'two\nlines' }), /title is one line of text/],
    [page({ body: 'é'.repeat(50_001) }), /body is 100002 bytes; at most 100000 \(100 kB\) are allowed/],
    [page({ body: 42 }), /body must be Markdown text/],
    [page({ position: 1.5 }), /position must be a whole number/],
    [page({ publish: 'yes' }), /publish must be true or false/],
    [page({ author: 'someone' }), /author is not a field here/],
    [[page()], /must be a JSON object/],
  ];
  for (const [input, message] of cases) {
    const response = await call('POST', '/api/admin/pages', input);
    t.is(response.status, 400, JSON.stringify(input).slice(0, 80));
    t.is(response.body!.error.code, 'invalid_request');
    t.regex(response.body!.error.message, message);
  }
  const detailed = await call('POST', '/api/admin/pages', page({ slug: 'BAD', title: '' }));
  t.deepEqual(detailed.body!.error.details.problems.map((p: { field: string }) => p.field), ['slug', 'title']);
  const notJson = await call('POST', '/api/admin/pages', '{"kind": "news",');
  t.is(notJson.status, 400);
  t.is(notJson.body!.error.code, 'invalid_json');

  t.is((await knex('pages').count({ n: '*' }).first())!.n, 0);
  t.is((await audit.list({ limit: 1, offset: 0 })).total, 0);

  const created = await call('POST', '/api/admin/pages', page());
  t.is(created.status, 201, 'a title of exactly 200 characters or a body of exactly 100 kB would pass too');
  const renamed = await call('PUT', `/api/admin/pages/${created.body!.id}`, { slug: 'x', title: 'X' });
  t.is(renamed.status, 400);
  t.regex(renamed.body!.error.message, /body is missing/);
  t.regex((await call('PUT', `/api/admin/pages/${created.body!.id}`, { ...page() })).body!.error.message, /kind is not a field here/);
  t.is((await call('PUT', '/api/admin/pages/999', { slug: 'x', title: 'X', body: '' })).status, 404);
  for (const bad of ['abc', '0', '-1', '1.5', '99999999999']) t.is((await call('GET', `/api/admin/pages/${bad}`)).status, 404, bad);

  for (const [query, message] of [
    ['pageSize=0', /pageSize must be a whole number from 1 to 50/],
    ['pageSize=51', /pageSize must be a whole number from 1 to 50/],
    ['page=x', /page must be a whole number/],
    ['page=1&page=2', /page is given more than once/],
    ['sort=title', /sort is not a parameter here/],
  ] as const) {
    const response = await call('GET', `/api/news?${query}`, undefined, false);
    t.is(response.status, 400, query);
    t.is(response.body!.error.code, 'invalid_query');
    t.regex(response.body!.error.message, message);
  }
  t.is((await call('GET', '/api/guide?page=2', undefined, false)).status, 400);
  t.is((await call('GET', '/api/admin/pages?kind=blog')).status, 400);
  t.is((await call('GET', '/api/news/..%2Fsecret', undefined, false)).status, 404);
});

test(`a slug taken within the kind is a 409; the same slug in the other kind is fine (${testDialect})`, async (t) => {
  const { call } = await start(t);
  t.is((await call('POST', '/api/admin/pages', page())).status, 201);
  const taken = await call('POST', '/api/admin/pages', page({ title: 'Other' }));
  t.is(taken.status, 409);
  t.like(taken.body!.error, { code: 'slug_taken', message: 'A news item with the slug "scanner-upgrade" exists already; choose another slug' });
  t.is((await call('POST', '/api/admin/pages', page({ kind: 'guide' }))).status, 201);
  const other = await call('POST', '/api/admin/pages', page({ slug: 'other' }));
  t.is((await call('PUT', `/api/admin/pages/${other.body!.id}`, { slug: 'scanner-upgrade', title: 'X', body: '' })).status, 409);
});

test(`every admin route needs the administrator; the public ones need nobody (${testDialect})`, async (t) => {
  const { call } = await start(t);
  const id = (await call('POST', '/api/admin/pages', page({ publish: true }))).body!.id as number;
  for (const [method, path, body] of [
    ['GET', '/api/admin/pages'],
    ['GET', `/api/admin/pages/${id}`],
    ['POST', '/api/admin/pages', page({ slug: 'sneaky' })],
    ['PUT', `/api/admin/pages/${id}`, { slug: 'x', title: 'x', body: 'x' }],
    ['POST', `/api/admin/pages/${id}/publish`],
    ['POST', `/api/admin/pages/${id}/unpublish`],
    ['DELETE', `/api/admin/pages/${id}`],
  ] as [string, string, unknown?][]) {
    const response = await call(method, path, body, false);
    t.is(response.status, 401, `${method} ${path}`);
    t.is(response.body!.error.code, 'unauthenticated');
  }
  for (const path of ['/api/news', '/api/news/scanner-upgrade', '/api/guide']) t.is((await call('GET', path, undefined, false)).status, 200, path);
  t.is((await call('GET', `/api/admin/pages/${id}`)).body!.slug, 'scanner-upgrade', 'nothing changed');
});
