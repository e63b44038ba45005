import test from 'ava';
import { z } from 'zod';
import { sha256Hex } from '../../server/access/secrets.js';
import { MAX_ACTIVE_TOKENS } from '../../server/access/tokens.service.js';
import { toDbTime } from '../../server/db/index.js';
import { atLeast } from '../../server/http/access.js';
import { mountRoutes, route } from '../../server/http/route.js';
import { Client, createUser, logIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

/** Personal access tokens: made once and shown once, listed by prefix, revoked, and good wherever a session is. */

type ErrorBody = { error: { code: string; message: string } };
type TokenView = { id: number; name: string; prefix: string; scope: string; status: string; createdAt: string; lastUsedAt: string | null; expiresAt: string | null; revokedAt: string | null };
type Created = TokenView & { token: string };

/** A route declared as the download routes are: L2 in force. */
const downloadProbe = route({
  method: 'get',
  path: '/test/download-probe',
  tag: 'Test',
  summary: 'Answers whoever has L2 in force',
  access: atLeast('L2'),
  response: { description: 'Allowed', schema: z.object({ ok: z.boolean() }) },
  handle: () => ({ ok: true }),
});

async function appWithDownloadProbe(t: Parameters<typeof startTestApp>[0]): Promise<TestApp> {
  return startTestApp(t, { extend: (koa) => void koa.use(mountRoutes([downloadProbe], { operatorAddress: () => false }).routes()) });
}

test(`tokens are made, shown once, listed by prefix, used as Bearer, and revoked (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const browser = await logIn(app, user.email);

  const made = await browser.post<Created>('/api/tokens', { name: 'nightly sync', expiresInDays: 30 });
  t.is(made.status, 201);
  t.regex(made.body.token, /^sbk_[A-Za-z0-9_-]{43}$/);
  t.is(made.body.prefix, made.body.token.slice(0, 12));
  t.like(made.body, { name: 'nightly sync', scope: 'all', status: 'active', lastUsedAt: null, revokedAt: null });
  t.is(Math.round((Date.parse(made.body.expiresAt!) - Date.parse(made.body.createdAt)) / 86_400_000), 30);

  const row = await app.database.db.knex('access_tokens').where({ id: made.body.id }).first();
  t.is(row.token_hash, sha256Hex(made.body.token), 'stored as its SHA-256');
  t.false(JSON.stringify(row).includes(made.body.token.slice(12)), 'the secret part is nowhere in the row');

  const list = await browser.get<{ items: (TokenView & { token?: string })[] }>('/api/tokens');
  t.is(list.status, 200);
  t.is(list.body.items.length, 1);
  t.is(list.body.items[0]!.token, undefined, 'never shown again');
  t.like(list.body.items[0], { id: made.body.id, prefix: made.body.prefix, name: 'nightly sync', status: 'active' });

  const script = new Client(app, made.body.token);
  const me = await script.get<{ email: string; via: string; csrfToken?: string }>('/api/auth/me');
  t.is(me.status, 200);
  t.like(me.body, { email: user.email, via: 'token' });
  t.is(me.body.csrfToken, undefined);
  t.deepEqual(me.headers.getSetCookie(), [], 'a bearer request makes no session');
  t.is((await script.get('/api/slides')).status, 200, 'works wherever a session does');
  const used = await browser.get<{ items: TokenView[] }>('/api/tokens');
  t.not(used.body.items[0]!.lastUsedAt, null, 'last use is recorded');

  // Bearer requests need no CSRF token: the browser never adds the header by itself.
  const second = await browser.post<Created>('/api/tokens', { name: 'second', scope: 'read' });
  t.is((await script.delete(`/api/tokens/${second.body.id}`)).status, 204);
  t.is((await new Client(app, second.body.token).get<ErrorBody>('/api/auth/me')).body.error.code, 'token_revoked');

  t.is((await browser.delete(`/api/tokens/${made.body.id}`)).status, 204);
  const revoked = await script.get<ErrorBody>('/api/auth/me');
  t.is(revoked.status, 401);
  t.is(revoked.body.error.code, 'token_revoked');
  t.regex(revoked.headers.get('www-authenticate') ?? '', /^Bearer realm="slidebank", error="invalid_token"$/);
  t.is((await browser.delete(`/api/tokens/${made.body.id}`)).status, 204, 'revoking twice is harmless');
  const after = await browser.get<{ items: TokenView[] }>('/api/tokens');
  t.deepEqual(after.body.items.map((i) => i.status), ['revoked', 'revoked']);
  t.deepEqual(app.audit.actions().filter((a) => a.startsWith('token.')), ['token.created', 'token.created', 'token.revoked', 'token.revoked']);
  t.false(JSON.stringify(app.audit.events).includes(made.body.token), 'no token in the audit log');
});

test(`expired, malformed and unknown tokens are 401, and never fall back to the session (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const browser = await logIn(app, user.email);
  const made = await browser.post<Created>('/api/tokens', { name: 'short-lived', expiresInDays: 1 });
  await app.database.db.knex('access_tokens').where({ id: made.body.id }).update({ expires_at: toDbTime(new Date(Date.now() - 1000)) });
  const expired = await new Client(app, made.body.token).get<ErrorBody>('/api/slides');
  t.is(expired.status, 401);
  t.is(expired.body.error.code, 'token_expired');
  t.is((await browser.get<{ items: TokenView[] }>('/api/tokens')).body.items[0]!.status, 'expired');

  const cases: [string, string][] = [
    ['Bearer sbk_' + 'A'.repeat(43), 'invalid_token'],
    ['Bearer not-a-token', 'invalid_token'],
    ['Bearer', 'invalid_authorization'],
    ['Basic dXNlcjpwYXNz', 'invalid_authorization'],
    [`Bearer ${made.body.token.slice(0, -1)}x`, 'invalid_token'],
  ];
  for (const [header, code] of cases) {
    // With a valid session cookie alongside: a bad Authorization header is still a 401.
    const answer = await browser.get<ErrorBody>('/api/auth/me', { headers: { authorization: header } });
    t.is(answer.status, 401, header);
    t.is(answer.body.error.code, code, header);
  }
});

test('a token cannot make tokens, and a read-only token cannot write', async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const browser = await logIn(app, user.email);
  const full = new Client(app, (await browser.post<Created>('/api/tokens', { name: 'full' })).body.token);
  const reader = new Client(app, (await browser.post<Created>('/api/tokens', { name: 'reader', scope: 'read' })).body.token);

  const minted = await full.post<ErrorBody>('/api/tokens', { name: 'child' });
  t.is(minted.status, 403);
  t.is(minted.body.error.code, 'session_required');
  t.is((await reader.get('/api/slides')).status, 200);
  const write = await reader.patch<ErrorBody>('/api/account', { name: 'Changed' });
  t.is(write.status, 403);
  t.is(write.body.error.code, 'token_scope');
  t.is((await full.patch('/api/account', { name: 'Changed' })).status, 200);
  t.is((await browser.get<{ items: unknown[] }>('/api/tokens')).body.items.length, 2);
});

