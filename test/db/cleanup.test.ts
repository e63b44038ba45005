import test from 'ava';
import { AuthTokensRepository } from '../../server/access/auth-tokens.repository.js';
import { cleanupJob } from '../../server/access/cleanup.job.js';
import { LoginThrottleRepository } from '../../server/access/login-throttle.repository.js';
import { SessionsRepository } from '../../server/access/sessions.repository.js';
import { UsersRepository } from '../../server/access/users.repository.js';
import { AuditRepository } from '../../server/audit/index.js';
import { toDbTime } from '../../server/db/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

const DAY = 86_400_000;

test(`account-cleanup removes expired sessions and links and never-confirmed accounts, keeping staff and confirmed ones, on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const now = new Date('2027-06-01T03:30:00Z');
  const users = new UsersRepository(db.knex);
  const make = (email: string, confirmedAt: Date | null, createdDaysAgo: number, roles: ('admin' | 'curator')[] = []) =>
    users.create({ email, passwordHash: null, level: confirmedAt ? 'L1' : 'L0', roles, emailConfirmedAt: confirmedAt, levelExpiresAt: null }, new Date(now.getTime() - createdDaysAgo * DAY));
  const stale = await make('never@lab.example', null, 30);
  const fresh = await make('recent@lab.example', null, 2);
  const confirmed = await make('old@lab.example', new Date(now.getTime() - 29 * DAY), 30);
  const staff = await make('curator@hospital.example', null, 90, ['curator']);

  const session = (id: string, userId: number, expires: Date) =>
    db.knex('sessions').insert({ id, user_id: userId, data: '{}', expires_at: toDbTime(expires), created_at: toDbTime(now), updated_at: toDbTime(now) });
  await session('a'.repeat(64), confirmed.id, new Date(now.getTime() - 1000));
  await session('b'.repeat(64), confirmed.id, new Date(now.getTime() + DAY));
  const link = (hash: string, expires: Date) =>
    db.knex('auth_tokens').insert({ user_id: confirmed.id, purpose: 'reset_password', token_hash: hash, created_at: toDbTime(now), expires_at: toDbTime(expires) });
  await link('c'.repeat(64), new Date(now.getTime() - 1000));
  await link('d'.repeat(64), new Date(now.getTime() + 3600_000));

  const job = cleanupJob({
    users,
    sessions: new SessionsRepository(db.knex),
    authTokens: new AuthTokensRepository(db.knex),
    throttle: new LoginThrottleRepository(db.knex),
    audit: new AuditRepository(db.knex),
    unconfirmedDays: 14,
    schedule: '',
  });
  const { log } = memoryLogger();
  t.like(await job.run({ now, trigger: 'cli', log }), { sessions: 1, links: 1, unconfirmedAccounts: 1 });
  t.deepEqual((await db.knex('users').orderBy('id').pluck('id')) as number[], [fresh.id, confirmed.id, staff.id].sort((a, b) => a - b));
  t.false((await db.knex('users').pluck('id')).includes(stale.id));
  t.deepEqual(await db.knex('sessions').pluck('id'), ['b'.repeat(64)]);
  t.deepEqual(await db.knex('auth_tokens').pluck('token_hash'), ['d'.repeat(64)]);
  t.deepEqual(await db.knex('audit_log').where({ action: 'user.removed_unconfirmed' }).pluck('subject_id'), [String(stale.id)]);
  t.like(await job.run({ now, trigger: 'cli', log }), { sessions: 0, links: 0, unconfirmedAccounts: 0 }, 'a second run has nothing to do');
});
