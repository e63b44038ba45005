import test from 'ava';
import { throttleKey } from '../../server/access/accounts.service.js';
import { accountWorkDone, Client, createUser, logIn, TEST_PASSWORD, tokenClient } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { RecordingMailer } from '../support/recording-mailer.js';

/**
 * Attacks on accounts and authentication, run against a real server: guessing
 * passwords in parallel, keeping access after the owner takes the account
 * back, telling registered addresses apart by time, making anonymous requests
 * cost the server something lasting, and writing from another origin.
 */

type ErrorBody = { error: { code: string; message: string; details?: Record<string, unknown> } };

const NEW_PASSWORD = 'kingfisher above the weir 7';

/** An anonymous browser tab that has fetched its CSRF token already, so that its first write goes out at once. */
async function anonymous(app: Pick<TestApp, 'url'>): Promise<Client> {
  const client = new Client(app);
  await client.get('/api/auth/csrf');
  return client;
}

async function until(condition: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5));
}

test(`forty parallel guesses at one account check no more passwords than the lock-out allows, and the right one sent late does not get in (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const tabs = await Promise.all(Array.from({ length: 40 }, () => anonymous(app)));
  const guess = (tab: Client, password: string) => tab.post<ErrorBody>('/api/auth/login', { email: user.email, password });

  const wrong = tabs.slice(0, 39).map((tab, i) => guess(tab, `wrong guess number ${i}`));
  // The right password goes out while the wrong ones are still being checked: once they have taken the address's five
  // attempts, or once the first of them has been found wrong, whichever comes first.
  const key = throttleKey('email', user.email);
  await until(async () => {
    const row = await app.database.db.knex('login_throttle').where({ key }).first();
    return Boolean((row && (row.failures >= 5 || row.locked_until)) || app.audit.of('auth.login_failed').length > 0);
  }, 20_000);
  const right = await guess(tabs[39]!, TEST_PASSWORD);
  const answers = await Promise.all(wrong);

  t.is(right.status, 429, 'the right password is not checked once the guesses are used up');
  t.is(right.headers.get('retry-after'), String(right.body.error.details?.retryAfterSeconds));
  const statuses = answers.map((a) => a.status);
  t.is(statuses.filter((s) => s === 401).length, 4, 'four wrong passwords are told so');
  t.is(statuses.filter((s) => s === 429).length, 35, 'the fifth locks the address, the rest are refused unchecked');
  t.is(app.audit.of('auth.login_failed').length, 5, 'exactly five passwords were checked');
  t.is(app.audit.of('auth.login').length, 0);
  t.is(app.audit.of('auth.locked').length, 1);
  t.is((await guess(tabs[0]!, TEST_PASSWORD)).status, 429, 'and the lock holds');
});

test(`forty parallel guesses at forty accounts from one client check no more passwords than its limit (${testDialect})`, async (t) => {
  const app = await startTestApp(t, { env: { SLIDEBANK_AUTH_LOCKOUT_MAX_FAILURES_PER_ADDRESS: '6' } });
  const tabs = await Promise.all(Array.from({ length: 40 }, () => anonymous(app)));
  const answers = await Promise.all(tabs.map((tab, i) => tab.post('/api/auth/login', { email: `guess${i}@example.org`, password: 'not the password at all' })));
  t.is(app.audit.of('auth.login_failed').length, 6, 'six passwords checked, no more');
  t.is(answers.filter((a) => a.status === 401).length, 5);
  t.is(answers.filter((a) => a.status === 429).length, 35);
  t.deepEqual(app.audit.of('auth.locked').map((e) => e.details?.locked), [['address']]);

  // A right password gives its attempt back: a shared address (a hospital's NAT) is not locked by its own logins.
  const other = await startTestApp(t, { env: { SLIDEBANK_AUTH_LOCKOUT_MAX_FAILURES_PER_ADDRESS: '3' } });
  const colleague = await createUser(other, { level: 'L1' });
  for (let i = 0; i < 5; i++) await logIn(other, colleague.email);
  t.is((await (await anonymous(other)).post('/api/auth/login', { email: 'x@example.org', password: 'not the password at all' })).status, 401);
});

test(`a password reset revokes the account's access tokens and says so in the audit log and in a notice mail (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1', name: 'Ada' });
  const session = await logIn(app, user.email);
  const scripts = [await tokenClient(session, 'first'), await tokenClient(session, 'second', 'read')];
  t.is((await scripts[0]!.get('/api/auth/me')).status, 200);

  await (await anonymous(app)).post('/api/auth/password-reset', { email: user.email });
  await accountWorkDone(app);
  const { token } = RecordingMailer.link(app.mailer.last(user.email), '/account/reset-password');
  t.is((await (await anonymous(app)).post('/api/auth/password-reset/confirm', { token, password: NEW_PASSWORD })).status, 204);

  for (const script of scripts) {
    const answer = await script.get<ErrorBody>('/api/auth/me');
    t.is(answer.status, 401, 'a token the attacker may hold stops working');
    t.is(answer.body.error.code, 'token_revoked');
  }
  t.is((await session.get('/api/auth/me')).body, null, 'sessions end too');
  const listed = await (await logIn(app, user.email, NEW_PASSWORD)).get<{ items: { status: string }[] }>('/api/tokens');
  t.deepEqual(listed.body.items.map((item) => item.status), ['revoked', 'revoked']);
  t.like(app.audit.of('user.password_reset')[0]?.details, { tokensRevoked: 2, sessionsEnded: 1 });

  await accountWorkDone(app);
  const notice = app.mailer.last(user.email);
  t.regex(notice.subject, /password was changed/i);
  t.regex(notice.text, /2 personal access tokens were revoked/);
  t.regex(notice.text, /If this was not you/);
  t.true(RecordingMailer.links(notice).some((link) => link.pathname === '/account/forgot-password'));
});

