import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseDatabaseUrl } from '../../server/config/index.js';
import { openDatabase, waitForDatabase } from '../../server/db/index.js';
import { ExitCode, FatalError } from '../../server/errors.js';
import { freePort } from '../support/cli.js';
import { createTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

async function fatal(promise: Promise<unknown>): Promise<FatalError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof FatalError) return error;
    throw error;
  }
  throw new Error('expected a FatalError');
}

test(`the test database answers at once on ${testDialect}`, async (t) => {
  const { db, drop } = await createTestDatabase();
  t.teardown(drop);
  await t.notThrowsAsync(waitForDatabase(db, { timeoutMs: 0 }));
});

test('a file that is not SQLite fails at once with what to do, and is left as it was', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-corrupt-'));
  const file = path.join(dir, 'slidebank.sqlite');
  const garbage = Buffer.from('this was a spreadsheet, not a database '.repeat(200));
  await writeFile(file, garbage);
  const db = openDatabase(parseDatabaseUrl(`sqlite:${file}`, dir));
  t.teardown(() => db.close());

  const { log, lines } = memoryLogger();
  const error = await fatal(waitForDatabase(db, { timeoutMs: 30_000, log }));
  t.deepEqual(lines.filter((l) => l.msg.includes('retrying')), [], 'waiting cannot mend a corrupt file');
  t.is(error.exitCode, ExitCode.database);
  t.regex(error.message, /is not a usable SQLite database \(file is not a database\)\. Restore it from a backup/);
  t.deepEqual(await readFile(file), garbage, 'the file is untouched');
});

test('an unreachable MariaDB is retried with back-off until the bound, then named', async (t) => {
  const port = await freePort();
  const db = openDatabase(parseDatabaseUrl(`mariadb://root@127.0.0.1:${port}/test`, '/'));
  t.teardown(() => db.close());
  const { log, lines } = memoryLogger();

  const error = await fatal(waitForDatabase(db, { timeoutMs: 1500, log }));
  t.is(error.exitCode, ExitCode.database);
  t.regex(error.message, new RegExp(`cannot reach MariaDB at 127\\.0\\.0\\.1:${port} \\(.*ECONNREFUSED.*\\) after \\d+ s\\. Start MariaDB, or correct DATABASE_URL`));
  const retries = lines.filter((l) => l.msg === 'database not reachable yet; retrying');
  t.true(retries.length >= 2, `retried ${retries.length} times`);
  t.deepEqual(
    retries.slice(0, 3).map((l) => l.retryInMs),
    [250, 500, 1000].slice(0, Math.min(3, retries.length)),
    'the wait doubles',
  );
});

const mariadbOnly = testDialect === 'mariadb' ? test : test.skip;

mariadbOnly('a wrong password fails at once and does not show the password', async (t) => {
  const server = new URL(process.env.TEST_DATABASE_URL!);
  server.password = 'definitely-wrong';
  const db = openDatabase(parseDatabaseUrl(server.toString(), '/'));
  t.teardown(() => db.close());
  const error = await fatal(waitForDatabase(db, { timeoutMs: 30_000 }));
  t.regex(error.message, /refused user ".*".*Check the user and password in DATABASE_URL/);
  t.false(error.message.includes('definitely-wrong'));
});

mariadbOnly('a database that does not exist is named with the statement that creates it', async (t) => {
  const server = new URL(process.env.TEST_DATABASE_URL!);
  server.pathname = '/no_such_slidebank_db';
  const db = openDatabase(parseDatabaseUrl(server.toString(), '/'));
  t.teardown(() => db.close());
  const error = await fatal(waitForDatabase(db, { timeoutMs: 30_000 }));
  t.regex(error.message, /has no database "no_such_slidebank_db"\. Create it \(CREATE DATABASE `no_such_slidebank_db`/);
});

test('SQLite keeps each query compiled for reuse: repeated, after a schema change, and past the bound', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-statements-'));
  const db = openDatabase(parseDatabaseUrl(`sqlite:${path.join(dir, 'statements.sqlite')}`, dir));
  t.teardown(() => db.close());
  await db.knex.schema.createTable('notes', (table) => {
    table.increments('id');
    table.string('text');
  });
  const connection = (await db.knex.client.acquireConnection()) as { prepare(sql: string): unknown };
  const sql = 'select * from notes where id = ?';
  t.is(connection.prepare(sql), connection.prepare(sql), 'the same SQL gets the same compiled statement');
  await db.knex.client.releaseConnection(connection);

  for (let i = 1; i <= 3; i++) await db.knex('notes').insert({ text: `note ${i}` });
  for (let i = 1; i <= 3; i++) t.deepEqual(await db.knex('notes').where({ id: i }).first(), { id: i, text: `note ${i}` });
  // A kept statement sees a column added after it was compiled.
  await db.knex.schema.alterTable('notes', (table) => table.string('author').defaultTo('anon'));
  t.deepEqual(await db.knex('notes').where({ id: 2 }).first(), { id: 2, text: 'note 2', author: 'anon' });
  // More distinct statements than are kept: the oldest are dropped and compiled again when asked for.
  for (let n = 0; n < 600; n++) t.is((await db.knex.raw(`select ${n} as n`))[0].n, n);
  t.deepEqual(await db.knex('notes').where({ id: 3 }).first(), { id: 3, text: 'note 3', author: 'anon' });
  // Writes are statements too.
  await db.knex('notes').where({ id: 1 }).update({ text: 'changed' });
  await db.knex('notes').where({ id: 1 }).update({ text: 'changed again' });
  t.is((await db.knex('notes').where({ id: 1 }).first()).text, 'changed again');
});
