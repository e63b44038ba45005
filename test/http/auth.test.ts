import test from 'ava';
import { sha256Hex } from '../../server/access/secrets.js';
import { toDbTime } from '../../server/db/index.js';
import { SESSION_COOKIE } from '../../server/http/middleware/session.js';
import { accountWorkDone, Client, createUser, logIn, TEST_PASSWORD } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { RecordingMailer } from '../support/recording-mailer.js';

/** Accounts over real HTTP: registration, confirmation, login and logout, sessions, lock-out, password reset, CSRF, input checks, and admin user management. */

type ErrorBody = { error: { code: string; message: string; details?: { problems?: { field: string; message: string }[] } } };
type Me = { id: number; email: string; name: string; level: string; storedLevel: string; roles: string[]; via: string; csrfToken?: string; emailConfirmed: boolean };

const NEW_PASSWORD = 'kingfisher above the weir 7';

async function userRow(app: TestApp, email: string) {
  return app.database.db.knex('users').where({ email }).first();
}

/** Registers, and waits for what the registration does after its answer (the account, the mail). */
async function register(app: TestApp, client: Client, email: string, extra: Record<string, unknown> = {}) {
  const answer = await client.post<{ status: string; message: string }>('/api/auth/register', { name: 'Ada Lovelace', institution: 'Analytical Engines', email, password: TEST_PASSWORD, ...extra });
  await accountWorkDone(app);
  return answer;
}

function sessionCookie(client: Client): string | undefined {
  return client.cookies.get(SESSION_COOKIE);
}

test(`register → mailed link → confirm → login → me → logout, over HTTP (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const browser = new Client(app);

  const registered = await register(app, browser, 'Ada@Example.org');
  t.is(registered.status, 202);
  t.is(registered.body.status, 'accepted');
  const stored = await userRow(app, 'ada@example.org');
  t.like(stored, { level: 'L0', email_confirmed_at: null, name: 'Ada Lovelace', institution: 'Analytical Engines' });
  t.regex(stored.password_hash, /^scrypt\$/, 'the password is stored hashed');

  // Before confirming, the account cannot log in, and says why only to the holder of the password.
  const early = await new Client(app).post<ErrorBody>('/api/auth/login', { email: 'ada@example.org', password: TEST_PASSWORD });
  t.is(early.status, 403);
  t.is(early.body.error.code, 'email_unconfirmed');

  const mail = app.mailer.last('ada@example.org');
  t.regex(mail.subject, /confirm/i);
  const { url, token } = RecordingMailer.link(mail, '/account/confirm');
  t.is(url.origin, new URL(app.config.mail.publicUrl).origin, 'the link points at mail.publicUrl');
  t.is(url.search, '', 'the token travels in the fragment, never to a server log');
  t.true(mail.html.includes(token));
  const linkRow = await app.database.db.knex('auth_tokens').where({ purpose: 'confirm_email' }).first();
  t.is(linkRow.token_hash, sha256Hex(token), 'only the hash of the link is stored');
  const lifetime = new Date(`${linkRow.expires_at.replace(' ', 'T')}Z`).getTime() - new Date(`${linkRow.created_at.replace(' ', 'T')}Z`).getTime();
  t.is(lifetime, 24 * 3_600_000, 'the link lasts 24 hours');

  const confirmed = await browser.post<Me>('/api/auth/confirm', { token });
  t.is(confirmed.status, 200);
  t.like(confirmed.body, { email: 'ada@example.org', level: 'L1', emailConfirmed: true });
  t.like(await userRow(app, 'ada@example.org'), { level: 'L1' });

  t.is((await browser.get('/api/auth/me')).body, null, 'not logged in yet');
  t.is((await browser.get('/api/slides')).status, 401);

  // The anonymous CSRF token is signed, not stored: nothing exists before login.
  const csrf = await browser.get<{ csrfToken: string }>('/api/auth/csrf');
  t.is(csrf.status, 200);
  t.is(sessionCookie(browser), undefined);
  t.is((await app.database.db.knex('sessions').count({ n: '*' }).first())!.n, 0);

  // A session id planted in the browser beforehand (here: someone else's) is replaced at login and does not carry it.
  const planter = await logIn(app, (await createUser(app, { level: 'L1' })).email);
  for (const [name, value] of planter.cookies) browser.cookies.set(name, value);
  browser.csrfToken = planter.csrfToken;
  const before = sessionCookie(browser)!;

  const login = await browser.post<Me>('/api/auth/login', { email: 'ADA@example.org', password: TEST_PASSWORD });
  t.is(login.status, 200);
  t.like(login.body, { email: 'ada@example.org', level: 'L1', via: 'session', roles: [] });
  t.not(login.body.csrfToken, csrf.body.csrfToken, 'a new CSRF token at login');
  const cookies = login.headers.getSetCookie();
  const cookie = cookies.find((c) => c.startsWith(`${SESSION_COOKIE}=`))!;
  t.regex(cookie, /; path=\//i);
  t.regex(cookie, /; httponly/i);
  t.regex(cookie, /; samesite=lax/i);
  t.notRegex(cookie, /; secure/i, 'plain HTTP without a proxy: no Secure flag under "auto"');
  t.true(cookies.some((c) => c.startsWith(`${SESSION_COOKIE}.sig=`)), 'the cookie is signed');
  const after = sessionCookie(browser)!;
  t.not(after, before, 'the session id changes at login');
  t.truthy(await app.database.db.knex('sessions').where({ id: sha256Hex(after) }).first(), 'sessions are in the database, keyed by hash');
  t.falsy(await app.database.db.knex('sessions').where({ id: after }).first(), 'never by the id itself');

  const fixated = new Client(app);
  for (const [name, value] of planter.cookies) fixated.cookies.set(name, value);
  t.is((await fixated.get('/api/auth/me')).body, null, 'the pre-login session id does not carry the login');

  const me = await browser.get<Me>('/api/auth/me');
  t.is(me.status, 200);
  t.like(me.body, { email: 'ada@example.org', level: 'L1', via: 'session' });
  t.is(me.headers.get('cache-control'), 'no-store');
  t.is((await browser.get('/api/slides')).status, 200, 'L1 reads the catalog');

  const out = await browser.post('/api/auth/logout');
  t.is(out.status, 204);
  t.is(sessionCookie(browser), undefined, 'the cookie is cleared');
  t.is(await app.database.db.knex('sessions').where({ id: sha256Hex(after) }).first(), undefined, 'the session row is gone');
  const stolen = new Client(app);
  stolen.cookies.set(SESSION_COOKIE, after);
  stolen.cookies.set(`${SESSION_COOKIE}.sig`, login.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}.sig=`))!.split(';')[0]!.split('=')[1]!);
  t.is((await stolen.get('/api/auth/me')).body, null, 'a copy of the old cookie is worthless after logout');

  const user = await userRow(app, 'ada@example.org');
  t.deepEqual(
    app.audit.events.filter((e) => e.subjectId === user.id).map((e) => e.action),
    ['user.registered', 'user.confirmed', 'auth.login', 'auth.logout'],
    'each step is audited (the unconfirmed login was refused, not failed)',
  );
});