test(`changing the password revokes the account's access tokens and mails a notice (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const session = await logIn(app, user.email);
  const script = await tokenClient(session);
  t.is((await session.post('/api/account/password', { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD })).status, 204);
  const answer = await script.get<ErrorBody>('/api/auth/me');
  t.is(answer.status, 401);
  t.is(answer.body.error.code, 'token_revoked');
  t.is((await session.get('/api/auth/me')).status, 200, 'the session that made the change goes on');
  t.like(app.audit.of('user.password_changed')[0]?.details, { tokensRevoked: 1 });
  await accountWorkDone(app);
  const notice = app.mailer.last(user.email);
  t.regex(notice.subject, /password was changed/i);
  t.regex(notice.text, /personal access token was revoked/);
});

test(`disabling an account revokes its sessions, tokens and reset links for good: enabling it brings none back (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const admin = await logIn(app, (await createUser(app, { level: 'L1', roles: ['admin'] })).email);
  const user = await createUser(app, { level: 'L1' });
  const session = await logIn(app, user.email);
  const script = await tokenClient(session);
  await (await anonymous(app)).post('/api/auth/password-reset', { email: user.email });
  await accountWorkDone(app);
  const { token: link } = RecordingMailer.link(app.mailer.last(user.email), '/account/reset-password');

  t.is((await admin.post(`/api/admin/users/${user.id}/disable`)).status, 200);
  t.like(app.audit.of('user.disabled')[0]?.details, { sessionsEnded: 1, tokensRevoked: 1 });
  t.is((await admin.post(`/api/admin/users/${user.id}/enable`)).status, 200);

  const answer = await script.get<ErrorBody>('/api/auth/me');
  t.is(answer.status, 401, 'the token stays revoked');
  t.is(answer.body.error.code, 'token_revoked');
  t.is((await session.get('/api/auth/me')).body, null, 'the session stays ended');
  const reset = await (await anonymous(app)).post<ErrorBody>('/api/auth/password-reset/confirm', { token: link, password: NEW_PASSWORD });
  t.is(reset.status, 400, 'the reset link mailed before is void');
  t.true(await logIn(app, user.email).then(() => true), 'the owner logs in with the password as before');
});

