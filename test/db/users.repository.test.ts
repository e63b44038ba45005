import test from 'ava';
import { UsersRepository } from '../../server/access/users.repository.js';
import { isUniqueViolation } from '../../server/db/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const test = await createMigratedTestDatabase();
  t.teardown(test.drop);
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

test(`levels, their expiry, confirmation, roles and disabling are stored and read back on ${testDialect}`, async (t) => {
  const users = await setup(t);
  const now = new Date('2026-11-29T10:00:00.000Z');
  const user = await users.create({ email: 'r@example.org', passwordHash: 'scrypt$old', level: 'L0', roles: [], emailConfirmedAt: null }, now);
  t.like(user, { level: 'L0', levelExpiresAt: null, lastLoginAt: null, emailConfirmedAt: null });

  t.true(await users.confirmEmail(user.id, now));
  t.false(await users.confirmEmail(user.id, now), 'a second confirmation changes nothing');
  t.like(await users.findById(user.id), { level: 'L1', emailConfirmedAt: now }, 'confirming raises L0 to L1');

  const expires = new Date('2027-11-29T10:00:00.000Z');
  await users.setLevel(user.id, 'L2', expires, now);
  t.like(await users.findById(user.id), { level: 'L2', levelExpiresAt: expires });
  t.false(await users.confirmEmail(user.id, now), 'confirming again does not lower or raise anything');
  t.is((await users.findById(user.id))?.level, 'L2');

  await users.setRoles(user.id, ['pathologist', 'admin'], now);
  t.deepEqual((await users.findById(user.id))?.roles, ['admin', 'pathologist']);
  t.is(await users.countActiveWithRole('admin'), 1);
  await users.setDisabled(user.id, now, now);
  t.is(await users.countActiveWithRole('admin'), 0, 'a disabled administrator does not count');
  t.is(await users.countWithRole('admin'), 1);
  t.deepEqual((await users.findById(user.id))?.disabledAt, now);

  await users.setPassword(user.id, 'scrypt$new', now);
  t.is(await users.passwordHash(user.id), 'scrypt$new');
  const credentials = await users.findCredentials('R@EXAMPLE.ORG');
  t.is(credentials?.passwordHash, 'scrypt$new');
  t.is(credentials?.user.id, user.id);
  t.is(await users.findCredentials('nobody@example.org'), undefined);

  await users.recordLogin(user.id, now);
  await users.setProfile(user.id, { name: 'New Name', institution: 'New Place' }, now);
  t.like(await users.findById(user.id), { lastLoginAt: now, name: 'New Name', institution: 'New Place' });
});

test(`users are searched by text, level, role and status, in pages, on ${testDialect}`, async (t) => {
  const users = await setup(t);
  const base = { passwordHash: null, emailConfirmedAt: new Date() };
  await users.create({ ...base, roles: [], email: 'ana@lab.example', name: 'Ana 50% Kim', institution: 'Lab_One', level: 'L1' });
  await users.create({ ...base, roles: ['curator'], email: 'bo@hospital.example', name: 'Bo', institution: 'Hospital', level: 'L3' });
  await users.create({ ...base, roles: [], email: 'cy@lab.example', name: 'Cy', institution: 'LabXOne', level: 'L0', emailConfirmedAt: null });
  const emails = async (criteria: Parameters<UsersRepository['search']>[0]) => (await users.search(criteria)).items.map((u) => u.email);
  const all = { limit: 10, offset: 0 };

  t.deepEqual(await emails(all), ['ana@lab.example', 'bo@hospital.example', 'cy@lab.example']);
  t.deepEqual(await emails({ ...all, q: 'LAB.' }), ['ana@lab.example', 'cy@lab.example'], 'case-insensitive');
  t.deepEqual(await emails({ ...all, q: '50%' }), ['ana@lab.example'], '% is literal');
  t.deepEqual(await emails({ ...all, q: 'lab_o' }), ['ana@lab.example'], '_ is literal (LabXOne does not match)');
  t.deepEqual(await emails({ ...all, q: 'a!b' }), [], '! is literal too');
  t.deepEqual(await emails({ ...all, level: 'L3' }), ['bo@hospital.example']);
  t.deepEqual(await emails({ ...all, role: 'curator' }), ['bo@hospital.example']);
  t.deepEqual(await emails({ ...all, status: 'unconfirmed' }), ['cy@lab.example']);
  t.deepEqual(await emails({ ...all, status: 'active' }), ['ana@lab.example', 'bo@hospital.example']);
  const page = await users.search({ limit: 2, offset: 2 });
  t.is(page.total, 3);
  t.deepEqual(page.items.map((u) => u.email), ['cy@lab.example']);
  t.deepEqual((await users.search({ ...all, role: 'curator' })).items[0]?.roles, ['curator']);
  t.deepEqual((await users.all()).map((u) => u.email), ['ana@lab.example', 'bo@hospital.example', 'cy@lab.example']);
});