test('tokens of one account are invisible to another', async (t) => {
  const app = await startTestApp(t);
  const alice = await logIn(app, (await createUser(app, { level: 'L1' })).email);
  const bob = await logIn(app, (await createUser(app, { level: 'L1' })).email);
  const hers = await alice.post<Created>('/api/tokens', { name: 'alice' });
  const attempt = await bob.delete<ErrorBody>(`/api/tokens/${hers.body.id}`);
  t.is(attempt.status, 404);
  t.is(attempt.body.error.code, 'token_not_found');
  t.deepEqual((await bob.get<{ items: unknown[] }>('/api/tokens')).body.items, []);
  t.is((await new Client(app, hers.body.token).get('/api/auth/me')).status, 200, 'still valid');
  for (const id of ['0', 'abc', '99999']) t.is((await bob.delete(`/api/tokens/${id}`)).status, 404, id);
});

test('bad token requests are answered with 400 and make nothing', async (t) => {
  const app = await startTestApp(t);
  const browser = await logIn(app, (await createUser(app, { level: 'L1' })).email);
  const cases: Record<string, unknown>[] = [
    {},
    { name: '' },
    { name: 'x'.repeat(101) },
    { name: '<script>alert(1)</script>' },
    { name: 'ok', scope: 'admin' },
    { name: 'ok', expiresInDays: 0 },
    { name: 'ok', expiresInDays: 1.5 },
    { name: 'ok', expiresInDays: '30' },
    { name: 'ok', owner: 1 },
  ];
  for (const body of cases) {
    const answer = await browser.post<ErrorBody>('/api/tokens', body);
    t.is(answer.status, 400, JSON.stringify(body));
    t.is(answer.body.error.code, 'invalid_request', JSON.stringify(body));
  }
  t.deepEqual((await browser.get<{ items: unknown[] }>('/api/tokens')).body.items, []);
});