test(`password reset requests and confirmation resends do the same work before answering for a registered address as for an unknown one (${testDialect})`, async (t) => {
  // Whatever depends on whether the address has an account is deferred until after the answer, so the answer cannot
  // tell by its timing: held back here, the queries a request makes before its answer are the same for both kinds.
  const app = await startTestApp(t, { env: { SLIDEBANK_AUTH_ACCOUNT_REQUESTS_MAX_PER_ADDRESS: '1000' } });
  const known = await createUser(app, { level: 'L1' });
  const waiting = await createUser(app, { level: 'L0', confirmed: false });
  const statements: string[] = [];
  const record = (query: { sql: string }) => statements.push(query.sql);
  app.database.db.knex.on('query', record);
  t.teardown(() => void app.database.db.knex.off('query', record));
  const tab = await anonymous(app);

  for (const [route, registered] of [
    ['/api/auth/password-reset', known.email],
    ['/api/auth/confirm/resend', waiting.email],
  ] as const) {
    const before: Record<'registered' | 'unknown', string[]> = { registered: [], unknown: [] };
    const release = app.services.access.deferred.hold();
    for (const kind of ['registered', 'unknown'] as const) {
      statements.length = 0;
      const answer = await tab.post(route, { email: kind === 'registered' ? registered : 'nobody@lab.example' });
      t.is(answer.status, 202);
      before[kind] = [...statements];
    }
    t.deepEqual(before.registered, before.unknown, `${route}: the same statements before the answer`);
    t.false(before.registered.some((sql) => /\busers\b/.test(sql)), `${route}: no account is looked up before the answer`);
    const mailsBefore = app.mailer.sent.length;
    statements.length = 0;
    release();
    await accountWorkDone(app);
    t.true(statements.some((sql) => /\busers\b/.test(sql)), `${route}: the deferred part looks the address up`);
    t.is(app.mailer.sent.length, mailsBefore + 1, `${route}: the registered address got its mail after the answer, the unknown one none`);
    t.is(app.mailer.sent.at(-1)!.to, registered);
  }
});

