import test, { type ExecutionContext } from 'ava';
import { UsersRepository } from '../../server/access/users.repository.js';
import { AuditRepository, type AuditEntry } from '../../server/audit/index.js';
import { APPEND_ONLY_MESSAGE } from '../../server/db/migrations/2026-11-29-06-audit.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';

/** A migrated database and an audit repository whose clock reads `clock.now`. */
async function setup(t: ExecutionContext) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const clock = { now: new Date('2026-11-29T10:00:00.000Z') };
  const audit = new AuditRepository(database.db.knex, () => clock.now);
  return { database, audit, clock, users: new UsersRepository(database.db.knex) };
}

async function addUser(users: UsersRepository, email: string): Promise<number> {
  return (await users.create({ email, passwordHash: null, level: 'L1', roles: [], emailConfirmedAt: null })).id;
}

async function rawRows(database: TestDatabase) {
  return database.db.knex('audit_log').orderBy('id').select();
}

test(`an event is recorded with time, actor, subject, address and details, and read back on ${testDialect}`, async (t) => {
  const { audit, users } = await setup(t);
  const admin = await addUser(users, 'Admin@Hospital.example');
  await audit.record({
    action: 'dua.approved',
    actorId: admin,
    subjectType: 'dua_application',
    subjectId: 3,
    ip: '2001:db8::1',
    details: { userId: 12, expiresAt: '2027-11-29', password: 'hunter2', nested: { token: 'abc', tokenId: 7 } },
  });
  await audit.record({ action: 'auth.login_failed', actorId: null, ip: '10.0.0.9', details: { email: 'x@example.org' } });

  const { items, total } = await audit.list({ limit: 10, offset: 0 });
  t.is(total, 2);
  t.deepEqual(items[1], {
    id: items[1]!.id,
    at: new Date('2026-11-29T10:00:00.000Z'),
    action: 'dua.approved',
    actorId: admin,
    actorEmail: 'admin@hospital.example',
    subjectType: 'dua_application',
    subjectId: '3',
    ip: '2001:db8::1',
    details: { userId: 12, expiresAt: '2027-11-29', password: '****', nested: { token: '****', tokenId: 7 } },
  } satisfies AuditEntry);
  t.like(items[0], { action: 'auth.login_failed', actorId: null, actorEmail: null, subjectType: null, subjectId: null, ip: '10.0.0.9' });
  t.true(items[0]!.id > items[1]!.id, 'newest first');
  t.is(typeof items[0]!.id, 'number', 'ids are numbers, not BigInt');
});

test(`filters: action, action family, actor, subject, time window, paging on ${testDialect}`, async (t) => {
  const { audit, clock, users } = await setup(t);
  const alice = await addUser(users, 'alice@example.org');
  const bob = await addUser(users, 'bob@example.org');
  const events: [string, string, number | null, string?, string?][] = [
    ['2026-11-01T00:00:00.000Z', 'auth.login', alice],
    ['2026-11-02T12:00:00.000Z', 'dua.applied', alice, 'dua_application', '1'],
    ['2026-11-03T00:00:00.000Z', 'dua.approved', bob, 'dua_application', '1'],
    ['2026-11-03T23:59:59.999Z', 'download.slide', alice, 'slide', '8'],
    ['2026-11-04T00:00:00.000Z', 'dua_x.other', null],
    ['2026-11-05T00:00:00.000Z', 'auth.login', bob],
  ];
  for (const [at, action, actorId, subjectType, subjectId] of events) {
    clock.now = new Date(at);
    await audit.record({ action, actorId, ...(subjectType ? { subjectType, subjectId } : {}) });
  }
  const actions = async (filters: Parameters<AuditRepository['list']>[0]) => (await audit.list(filters)).items.map((e) => e.action);
  const all = { limit: 100, offset: 0 };

  t.deepEqual(await actions({ ...all, action: 'auth.login' }), ['auth.login', 'auth.login']);
  t.deepEqual(await actions({ ...all, action: 'dua.*' }), ['dua.approved', 'dua.applied'], 'a family; `_` is not a wildcard');
  t.deepEqual(await actions({ ...all, actorId: bob }), ['auth.login', 'dua.approved']);
  t.deepEqual(await actions({ ...all, subjectType: 'dua_application', subjectId: '1' }), ['dua.approved', 'dua.applied']);
  t.deepEqual(
    await actions({ ...all, from: new Date('2026-11-02T12:00:00.000Z'), to: new Date('2026-11-04T00:00:00.000Z') }),
    ['download.slide', 'dua.approved', 'dua.applied'],
    'from is inclusive, to exclusive, to the millisecond',
  );
  t.deepEqual(await actions({ ...all, actorId: alice, action: 'download.slide' }), ['download.slide']);

  const page = await audit.list({ limit: 2, offset: 2 });
  t.is(page.total, 6);
  t.deepEqual(page.items.map((e) => e.action), ['download.slide', 'dua.approved']);
  const filteredPage = await audit.list({ actorId: alice, limit: 1, offset: 0 });
  t.is(filteredPage.total, 3, 'the total counts every match, not the page');

  const streamed: string[] = [];
  for await (const entry of audit.entries({ actorId: alice }, 2)) streamed.push(entry.action);
  t.deepEqual(streamed, ['auth.login', 'dua.applied', 'download.slide'], 'entries() is oldest first, across batches');
  const none: AuditEntry[] = [];
  for await (const entry of audit.entries({ action: 'nothing.here' })) none.push(entry);
  t.deepEqual(none, []);
});