test('a wrong password and an unknown address are answered alike', async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const wrong = await new Client(app).post<ErrorBody>('/api/auth/login', { email: user.email, password: 'not the password at all' });
  const unknown = await new Client(app).post<ErrorBody>('/api/auth/login', { email: 'nobody@example.org', password: 'not the password at all' });
  t.is(wrong.status, 401);
  t.is(unknown.status, wrong.status);
  t.is(unknown.body.error.code, 'invalid_credentials');
  t.is(unknown.body.error.code, wrong.body.error.code);
  t.is(unknown.body.error.message, wrong.body.error.message);
  t.deepEqual(wrong.headers.getSetCookie(), [], 'no session for a failed login');
  t.deepEqual(
    app.audit.of('auth.login_failed').map((e) => e.details?.reason),
    ['wrong_password', 'unknown_email'],
    'the audit log, not the answer, tells them apart',
  );
  for (const body of [{ email: user.email }, { password: 'x' }, {}, { email: 42, password: 42 }]) {
    const answer = await new Client(app).post<ErrorBody>('/api/auth/login', body);
    t.is(answer.status, 400, JSON.stringify(body));
  }
});

async function failLogins(app: TestApp, email: string, times: number, headers: Record<string, string> = {}) {
  const statuses: number[] = [];
  for (let i = 0; i < times; i++) {
    statuses.push((await new Client(app).post('/api/auth/login', { email, password: `wrong password ${i}!` }, { headers })).status);
  }
  return statuses;
}

