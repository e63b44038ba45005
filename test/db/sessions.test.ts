import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { AuthTokensRepository } from '../../server/access/auth-tokens.repository.js';
import { LoginThrottleRepository } from '../../server/access/login-throttle.repository.js';
import { sha256Hex } from '../../server/access/secrets.js';
import { resolveSessionKeys, SESSION_SECRET_FILE } from '../../server/access/session-secret.js';
import { DatabaseSessionStore } from '../../server/access/session-store.js';
import { SessionsRepository } from '../../server/access/sessions.repository.js';
import { UsersRepository } from '../../server/access/users.repository.js';
import { openDatabase } from '../../server/db/index.js';
import { FatalError } from '../../server/errors.js';
import { createLogger } from '../../server/logging.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

const log = createLogger('silent');

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const users = new UsersRepository(database.db.knex);
  const user = await users.create({ email: 'owner@example.org', passwordHash: 'scrypt$x', level: 'L1', roles: [], emailConfirmedAt: new Date() });
  return { database, knex: database.db.knex, users, user };
}

test(`the session store keeps data by the hash of the id, with its owner and expiry (${testDialect})`, async (t) => {
  const { knex, user } = await setup(t);
  let now = new Date('2026-11-29T10:00:00.000Z');
  const store = new DatabaseSessionStore(new SessionsRepository(knex), () => now);

  t.is(await store.get('id-1'), undefined);
  const data = { passport: { user: user.id }, csrf: 'c', _expire: 1, _maxAge: 3_600_000, nested: { ünicode: '✓' } };
  await store.set('id-1', data, 3_600_000);
  t.deepEqual(await store.get('id-1'), data);
  const row = await knex('sessions').first();
  t.is(row.id, sha256Hex('id-1'));
  t.is(row.user_id, user.id);

  now = new Date('2026-11-29T10:30:00.000Z');
  await store.set('id-1', { ...data, csrf: 'd' }, 3_600_000);
  t.is(((await store.get('id-1')) as { csrf: string }).csrf, 'd', 'saving again updates the row');
  t.is((await knex('sessions').count({ n: '*' }).first())!.n, 1);

  await store.set('anonymous', { csrf: 'e' }, 60_000);
  t.is((await knex('sessions').where({ id: sha256Hex('anonymous') }).first()).user_id, null);

  now = new Date('2026-11-29T11:30:00.001Z');
  t.is(await store.get('id-1'), undefined, 'past its expiry it is gone, whatever the cookie says');
  const sessions = new SessionsRepository(knex);
  t.is(await sessions.deleteExpired(now), 2);

  now = new Date('2026-11-29T12:00:00.000Z');
  await store.set('a', { passport: { user: user.id } }, 60_000);
  await store.set('b', { passport: { user: user.id } }, 60_000);
  await store.set('c', { passport: { user: user.id } }, 60_000);
  t.is(await sessions.destroyForUser(user.id, 'b'), 2, 'all but the one making the change');
  t.truthy(await store.get('b'));
  await store.destroy('b');
  t.is(await sessions.countForUser(user.id), 0);
});

test(`deleting a user deletes their sessions, links and tokens (${testDialect})`, async (t) => {
  const { knex, user } = await setup(t);
  const now = new Date();
  await new SessionsRepository(knex).set('s', { passport: { user: user.id } }, user.id, new Date(now.getTime() + 60_000), now);
  await new AuthTokensRepository(knex).issue(user.id, 'confirm_email', sha256Hex('x'), new Date(now.getTime() + 60_000), now);
  await knex('users').where({ id: user.id }).del();
  t.is((await knex('sessions').count({ n: '*' }).first())!.n, 0);
  t.is((await knex('auth_tokens').count({ n: '*' }).first())!.n, 0);
});

test(`a one-time link is consumed exactly once, even by racing requests (${testDialect})`, async (t) => {
  const { database, knex, user } = await setup(t);
  const now = new Date('2026-11-29T10:00:00.000Z');
  const links = new AuthTokensRepository(knex);
  await links.issue(user.id, 'reset_password', sha256Hex('secret'), new Date('2026-11-29T11:00:00.000Z'), now);

  t.deepEqual(await links.consume(sha256Hex('secret'), 'confirm_email', now), { status: 'unknown' }, 'a link is for one purpose');
  t.deepEqual(await links.consume(sha256Hex('other'), 'reset_password', now), { status: 'unknown' });
  t.deepEqual(await links.consume(sha256Hex('secret'), 'reset_password', new Date('2026-11-29T11:00:00.000Z')), { status: 'expired' });

  // Two app nodes follow the same link at once.
  const other = openDatabase(database.target);
  t.teardown(() => other.close());
  const results = await Promise.all([links, new AuthTokensRepository(other.knex)].map((repo) => repo.consume(sha256Hex('secret'), 'reset_password', now)));
  t.deepEqual(results.map((r) => r.status).sort(), ['ok', 'used']);
  t.deepEqual(await links.consume(sha256Hex('secret'), 'reset_password', now), { status: 'used' });

  await links.issue(user.id, 'confirm_email', sha256Hex('first'), new Date('2026-11-30T10:00:00.000Z'), now);
  await links.issue(user.id, 'confirm_email', sha256Hex('second'), new Date('2026-11-30T10:00:00.000Z'), now);
  t.deepEqual(await links.consume(sha256Hex('first'), 'confirm_email', now), { status: 'unknown' }, 'a newer link replaces an unused older one');
  t.deepEqual(await links.consume(sha256Hex('second'), 'confirm_email', now), { status: 'ok', userId: user.id });
  t.is(await links.deleteExpired(new Date('2026-12-01T00:00:00.000Z')), 2);
});

