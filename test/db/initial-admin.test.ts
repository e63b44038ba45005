import { mkdtemp, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { ensureInitialAdmin } from '../../server/access/initial-admin.js';
import { verifyPassword } from '../../server/access/password.js';
import { UsersRepository } from '../../server/access/users.repository.js';
import { openDatabase } from '../../server/db/index.js';
import { createLogger } from '../../server/logging.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

const log = createLogger('silent');

test(`the first start creates one administrator and keeps the password in a private file on ${testDialect}`, async (t) => {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const users = new UsersRepository(db.knex);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-data-'));

  const admin = await ensureInitialAdmin(users, { email: 'admin@hospital.example', dataDir, log });
  if (!admin) return t.fail('no administrator was created');
  t.is(admin.file, path.join(dataDir, 'initial-admin.txt'));
  t.is((await stat(admin.file)).mode & 0o777, 0o600);
  const text = await readFile(admin.file, 'utf8');
  t.true(text.includes(`password: ${admin.password}`));

  const stored = await users.findByEmail('admin@hospital.example');
  t.deepEqual(stored?.roles, ['admin']);
  t.not(stored?.emailConfirmedAt, null);
  const hash = await db.knex('users').where({ email: 'admin@hospital.example' }).first('password_hash');
  t.true(await verifyPassword(admin.password, hash.password_hash));

  t.is(await ensureInitialAdmin(users, { email: 'admin@hospital.example', dataDir, log }), undefined, 'the next start does nothing');
  t.is(await users.countWithRole('admin'), 1);
});

test(`two nodes starting at once on an empty ${testDialect} database create one administrator`, async (t) => {
  const { db, target, drop } = await createMigratedTestDatabase();
  const otherNode = openDatabase(target);
  t.teardown(async () => {
    await otherNode.close();
    await drop();
  });
  const users = new UsersRepository(db.knex);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-data-'));
  const results = await Promise.all([
    ensureInitialAdmin(users, { email: 'admin@hospital.example', dataDir, log }),
    ensureInitialAdmin(new UsersRepository(otherNode.knex), { email: 'admin@hospital.example', dataDir, log }),
  ]);
  t.is(results.filter(Boolean).length, 1);
  t.is(await users.countWithRole('admin'), 1);
});