test(`five failures lock an address for 15 minutes, registered or not, even against the right password (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });

  t.deepEqual(await failLogins(app, user.email, 5), [401, 401, 401, 401, 429]);
  t.deepEqual(await failLogins(app, 'nobody@example.org', 5), [401, 401, 401, 401, 429], 'an unknown address locks alike, so locking reveals nothing');

  const locked = await new Client(app).post<ErrorBody & { error: { details: { retryAfterSeconds: number } } }>('/api/auth/login', { email: user.email, password: TEST_PASSWORD });
  t.is(locked.status, 429, 'the right password does not get through a lock');
  t.is(locked.body.error.code, 'too_many_attempts');
  t.true(locked.body.error.details.retryAfterSeconds > 14 * 60 && locked.body.error.details.retryAfterSeconds <= 15 * 60);
  t.is(locked.headers.get('retry-after'), String(locked.body.error.details.retryAfterSeconds));
  const unknownLocked = await new Client(app).post<ErrorBody>('/api/auth/login', { email: 'nobody@example.org', password: TEST_PASSWORD });
  t.is(unknownLocked.status, 429);
  t.is(unknownLocked.body.error.message.replace(/\d+/g, 'N'), locked.body.error.message.replace(/\d+/g, 'N'));
  t.is(app.audit.of('auth.locked').length, 2);
  t.is(app.audit.of('auth.locked')[0]!.actorId, user.id);

  // Fifteen minutes later (the lock's end moved into the past), the right password works and clears the count.
  await app.database.db.knex('login_throttle').update({ locked_until: toDbTime(new Date(Date.now() - 1000)), window_started_at: toDbTime(new Date(Date.now() - 16 * 60_000)) });
  t.is((await logIn(app, user.email)) instanceof Client, true);
  t.deepEqual(await failLogins(app, user.email, 4), [401, 401, 401, 401], 'a success starts the count again');
});

test('one client address failing on many accounts is locked as well', async (t) => {
  const app = await startTestApp(t, { env: { SLIDEBANK_AUTH_LOCKOUT_MAX_FAILURES_PER_ADDRESS: '6' } });
  const user = await createUser(app, { level: 'L1' });
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push(...(await failLogins(app, `guess${i}@example.org`, 1)));
  t.deepEqual(statuses, [401, 401, 401, 401, 401, 429]);
  const blocked = await new Client(app).post<ErrorBody>('/api/auth/login', { email: user.email, password: TEST_PASSWORD });
  t.is(blocked.status, 429, 'from this address, no account gets in while it is locked');
  t.like(app.audit.of('auth.locked')[0]?.details, { locked: ['address'] });
});

test(`registering a taken address answers like a new one and mails the owner instead (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const owner = await createUser(app, { level: 'L2', levelExpiresAt: new Date(Date.now() + 86_400_000), email: 'owner@example.org', name: 'Owner' });
  const fresh = await register(app, new Client(app), 'fresh@example.org');
  const taken = await register(app, new Client(app), 'OWNER@example.org', { name: 'Mallory', password: 'a different password 99' });
  t.is(taken.status, fresh.status);
  t.deepEqual(Object.keys(taken.body).sort(), Object.keys(fresh.body).sort());
  t.is(taken.body.message.replace('owner@example.org', 'X'), fresh.body.message.replace('fresh@example.org', 'X'));

  const notice = app.mailer.last('owner@example.org');
  t.regex(notice.subject, /already have/i);
  t.true(RecordingMailer.links(notice).some((link) => link.pathname === '/account/forgot-password'));
  t.false(notice.text.includes('Mallory'), 'nothing the stranger typed is mailed to the owner');
  const row = await userRow(app, 'owner@example.org');
  t.like(row, { name: 'Owner', level: 'L2' }, 'the account is unchanged');
  t.is((await app.database.db.knex('users').count({ n: '*' }).first())!.n, 2);
  t.is(app.audit.of('user.registered').length, 1);
  t.is(owner.id, row.id);

  // An unconfirmed owner gets a fresh confirmation link instead; the older one stops working.
  const first = RecordingMailer.link(app.mailer.last('fresh@example.org'), '/account/confirm').token;
  await register(app, new Client(app), 'fresh@example.org');
  const second = RecordingMailer.link(app.mailer.last('fresh@example.org'), '/account/confirm').token;
  t.not(first, second);
  t.is((await new Client(app).post<ErrorBody>('/api/auth/confirm', { token: first })).status, 400);
  t.is((await new Client(app).post('/api/auth/confirm', { token: second })).status, 200);
});

