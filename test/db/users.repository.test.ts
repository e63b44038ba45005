import test from 'ava';
import { UsersRepository } from '../../server/access/users.repository.js';
import { isUniqueViolation, migrateToLatest } from '../../server/db/index.js';
import { createTestDatabase, testDialect } from '../support/database.js';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const test = await createTestDatabase();
  t.teardown(test.drop);
  await migrateToLatest(test.db);
  return new UsersRepository(test.db.knex);
}

test(`a user is stored with roles and read back with UTC times on ${testDialect}`, async (t) => {
  const users = await setup(t);
  const confirmed = new Date('2026-03-01T23:59:58.123Z');
  const created = await users.create(
    {
      email: 'Pathologist@Hospital.Example',
      name: 'Dr. Kim',
      institution: 'Seoul National University Hospital',
      passwordHash: 'scrypt$x',
      level: 'L1',
      roles: ['pathologist', 'curator'],
      emailConfirmedAt: confirmed,
    },
    new Date('2026-11-29T01:02:03.004Z'),
  );
  t.like(created, { email: 'pathologist@hospital.example', name: 'Dr. Kim', level: 'L1', disabledAt: null });
  t.deepEqual(created.roles, ['curator', 'pathologist']);
  t.is(created.emailConfirmedAt?.toISOString(), confirmed.toISOString());
  t.is(created.createdAt.toISOString(), '2026-11-29T01:02:03.004Z');
  t.is(typeof created.id, 'number', 'ids are numbers, not BigInt');

  const found = await users.findByEmail('PATHOLOGIST@hospital.example');
  t.deepEqual(found, created);
  t.is(await users.findByEmail('nobody@example.org'), undefined);
  t.is(await users.countWithRole('curator'), 1);
  t.is(await users.countWithRole('admin'), 0);
});

test(`a second account with the same address (any case) is refused and nothing is half-written on ${testDialect}`, async (t) => {
  const users = await setup(t);
  const base = { passwordHash: null, level: 'L0' as const, roles: [], emailConfirmedAt: null };
  await users.create({ ...base, email: 'a@example.org' });
  const error = await t.throwsAsync(users.create({ ...base, email: 'A@example.org', roles: ['admin'] }), { any: true });
  t.true(isUniqueViolation(error));
  t.is(await users.countWithRole('admin'), 0, 'the roles of the refused account were rolled back');
});