test(`account mail goes out after the answer: a mail server that does not answer delays no request (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const known = await createUser(app, { level: 'L1' });
  const waiting = await createUser(app, { level: 'L0', confirmed: false });
  const release = app.mailer.hold();
  const answerOrTimeout = <T>(request: Promise<T>) =>
    Promise.race([request, new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 10_000))]);

  const requests: [string, string, unknown][] = [
    ['a reset link', '/api/auth/password-reset', { email: known.email }],
    ['a new confirmation link', '/api/auth/confirm/resend', { email: waiting.email }],
    ['a confirmation for a new account', '/api/auth/register', { name: 'New', email: 'new@lab.example', password: TEST_PASSWORD }],
    ['a word to the owner of a taken address', '/api/auth/register', { name: 'Again', email: known.email, password: TEST_PASSWORD }],
  ];
  for (const [what, route, body] of requests) {
    const answer = await answerOrTimeout((await anonymous(app)).post(route, body));
    t.not(answer, 'no answer', `${what}: answered while the mail is still on its way`);
    if (answer !== 'no answer') t.is(answer.status, 202, what);
  }
  t.is(app.mailer.sent.length, 0, 'no mail has been handed over yet');
  release();
  await accountWorkDone(app);
  t.deepEqual(app.mailer.sent.map((mail) => mail.to).sort(), [known.email, known.email, waiting.email, 'new@lab.example'].sort());
});

test(`anonymous visitors get a CSRF token that stores nothing, and their writes need it, signed, in cookie and header (${testDialect})`, async (t) => {
  const secret = 'a session secret that two app nodes share of 48 chars';
  const app = await startTestApp(t, { env: { SLIDEBANK_AUTH_SESSION_SECRET: secret } });
  for (let i = 0; i < 50; i++) t.is((await fetch(app.url('/api/auth/csrf'))).status, 200);
  t.is((await app.database.db.knex('sessions').count({ n: '*' }).first())!.n, 0, 'fifty visitors, no session row');

  const tab = new Client(app);
  const { body, headers } = await tab.get<{ csrfToken: string }>('/api/auth/csrf');
  const token = body.csrfToken;
  t.is(tab.cookies.get('slidebank.csrf'), token, 'the token is in its cookie');
  const cookie = headers.getSetCookie().find((line) => line.startsWith('slidebank.csrf='))!;
  t.regex(cookie, /; httponly/i, 'scripts read the token from the answer, not from the cookie');
  t.regex(cookie, /; samesite=strict/i);
  t.is((await tab.get<{ csrfToken: string }>('/api/auth/csrf')).body.csrfToken, token, 'a visitor keeps its token across calls');
  const credentials = { email: 'nobody@example.org', password: 'not the password at all' };
  const login = (cookie: string | null, header: string | null) =>
    fetch(app.url('/api/auth/login'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie: `slidebank.csrf=${cookie}` } : {}), ...(header ? { 'x-csrf-token': header } : {}) },
      body: JSON.stringify(credentials),
    });
  const [random, expiry, mac] = token.split('.');
  const another = (await new Client(app).get<{ csrfToken: string }>('/api/auth/csrf')).body.csrfToken;
  const refused: [string, string | null, string | null][] = [
    ['no token at all', null, null],
    ['the cookie without the header', token, null],
    ['the header without its cookie', null, token],
    ['another visitor’s token in the header', token, another],
    ['a token of its own making in both', `${'A'.repeat(43)}.${expiry}.${mac}`, `${'A'.repeat(43)}.${expiry}.${mac}`],
    ['a token with its expiry moved', `${random}.9999999999.${mac}`, `${random}.9999999999.${mac}`],
    ['a token past its expiry', `${random}.1000000000.${mac}`, `${random}.1000000000.${mac}`],
  ];
  for (const [what, cookie, header] of refused) {
    const answer = await login(cookie, header);
    t.is(answer.status, 403, what);
    t.is(((await answer.json()) as ErrorBody).error.code, 'csrf_token_invalid', what);
  }
  t.is(app.audit.of('auth.login_failed').length, 0, 'no refused request reached the login');
  t.is((await login(token, token)).status, 401, 'with its token, the login is checked');

  // Another node with the same keys accepts the token; one with other keys does not.
  const sameKeys = await startTestApp(t, { env: { SLIDEBANK_AUTH_SESSION_SECRET: secret } });
  const otherKeys = await startTestApp(t);
  const elsewhere = (node: TestApp) => {
    const client = new Client(node);
    for (const [name, value] of tab.cookies) client.cookies.set(name, value);
    client.csrfToken = tab.csrfToken;
    return client.post('/api/auth/login', credentials);
  };
  t.is((await elsewhere(sameKeys)).status, 401);
  t.is((await elsewhere(otherKeys)).status, 403);
});

test(`registration, reset requests and confirmation resends are limited per client address (${testDialect})`, async (t) => {
  const app = await startTestApp(t, { env: { SLIDEBANK_AUTH_ACCOUNT_REQUESTS_MAX_PER_ADDRESS: '3', SLIDEBANK_HTTP_TRUST_PROXY: 'true' } });
  const from = (address: string) => ({ headers: { 'x-forwarded-for': address } });
  const tab = await anonymous(app);
  const statuses = [
    (await tab.post('/api/auth/register', { name: 'One', email: 'one@lab.example', password: TEST_PASSWORD }, from('203.0.113.7'))).status,
    (await tab.post('/api/auth/password-reset', { email: 'two@lab.example' }, from('203.0.113.7'))).status,
    (await tab.post('/api/auth/confirm/resend', { email: 'three@lab.example' }, from('203.0.113.7'))).status,
  ];
  t.deepEqual(statuses, [202, 202, 202]);
  for (const [route, body] of [
    ['/api/auth/register', { name: 'Four', email: 'four@lab.example', password: TEST_PASSWORD }],
    ['/api/auth/password-reset', { email: 'four@lab.example' }],
    ['/api/auth/confirm/resend', { email: 'four@lab.example' }],
  ] as const) {
    const answer = await tab.post<ErrorBody>(route, body, from('203.0.113.7'));
    t.is(answer.status, 429, route);
    t.is(answer.body.error.code, 'too_many_requests', route);
    const seconds = Number(answer.headers.get('retry-after'));
    t.true(seconds > 59 * 60 && seconds <= 3600, `${route}: Retry-After ${seconds}`);
  }
  t.is((await tab.post('/api/auth/password-reset', { email: 'four@lab.example' }, from('198.51.100.9'))).status, 202, 'another address is not affected');
  await accountWorkDone(app);
  t.is((await app.database.db.knex('users').count({ n: '*' }).first())!.n, 1, 'only the first registration made an account');
});

test(`password hashes are bounded: registrations beyond the hashing queue get 503 and Retry-After at once (${testDialect})`, async (t) => {
  const app = await startTestApp(t, {
    env: { SLIDEBANK_AUTH_PASSWORD_HASHING_CONCURRENT: '1', SLIDEBANK_AUTH_PASSWORD_HASHING_QUEUED: '2', SLIDEBANK_AUTH_ACCOUNT_REQUESTS_MAX_PER_ADDRESS: '1000' },
  });
  const tabs = await Promise.all(Array.from({ length: 12 }, () => anonymous(app)));
  const answers = await Promise.all(
    tabs.map((tab, i) => tab.post<ErrorBody>('/api/auth/register', { name: 'Burst', email: `burst${i}@lab.example`, password: TEST_PASSWORD })),
  );
  const busy = answers.filter((a) => a.status === 503);
  t.true(answers.filter((a) => a.status === 202).length >= 3, 'one hashing and two waiting get through');
  t.true(busy.length >= 1, `refused: ${busy.length}`);
  t.is(busy.length + answers.filter((a) => a.status === 202).length, 12);
  for (const answer of busy) {
    t.is(answer.body.error.code, 'server_busy');
    t.true(Number(answer.headers.get('retry-after')) >= 1);
  }
  await accountWorkDone(app);
  t.deepEqual(app.logs.filter((line) => line.msg.startsWith('deferred account work')).map((line) => `${line.msg}: ${JSON.stringify(line.err ?? {})}`), [], 'no deferred registration failed');
  t.is((await app.database.db.knex('users').count({ n: '*' }).first())!.n, 12 - busy.length, 'a refused registration made nothing');
});

test(`writes from another scheme or port of the same host are cross-site (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1', name: 'Before' });
  const browser = await logIn(app, user.email);
  const own = new URL(app.url(''));
  const otherPort = `http://${own.hostname}:${Number(own.port) === 65535 ? 1 : Number(own.port) + 1}`;
  for (const origin of [otherPort, `https://${own.host}`, `http://${own.hostname}`]) {
    const answer = await browser.patch<ErrorBody>('/api/account', { name: 'After' }, { headers: { origin } });
    t.is(answer.status, 403, origin);
    t.is(answer.body.error.code, 'cross_site_request', origin);
    const login = await (await anonymous(app)).post<ErrorBody>('/api/auth/login', { email: user.email, password: TEST_PASSWORD }, { headers: { origin } });
    t.is(login.status, 403, `login from ${origin}`);
  }
  t.is((await app.database.db.knex('users').where({ id: user.id }).first()).name, 'Before');
  t.is((await browser.patch('/api/account', { name: 'After' }, { headers: { origin: own.origin } })).status, 200, 'its own origin may write');
  t.is((await browser.patch('/api/account', { name: 'Again' }, { headers: { origin: new URL(app.config.mail.publicUrl).origin } })).status, 200, 'so may mail.publicUrl');
});