test(`confirmation links work once and not after 24 hours (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  await register(app, new Client(app), 'once@example.org');
  const { token } = RecordingMailer.link(app.mailer.last('once@example.org'), '/account/confirm');
  t.is((await new Client(app).post('/api/auth/confirm', { token })).status, 200);
  const reused = await new Client(app).post<ErrorBody>('/api/auth/confirm', { token });
  t.is(reused.status, 410);
  t.is(reused.body.error.code, 'link_used');
  t.is(app.audit.of('user.confirmed').length, 1);

  await register(app, new Client(app), 'late@example.org');
  const late = RecordingMailer.link(app.mailer.last('late@example.org'), '/account/confirm').token;
  await app.database.db.knex('auth_tokens').where({ token_hash: sha256Hex(late) }).update({ expires_at: toDbTime(new Date(Date.now() - 1)) });
  const expired = await new Client(app).post<ErrorBody>('/api/auth/confirm', { token: late });
  t.is(expired.status, 410);
  t.is(expired.body.error.code, 'link_expired');
  t.like(await userRow(app, 'late@example.org'), { level: 'L0', email_confirmed_at: null }, 'nothing changed');

  const resend = await new Client(app).post('/api/auth/confirm/resend', { email: 'late@example.org' });
  t.is(resend.status, 202);
  await accountWorkDone(app);
  const renewed = RecordingMailer.link(app.mailer.last('late@example.org'), '/account/confirm').token;
  t.is((await new Client(app).post('/api/auth/confirm', { token: renewed })).status, 200);
  const sent = app.mailer.sent.length;
  t.is((await new Client(app).post('/api/auth/confirm/resend', { email: 'nobody@example.org' })).status, 202);
  t.is((await new Client(app).post('/api/auth/confirm/resend', { email: 'once@example.org' })).status, 202);
  await accountWorkDone(app);
  t.is(app.mailer.sent.length, sent, 'nothing is sent for unknown or confirmed addresses');

  for (const body of [{ token: 'A'.repeat(43) }, { token: 'short' }, { token: '<script>' }, {}]) {
    const answer = await new Client(app).post<ErrorBody>('/api/auth/confirm', body);
    t.is(answer.status, 400, JSON.stringify(body));
  }
});

test(`password reset by mail: one link, one hour, every session ends (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const elsewhere = await logIn(app, user.email);
  const token = await elsewhere.post<{ token: string }>('/api/tokens', { name: 'script' });

  const unknown = await new Client(app).post<{ message: string }>('/api/auth/password-reset', { email: 'nobody@example.org' });
  const known = await new Client(app).post<{ message: string }>('/api/auth/password-reset', { email: user.email });
  t.is(unknown.status, 202);
  t.is(known.status, 202);
  t.is(unknown.body.message.replace('nobody@example.org', 'X'), known.body.message.replace(user.email, 'X'));
  await accountWorkDone(app);
  t.is(app.mailer.to('nobody@example.org').length, 0);
  const mail = app.mailer.last(user.email);
  const { token: link } = RecordingMailer.link(mail, '/account/reset-password');
  const row = await app.database.db.knex('auth_tokens').where({ token_hash: sha256Hex(link) }).first();
  t.is(new Date(`${row.expires_at.replace(' ', 'T')}Z`).getTime() - new Date(`${row.created_at.replace(' ', 'T')}Z`).getTime(), 3_600_000, 'one hour');

  const weak = await new Client(app).post<ErrorBody>('/api/auth/password-reset/confirm', { token: link, password: 'password1234' });
  t.is(weak.status, 400);
  t.is(weak.body.error.code, 'weak_password');
  t.true(await logIn(app, user.email).then(() => true), 'a refused password changes nothing');

  t.is((await new Client(app).post('/api/auth/password-reset/confirm', { token: link, password: NEW_PASSWORD })).status, 204);
  t.is((await elsewhere.get('/api/auth/me')).body, null, 'sessions of the account ended');
  const revoked = await new Client(app, token.body.token).get<ErrorBody>('/api/auth/me');
  t.is(revoked.status, 401, 'access tokens are revoked with it');
  t.is(revoked.body.error.code, 'token_revoked');
  t.is((await new Client(app).post('/api/auth/login', { email: user.email, password: TEST_PASSWORD })).status, 401, 'the old password is gone');
  t.true(await logIn(app, user.email, NEW_PASSWORD).then(() => true));

  const reused = await new Client(app).post<ErrorBody>('/api/auth/password-reset/confirm', { token: link, password: 'yet another good password' });
  t.is(reused.status, 410);
  t.is(reused.body.error.code, 'link_used');

  await new Client(app).post('/api/auth/password-reset', { email: user.email });
  await accountWorkDone(app);
  const late = RecordingMailer.link(app.mailer.last(user.email), '/account/reset-password').token;
  await app.database.db.knex('auth_tokens').where({ token_hash: sha256Hex(late) }).update({ expires_at: toDbTime(new Date(Date.now() - 1)) });
  const expired = await new Client(app).post<ErrorBody>('/api/auth/password-reset/confirm', { token: late, password: 'yet another good password' });
  t.is(expired.status, 410);
  t.is(expired.body.error.code, 'link_expired');
  t.true(await logIn(app, user.email, NEW_PASSWORD).then(() => true), 'the password stayed');
  t.deepEqual(app.audit.of('user.password_reset').map((e) => e.subjectId), [user.id]);
});