test(`an account holds at most ${MAX_ACTIVE_TOKENS} active tokens`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const browser = await logIn(app, user.email);
  await app.database.db.knex('access_tokens').insert(
    Array.from({ length: MAX_ACTIVE_TOKENS }, (_, i) => ({
      user_id: user.id,
      name: `t${i}`,
      prefix: 'sbk_xxxxxxxx',
      token_hash: sha256Hex(`token ${i}`),
      scope: 'all',
      created_at: toDbTime(new Date()),
    })),
  );
  const refused = await browser.post<ErrorBody>('/api/tokens', { name: 'one more' });
  t.is(refused.status, 409);
  t.is(refused.body.error.code, 'too_many_tokens');
  await app.database.db.knex('access_tokens').where({ name: 't0' }).update({ revoked_at: toDbTime(new Date()) });
  t.is((await browser.post('/api/tokens', { name: 'one more' })).status, 201);
});

test(`a token loses download rights as soon as its owner drops below L2: the level is read on every request (${testDialect})`, async (t) => {
  const app = await appWithDownloadProbe(t);
  const admin = await logIn(app, (await createUser(app, { level: 'L1', roles: ['admin'] })).email);
  const researcher = await createUser(app, { level: 'L2', levelExpiresAt: new Date(Date.now() + 300 * 86_400_000) });
  const script = new Client(app, (await (await logIn(app, researcher.email)).post<Created>('/api/tokens', { name: 'downloads' })).body.token);
  t.is((await script.get('/test/download-probe')).status, 200);
  t.is((await script.get<{ level: string }>('/api/auth/me')).body.level, 'L2');

  // The DUA runs out: the stored level stays L2 until the expiry job runs, but its end date has passed.
  await app.database.db.knex('users').where({ id: researcher.id }).update({ level_expires_at: toDbTime(new Date(Date.now() - 1000)) });
  const lapsed = await script.get<ErrorBody>('/test/download-probe');
  t.is(lapsed.status, 403);
  t.is(lapsed.body.error.code, 'level_required');
  t.like((await script.get('/api/auth/me')).body, { level: 'L1', storedLevel: 'L2' });
  t.is((await script.get('/api/slides')).status, 200, 'still an L1 viewer');

  // Renewed, then lowered by an administrator.
  await app.database.db.knex('users').where({ id: researcher.id }).update({ level_expires_at: toDbTime(new Date(Date.now() + 86_400_000)) });
  t.is((await script.get('/test/download-probe')).status, 200);
  t.is((await admin.put(`/api/admin/users/${researcher.id}/level`, { level: 'L1' })).status, 200);
  t.is((await script.get('/test/download-probe')).status, 403, 'the same token, one request later');
});