test(`the database refuses UPDATE and DELETE on audit_log, and the row stays as it was, on ${testDialect}`, async (t) => {
  const { database, audit } = await setup(t);
  const { knex } = database.db;
  await audit.record({ action: 'user.level_changed', actorId: 1, subjectType: 'user', subjectId: 12, details: { from: 'L1', to: 'L2' } });
  const before = await rawRows(database);
  t.is(before.length, 1);

  /** The database's refusal: better-sqlite3's SqliteError is not an Error subclass ava recognises, hence `any`. */
  const refusal = async (operation: Promise<unknown>) => {
    const error = (await t.throwsAsync(operation, { any: true })) as unknown as Error & { sqlState?: string; code?: string };
    t.true(error.message.includes(APPEND_ONLY_MESSAGE), error.message);
    return error;
  };
  const update = await refusal(knex('audit_log').update({ action: 'user.nothing_happened' }));
  await refusal(knex('audit_log').where({ id: before[0].id }).update({ details: '{}' }));
  await refusal(knex('audit_log').where({ id: before[0].id }).delete());
  await refusal(knex('audit_log').delete());
  if (testDialect === 'mariadb') t.is(update.sqlState, '45000');
  else t.is(update.code, 'SQLITE_CONSTRAINT_TRIGGER');

  t.deepEqual(await rawRows(database), before);
  t.false('update' in audit || 'delete' in audit || 'remove' in audit, 'and the repository has no method for it');
});

test(`deleting a user who acted keeps their events (no foreign key) on ${testDialect}`, async (t) => {
  const { database, audit, users } = await setup(t);
  const id = await addUser(users, 'gone@example.org');
  await audit.record({ action: 'auth.login', actorId: id });
  await database.db.knex('users').where({ id }).delete();
  const [entry] = (await audit.list({ limit: 1, offset: 0 })).items;
  t.like(entry, { action: 'auth.login', actorId: id, actorEmail: null });
});

test(`an event recorded inside a transaction goes with it on ${testDialect}`, async (t) => {
  const { database, audit } = await setup(t);
  const failure = new Error('the change failed');
  await t.throwsAsync(
    database.db.knex.transaction(async (trx) => {
      await audit.record({ action: 'dua.approved', actorId: 1 }, trx);
      throw failure;
    }),
    { is: failure },
  );
  await database.db.knex.transaction((trx) => audit.record({ action: 'dua.rejected', actorId: 1 }, trx));
  t.deepEqual((await audit.list({ limit: 10, offset: 0 })).items.map((e) => e.action), ['dua.rejected']);
});

test(`malformed actions are a programming error; long fields are clipped and huge details summarised on ${testDialect}`, async (t) => {
  const { audit } = await setup(t);
  for (const action of ['', 'login', 'Auth.Login', 'auth.', 'auth login', `a.${'x'.repeat(64)}`]) {
    await t.throwsAsync(audit.record({ action, actorId: null }), { message: /audit action/ }, action);
  }
  await audit.record({ action: 'page.updated', actorId: null, subjectType: 'x'.repeat(40), subjectId: 'y'.repeat(200), details: { body: 'z'.repeat(70_000) } });
  const [entry] = (await audit.list({ limit: 1, offset: 0 })).items;
  t.is(entry!.subjectType, 'x'.repeat(32));
  t.is(entry!.subjectId, 'y'.repeat(128));
  t.like(entry!.details, { truncated: true });
  t.true((entry!.details.bytes as number) > 70_000);
});