test(`throttling counts attempts in a window, refuses past the limit and while locked (${testDialect})`, async (t) => {
  const { knex } = await setup(t);
  const throttle = new LoginThrottleRepository(knex);
  const rules = { limit: 3, windowMs: 15 * 60_000 };
  const at = (minutes: number) => new Date(Date.UTC(2026, 10, 29, 10, minutes));

  t.deepEqual(await throttle.take('email:a', at(0), rules), { allowed: true, number: 1 });
  t.deepEqual(await throttle.take('email:a', at(1), rules), { allowed: true, number: 2 });
  t.deepEqual(await throttle.take('email:a', at(2), rules), { allowed: true, number: 3 });
  t.deepEqual(await throttle.take('email:a', at(3), rules), { allowed: false, until: at(15) }, 'the window’s attempts are used up');
  await throttle.giveBack('email:a');
  t.deepEqual(await throttle.take('email:a', at(4), rules), { allowed: true, number: 3 }, 'an attempt given back may be taken again');
  await throttle.lock('email:a', at(19));
  t.deepEqual(await throttle.take('email:a', at(18), rules), { allowed: false, until: at(19) });
  t.deepEqual(await throttle.take('email:a', at(19), rules), { allowed: true, number: 1 }, 'a new window after the lock');

  t.deepEqual(await throttle.take('email:c', at(0), rules), { allowed: true, number: 1 });
  t.deepEqual(await throttle.take('email:c', at(20), rules), { allowed: true, number: 1 }, 'old attempts fall out of the window');
  await throttle.giveBack('email:c');
  await throttle.giveBack('email:c');
  t.deepEqual(await throttle.take('email:c', at(21), rules), { allowed: true, number: 1 }, 'the count never goes below zero');
  await throttle.clear('email:c');
  t.is((await knex('login_throttle').where({ key: 'email:c' }).first()) ?? null, null);
  t.is(await throttle.deleteStale(at(60)), 1);
});

test(`attempts taken at once, from two app nodes, never let more through than the limit (${testDialect})`, async (t) => {
  const { database, knex } = await setup(t);
  // Two pools stand for two nodes. SQLite's driver waits for a lock by blocking its thread, so two pools in one process would only wait for each other: there one node races itself.
  const other = testDialect === 'mariadb' ? openDatabase(database.target) : undefined;
  if (other) t.teardown(() => other.close());
  const nodes = [new LoginThrottleRepository(knex), new LoginThrottleRepository(other?.knex ?? knex)];
  const now = new Date();
  const attempts = await Promise.all(Array.from({ length: 30 }, (_, i) => nodes[i % 2]!.take('email:parallel', now, { limit: 5, windowMs: 60_000 })));
  const allowed = attempts.filter((a) => a.allowed);
  t.is(allowed.length, 5);
  t.deepEqual(allowed.map((a) => (a.allowed ? a.number : 0)).sort(), [1, 2, 3, 4, 5], 'each allowed attempt has a number of its own');
});

test('the session secret is generated once into the data folder, private, and reused', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-secret-'));
  const first = resolveSessionKeys('', dir, log);
  t.is(first.length, 1);
  t.true(first[0]!.length >= 32);
  const file = path.join(dir, SESSION_SECRET_FILE);
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.deepEqual(resolveSessionKeys('', dir, log), first, 'the next start reads the same secret');
  t.deepEqual(resolveSessionKeys(' a'.padEnd(40, 'a') + ', ' + 'b'.repeat(32), dir, log), ['a'.repeat(39), 'b'.repeat(32)], 'configured keys win, several rotate');
  t.deepEqual(await readFile(file, 'utf8'), `${first[0]}\n`);

  const other = await mkdtemp(path.join(os.tmpdir(), 'slidebank-secret-'));
  t.notDeepEqual(resolveSessionKeys('', other, log), first, 'each installation has its own');
  await writeFile(path.join(other, SESSION_SECRET_FILE), 'short\n');
  t.throws(() => resolveSessionKeys('', other, log), { instanceOf: FatalError, message: /shorter than 32 characters/ });
});