test('nobody can flood a mailbox: at most five account mails an hour go to one address, and the answers stay the same', async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const answers: number[] = [];
  for (let i = 0; i < 4; i++) answers.push((await new Client(app).post('/api/auth/password-reset', { email: user.email })).status);
  await accountWorkDone(app);
  for (let i = 0; i < 3; i++) answers.push((await register(app, new Client(app), user.email)).status);
  t.deepEqual(answers, [202, 202, 202, 202, 202, 202, 202]);
  t.is(app.mailer.to(user.email).length, 5);
});

test(`forged, tampered and expired session cookies are anonymous (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const real = await logIn(app, user.email);
  const id = sessionCookie(real)!;
  const sig = real.cookies.get(`${SESSION_COOKIE}.sig`)!;

  const attempts: [string, Record<string, string>][] = [
    ['an invented id and signature', { [SESSION_COOKIE]: 'invented-session-id-00000000000000000000000', [`${SESSION_COOKIE}.sig`]: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['the real id with a forged signature', { [SESSION_COOKIE]: id, [`${SESSION_COOKIE}.sig`]: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['the real id without its signature', { [SESSION_COOKIE]: id }],
    ['the real signature on another id', { [SESSION_COOKIE]: `${id.slice(0, -1)}x`, [`${SESSION_COOKIE}.sig`]: sig }],
  ];
  for (const [what, cookies] of attempts) {
    const forged = new Client(app);
    for (const [name, value] of Object.entries(cookies)) forged.cookies.set(name, value);
    const answer = await forged.get('/api/auth/me');
    t.is(answer.status, 200, what);
    t.is(answer.body, null, `${what}: nobody is logged in`);
    const slides = await forged.get<ErrorBody>('/api/slides');
    t.is(slides.status, 401, what);
    t.is(slides.body.error.code, 'unauthenticated', what);
  }
  t.is((await real.get('/api/auth/me')).status, 200, 'the real one still works');

  await app.database.db.knex('sessions').where({ id: sha256Hex(id) }).update({ expires_at: toDbTime(new Date(Date.now() - 1000)) });
  t.is((await real.get('/api/auth/me')).body, null, 'a session past its expiry in the database is over');

  // koa-session's own expiry stamp inside the data is checked as well.
  const other = await logIn(app, user.email);
  const row = await app.database.db.knex('sessions').where({ id: sha256Hex(sessionCookie(other)!) }).first();
  const data = JSON.parse(typeof row.data === 'string' ? row.data : JSON.stringify(row.data));
  await app.database.db.knex('sessions').where({ id: row.id }).update({ data: JSON.stringify({ ...data, _expire: Date.now() - 1000 }) });
  t.is((await other.get('/api/auth/me')).body, null);
});

test('cookie flags follow http.secureCookies and a trusted proxy', async (t) => {
  const login = async (app: TestApp, headers: Record<string, string> = {}) => {
    const user = await createUser(app, { level: 'L1' });
    const answer = await new Client(app).post('/api/auth/login', { email: user.email, password: TEST_PASSWORD }, { headers });
    return answer.headers.getSetCookie().find((c) => c.startsWith(`${SESSION_COOKIE}=`)) ?? '';
  };
  const always = await startTestApp(t, { env: { SLIDEBANK_HTTP_SECURE_COOKIES: 'true' } });
  t.regex(await login(always), /; secure/i, 'true: Secure even on plain HTTP');
  const proxied = await startTestApp(t, { env: { SLIDEBANK_HTTP_TRUST_PROXY: 'true' } });
  t.regex(await login(proxied, { 'x-forwarded-proto': 'https' }), /; secure/i, 'auto behind a trusted TLS proxy: Secure');
  t.notRegex(await login(proxied), /; secure/i);
  const untrusted = await startTestApp(t);
  t.notRegex(await login(untrusted, { 'x-forwarded-proto': 'https' }), /; secure/i, 'an untrusted X-Forwarded-Proto is ignored');
});

test(`cookie-authenticated writes need the CSRF token; refused ones change nothing (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1', name: 'Before' });
  const browser = await logIn(app, user.email);
  const refused: [string, Record<string, string>, boolean, string][] = [
    ['no token', {}, false, 'csrf_token_invalid'],
    ['a forged token', { 'x-csrf-token': 'forged-token-forged-token-forged-token-xx' }, false, 'csrf_token_invalid'],
    ['another session’s token', { 'x-csrf-token': (await logIn(app, user.email)).csrfToken! }, false, 'csrf_token_invalid'],
    ['the right token from another site', { origin: 'https://evil.example' }, true, 'cross_site_request'],
    ['the right token, fetch metadata cross-site', { 'sec-fetch-site': 'cross-site' }, true, 'cross_site_request'],
    ['an opaque origin', { origin: 'null' }, true, 'cross_site_request'],
  ];
  for (const [what, headers, csrf, code] of refused) {
    const profile = await browser.patch<ErrorBody>('/api/account', { name: 'After' }, { headers, csrf });
    t.is(profile.status, 403, what);
    t.is(profile.body.error.code, code, what);
    const token = await browser.post<ErrorBody>('/api/tokens', { name: 'sneaky' }, { headers, csrf });
    t.is(token.status, 403, what);
    const logout = await browser.post<ErrorBody>('/api/auth/logout', undefined, { headers, csrf });
    t.is(logout.status, 403, what);
  }
  t.like(await userRow(app, user.email), { name: 'Before' }, 'nothing changed');
  t.is((await app.database.db.knex('access_tokens').count({ n: '*' }).first())!.n, 0);
  t.is((await browser.get('/api/auth/me')).status, 200, 'still logged in');

  const same = await browser.patch<Me>('/api/account', { name: 'After' }, { headers: { origin: app.url(''), 'sec-fetch-site': 'same-origin' } });
  t.is(same.status, 200);
  t.is(same.body.name, 'After');

  // Logging someone into another account from another site is refused too.
  const other = await createUser(app, { level: 'L1' });
  const crossLogin = await new Client(app).post<ErrorBody>('/api/auth/login', { email: other.email, password: TEST_PASSWORD }, { headers: { origin: 'https://evil.example' } });
  t.is(crossLogin.status, 403);
  t.is(crossLogin.body.error.code, 'cross_site_request');
  t.is(app.audit.of('auth.login').filter((e) => e.actorId === other.id).length, 0);
});

test('over-long fields and markup in names are refused with 400 and nothing is stored', async (t) => {
  const app = await startTestApp(t);
  const cases: [string, Record<string, unknown>, string][] = [
    ['a 201-character name', { name: 'n'.repeat(201) }, 'name'],
    ['HTML in the name', { name: '<img src=x onerror=alert(1)>' }, 'name'],
    ['a script tag in the institution', { institution: 'Hospital <script>' }, 'institution'],
    ['a control character in the name', { name: 'Ada\u0000Lovelace' }, 'name'],
    ['an empty name', { name: '   ' }, 'name'],
    ['a 255-character e-mail', { email: `${'a'.repeat(243)}@example.org` }, 'email'],
    ['not an e-mail', { email: 'ada at example' }, 'email'],
    ['a 1025-character password', { password: 'p'.repeat(1025) }, 'password'],
    ['an unknown field', { admin: true }, 'admin'],
    ['a name that is not text', { name: ['Ada'] }, 'name'],
  ];
  for (const [what, change, field] of cases) {
    const answer = await register(app, new Client(app), 'fields@example.org', change);
    t.is(answer.status, 400, what);
    const body = answer.body as unknown as ErrorBody;
    t.is(body.error.code, 'invalid_request', what);
    t.true(body.error.details!.problems!.some((p) => p.field === field), `${what}: ${JSON.stringify(body.error.details)}`);
  }
  const weak: [string, string][] = [
    ['too short', 'short pass'],
    ['the e-mail address', 'fields@example.org'],
    ['a common password', 'Password1234'],
    ['one character repeated', 'aaaaaaaaaaaaaaaa'],
  ];
  for (const [what, password] of weak) {
    const answer = await register(app, new Client(app), 'fields@example.org', { password });
    t.is(answer.status, 400, what);
    t.is((answer.body as unknown as ErrorBody).error.code, 'weak_password', what);
  }
  const notJson = await fetch(app.url('/api/auth/register'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name": ' });
  t.is(notJson.status, 400);
  t.is((await app.database.db.knex('users').count({ n: '*' }).first())!.n, 0);
  t.is(app.mailer.sent.length, 0);

  const user = await createUser(app, { level: 'L1' });
  const browser = await logIn(app, user.email);
  const patched = await browser.patch<ErrorBody>('/api/account', { name: '<b>bold</b>' });
  t.is(patched.status, 400);
  t.like(await userRow(app, user.email), { name: user.name });
});

test(`changing the password needs the current one and a session, and ends the other sessions (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  const here = await logIn(app, user.email);
  const there = await logIn(app, user.email);
  const script = new Client(app, (await here.post<{ token: string }>('/api/tokens', { name: 'script' })).body.token);

  const byToken = await script.post<ErrorBody>('/api/account/password', { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD });
  t.is(byToken.status, 403);
  t.is(byToken.body.error.code, 'session_required');
  const wrong = await here.post<ErrorBody>('/api/account/password', { currentPassword: 'not my password!', newPassword: NEW_PASSWORD });
  t.is(wrong.status, 403);
  t.is(wrong.body.error.code, 'wrong_password');
  const weak = await here.post<ErrorBody>('/api/account/password', { currentPassword: TEST_PASSWORD, newPassword: 'qwerty123456' });
  t.is(weak.status, 400);

  t.is((await here.post('/api/account/password', { currentPassword: TEST_PASSWORD, newPassword: NEW_PASSWORD })).status, 204);
  t.is((await here.get('/api/auth/me')).status, 200, 'this session goes on');
  t.is((await there.get('/api/auth/me')).body, null, 'the other one ended');
  t.is((await script.get('/api/auth/me')).status, 401, 'access tokens are revoked');
  t.true(await logIn(app, user.email, NEW_PASSWORD).then(() => true));
  t.is(app.audit.of('user.password_changed').length, 1);
});

test(`administrators list, search and change users; each change is audited and takes effect at once (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const admin = await createUser(app, { level: 'L1', roles: ['admin'], email: 'root@hospital.example' });
  const boss = await logIn(app, admin.email);
  const ada = await createUser(app, { level: 'L1', email: 'ada@lab.example', name: 'Ada 100% Lovelace', institution: 'Engines' });
  await createUser(app, { level: 'L0', email: 'pending@lab.example', confirmed: false });
  await createUser(app, { level: 'L3', email: 'member@partner.example', roles: ['curator'] });
  const adaSession = await logIn(app, ada.email);

  type Page = { items: { email: string; level: string; roles: string[]; disabled: boolean }[]; total: number; page: number; pageSize: number };
  const emails = async (query: string) => {
    const answer = await boss.get<Page>(`/api/admin/users${query}`);
    t.is(answer.status, 200, query);
    return answer.body.items.map((i) => i.email);
  };
  t.deepEqual(await emails(''), ['ada@lab.example', 'member@partner.example', 'pending@lab.example', 'root@hospital.example']);
  t.deepEqual(await emails('?q=LAB.example'), ['ada@lab.example', 'pending@lab.example']);
  t.deepEqual(await emails('?q=100%25'), ['ada@lab.example'], 'a % in the query is a character, not a wildcard');
  t.deepEqual(await emails('?q=engines'), ['ada@lab.example'], 'institution matches');
  t.deepEqual(await emails('?role=curator'), ['member@partner.example']);
  t.deepEqual(await emails('?level=L3'), ['member@partner.example']);
  t.deepEqual(await emails('?status=unconfirmed'), ['pending@lab.example']);
  const paged = await boss.get<Page>('/api/admin/users?pageSize=2&page=2');
  t.like(paged.body, { total: 4, page: 2, pageSize: 2 });
  t.deepEqual(paged.body.items.map((i) => i.email), ['pending@lab.example', 'root@hospital.example']);
  for (const query of ['?level=L9', '?pageSize=1000', '?page=0', '?sort=email', `?q=${'x'.repeat(201)}`]) {
    const refused = await boss.get<ErrorBody>(`/api/admin/users${query}`);
    t.is(refused.status, 400, query);
    t.is(refused.body.error.code, 'invalid_query', query);
  }
  for (const id of ['99999', 'abc', '0']) {
    const missing = await boss.get<ErrorBody>(`/api/admin/users/${id}`);
    t.is(missing.status, 404, id);
    t.is(missing.body.error.code, 'user_not_found', id);
  }

  const l2 = await boss.put<ErrorBody>(`/api/admin/users/${ada.id}/level`, { level: 'L2' });
  t.is(l2.status, 400);
  t.is(l2.body.error.code, 'level_requires_dua', 'L2 comes with a data use agreement, not from an administrator');
  t.is((await boss.put(`/api/admin/users/${ada.id}/level`, { level: 'L7' })).status, 400);

  const l3 = await boss.put<{ level: string }>(`/api/admin/users/${ada.id}/level`, { level: 'L3', reason: 'partner agreement' });
  t.is(l3.status, 200);
  t.is(l3.body.level, 'L3');
  t.is((await adaSession.get<Me>('/api/auth/me')).body.level, 'L3', 'the session sees the new level on its next request');
  t.like(app.audit.of('user.level_changed').at(-1), { actorId: admin.id, subjectId: ada.id, details: { from: 'L1', to: 'L3', reason: 'partner agreement' } });

  const l0 = await boss.put(`/api/admin/users/${ada.id}/level`, { level: 'L0' });
  t.is(l0.status, 200);
  t.is((await adaSession.get('/api/slides')).status, 403, 'down to L0: no catalog');

  const pending = (await boss.get<Page & { items: { id: number }[] }>('/api/admin/users?status=unconfirmed')).body.items[0]!;
  const vouched = await boss.put<{ level: string; emailConfirmed: boolean }>(`/api/admin/users/${pending.id}/level`, { level: 'L1' });
  t.like(vouched.body, { level: 'L1', emailConfirmed: true }, 'an administrator raising an unconfirmed account vouches for its address');

  const roles = await boss.put<{ roles: string[] }>(`/api/admin/users/${ada.id}/roles`, { roles: ['pathologist', 'curator', 'curator'] });
  t.deepEqual(roles.body.roles, ['curator', 'pathologist']);
  t.like(app.audit.of('user.roles_changed').at(-1)?.details, { from: [], to: ['curator', 'pathologist'] });
  t.is((await adaSession.get('/api/slides')).status, 200, 'a staff role views at L0');
  t.is((await boss.put(`/api/admin/users/${ada.id}/roles`, { roles: ['owner'] })).status, 400);

  const lastAdmin = await boss.put<ErrorBody>(`/api/admin/users/${admin.id}/roles`, { roles: [] });
  t.is(lastAdmin.status, 409);
  t.is(lastAdmin.body.error.code, 'last_admin');
  const self = await boss.post<ErrorBody>(`/api/admin/users/${admin.id}/disable`);
  t.is(self.status, 409);
  t.is(self.body.error.code, 'cannot_disable_self');

  const adaToken = new Client(app, (await adaSession.post<{ token: string }>('/api/tokens', { name: 'script' })).body.token);
  const disabled = await boss.post<{ disabled: boolean }>(`/api/admin/users/${ada.id}/disable`);
  t.is(disabled.status, 200);
  t.true(disabled.body.disabled);
  t.is((await adaSession.get('/api/auth/me')).body, null, 'the session ended');
  t.is((await app.database.db.knex('sessions').where({ user_id: ada.id }).count({ n: '*' }).first())!.n, 0);
  const tokenAnswer = await adaToken.get<ErrorBody>('/api/auth/me');
  t.is(tokenAnswer.status, 401, 'tokens stop at once');
  t.is(tokenAnswer.body.error.code, 'token_revoked', 'they are revoked');
  const login = await new Client(app).post<ErrorBody>('/api/auth/login', { email: ada.email, password: TEST_PASSWORD });
  t.is(login.status, 403);
  t.is(login.body.error.code, 'account_disabled');
  t.deepEqual(await emails('?status=disabled'), ['ada@lab.example']);

  t.is((await boss.post(`/api/admin/users/${ada.id}/enable`)).status, 200);
  t.is((await adaToken.get('/api/auth/me')).status, 401, 'enabled again, the revoked token stays revoked');
  t.true(await logIn(app, ada.email).then(() => true), 'the account itself works again');
  t.deepEqual(
    app.audit.events.filter((e) => e.subjectId === ada.id && e.actorId === admin.id).map((e) => e.action),
    ['user.level_changed', 'user.level_changed', 'user.roles_changed', 'user.disabled', 'user.enabled'],
  );
});
