import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext, type ImplementationFn } from 'ava';
import { parseDatabaseUrl } from '../../server/config/index.js';
import { migrateToLatest, migrationStatus, openDatabase, type Database } from '../../server/db/index.js';
import { changedTasks, localInventory, localVariables, missingForMariaDbRole, recap, runPlaybook, suiteMariaDb, suiteMariaDbLogin, testNeeding, writeYaml } from './playbook.js';
import { findCommand, run } from './tools.js';

/**
 * The mariadb role run for real (site.yml with a host only in slidebank_db, so the
 * common and mariadb roles run) against the suite's MariaDB server, logging in over TCP.
 * That server is shared with every other test, so the run keeps its root accounts and
 * its `test` database (slidebank_mariadb_remove_test_database off, every existing root
 * host in slidebank_mariadb_root_hosts), and the other secure steps are shown on decoy
 * accounts made for this test: an anonymous one and a root one from another host.
 * The database and user it makes are then used as the app uses them: the new user logs
 * in with its password, may do everything in its database and nothing elsewhere, and
 * runs the app's migrations. A second test runs the role with its production defaults
 * (root through the socket, every secure step) on a fresh MariaDB server of its own.
 */

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const name = `sb_role_${suffix}`;
// Differs from `name` only where it has an underscore, a wildcard in database-level grants.
const lookalike = `sbXrole_${suffix}`;
const password = `pw:${randomBytes(6).toString('hex')}@ -/`;
const decoyHost = `sb-role-${suffix.replaceAll('_', '-')}.invalid`;
const clientHosts = ['127.0.0.1', 'localhost'];

const probeTable = `test.sb_role_probe_${suffix}`;
const missing = await missingForMariaDbRole();
// A server of the test's own, where root logs in through the socket as the OS user root.
const missingForOwnServer = [
  ...(await missingForMariaDbRole(['mariadb-install-db', 'mariadbd', 'mariadb'])),
  ...(os.userInfo().uid === 0 ? [] : ['root (the own server lets root in by unix_socket only)']),
];

let admin: Database | undefined;
let work: string | undefined;
test.after.always(async () => {
  if (admin) {
    for (const host of [...clientHosts, decoyHost]) await admin.knex.raw('DROP USER IF EXISTS ?@?', [name, host]);
    await admin.knex.raw('DROP USER IF EXISTS ?@?, ?@?', ['', decoyHost, 'root', decoyHost]);
    for (const database of [name, lookalike]) await admin.knex.raw(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.knex.raw(`DROP TABLE IF EXISTS ${probeTable}`);
    await admin.close();
  }
  if (work) await rm(work, { recursive: true, force: true });
});

/** The error number MariaDB answered with, or null when the statement worked. */
async function refusal(statement: Promise<unknown>): Promise<number | null> {
  return statement.then(
    () => null,
    (error: { errno?: number }) => error.errno ?? -1,
  );
}

/** Everything about the root accounts that the role must leave alone. */
async function rootAccounts(db: Database): Promise<unknown[]> {
  const [rows] = (await db.knex.raw("SELECT Host, Password, plugin, authentication_string FROM mysql.user WHERE User = 'root' ORDER BY Host")) as [
    { Host: string }[],
  ];
  const grants = [];
  for (const row of rows) grants.push((await db.knex.raw('SHOW GRANTS FOR ?@?', ['root', row.Host]))[0]);
  return [rows, grants];
}

async function accountExists(db: Database, user: string, host: string): Promise<boolean> {
  const [rows] = (await db.knex.raw('SELECT 1 FROM mysql.user WHERE User = ? AND Host = ?', [user, host])) as [unknown[]];
  return rows.length > 0;
}

const roleTest: ImplementationFn<[]> = async (t) => {
  t.timeout(10 * 60_000);
  admin = openDatabase(suiteMariaDb);
  work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mariadb-role-'));

  const rootBefore = await rootAccounts(admin);
  // Read before the decoys exist: the root hosts to keep are the suite's, not the decoy's.
  const login = await suiteMariaDbLogin();
  await admin.knex.raw('CREATE USER ?@?', ['', decoyHost]);
  await admin.knex.raw('CREATE USER ?@?', ['root', decoyHost]);

  const inventory = await writeYaml(path.join(work, 'inventory.yml'), localInventory(['slidebank_db']));
  const variables = await writeYaml(path.join(work, 'vars.yml'), {
    ...(await localVariables(path.join(work, 'root'))),
    slidebank_database: 'mariadb',
    slidebank_db_name: name,
    slidebank_db_user: name,
    slidebank_db_password: password,
    slidebank_db_client_hosts: clientHosts,
    ...login,
  });
  const first = await runPlaybook({ inventory, variables });
  const second = await runPlaybook({ inventory, variables });
  t.is(recap(first).failed, 0);
  t.regex(first, /TASK \[mariadb : Create the Slidebank user for each client host\][^]*?changed: \[testhost\]/);
  t.is(recap(second).changed, 0, `the second run changed something:\n${changedTasks(second)}`);
  t.is(recap(second).failed, 0);
  t.regex(await readFile(path.join(work, 'root/etc/mysql/mariadb.conf.d/60-slidebank.cnf'), 'utf8'), /^bind-address = 127\.0\.0\.1$/m);

  // The secure steps: the decoys are gone, root and the `test` database are as they were.
  t.false(await accountExists(admin, '', decoyHost), 'the anonymous account is removed');
  t.false(await accountExists(admin, 'root', decoyHost), 'root from another host is removed');
  t.deepEqual(await rootAccounts(admin), rootBefore, 'the root accounts of the suite are untouched');
  t.is(((await admin.knex.raw("SHOW DATABASES LIKE 'test'")) as [unknown[]])[0].length, 1);

  // The new user logs in over TCP with its password, and only with it.
  const userUrl = (secret: string) => `mariadb://${encodeURIComponent(name)}:${encodeURIComponent(secret)}@${suiteMariaDb.host}:${suiteMariaDb.port}/${name}`;
  const wrong = openDatabase(parseDatabaseUrl(userUrl('not the password'), process.cwd()));
  t.is(await refusal(wrong.knex.raw('SELECT 1')), 1045, 'a wrong password is refused');
  await wrong.close();
  const app = openDatabase(parseDatabaseUrl(userUrl(password), process.cwd()));
  t.teardown(() => app.close());
  const [[who]] = (await app.knex.raw('SELECT CURRENT_USER() AS account')) as [[{ account: string }]];
  t.is(who.account, `${name}@127.0.0.1`);

  // All privileges on its database, spelled so that _ is not a wildcard; nothing anywhere else.
  const [grants] = (await app.knex.raw('SHOW GRANTS')) as [Record<string, string>[]];
  const grantLines = grants.map((row) => Object.values(row)[0]!);
  t.true(grantLines.includes(`GRANT ALL PRIVILEGES ON \`${name.replaceAll('_', '\\_')}\`.* TO \`${name}\`@\`127.0.0.1\``), grantLines.join('\n'));
  const [visible] = (await app.knex.raw('SHOW DATABASES')) as [{ Database: string }[]];
  t.deepEqual(visible.map((row) => row.Database).sort(), ['information_schema', name].sort());
  t.is(await refusal(app.knex.raw('SELECT User FROM mysql.user')), 1142, 'mysql.user is not readable');
  t.is(await refusal(app.knex.raw(`CREATE TABLE ${probeTable} (id INT)`)), 1142, 'no table can be made in `test`');
  t.is(await refusal(app.knex.raw(`CREATE DATABASE \`${lookalike}\``)), 1044, 'nor a database whose name matches the grant with _ as a wildcard');

  // The app's migrations, run as this user: tables, indexes and the audit log's triggers.
  const applied = await migrateToLatest(app);
  t.true(applied.length > 0);
  t.deepEqual((await migrationStatus(app)).pending, []);
  const [[triggers]] = (await app.knex.raw('SELECT COUNT(*) AS n FROM information_schema.triggers WHERE trigger_schema = DATABASE()')) as [[{ n: number }]];
  t.true(Number(triggers.n) > 0, 'the audit log triggers exist');
  t.deepEqual(await migrateToLatest(app), [], 'migrating again does nothing');
};

testNeeding(missing, 'the mariadb role secures the server and makes a database and user that the app migrates', roleTest);

interface OwnServer {
  socket: string;
  /** Run statements as root through the socket; the rows, tab-separated, unescaped. */
  sql(statements: string): Promise<string>;
}

/** A MariaDB server of this test's own, fresh from mariadb-install-db with its defaults, reachable only through its socket. */
async function startOwnServer(t: ExecutionContext, dir: string): Promise<OwnServer> {
  const data = path.join(dir, 'data');
  const socket = path.join(dir, 'mysqld.sock');
  const errorLog = path.join(dir, 'error.log');
  await run(findCommand('mariadb-install-db')!, ['--no-defaults', `--datadir=${data}`, '--user=root', '--auth-root-authentication-method=socket'], { maxBuffer: 16 << 20 });
  const server = spawn(
    findCommand('mariadbd')!,
    ['--no-defaults', `--datadir=${data}`, `--socket=${socket}`, '--skip-networking', '--user=root', `--pid-file=${path.join(dir, 'mariadbd.pid')}`, `--log-error=${errorLog}`],
    { stdio: 'ignore' },
  );
  t.teardown(() => new Promise<void>((resolve) => (server.exitCode !== null ? resolve() : (server.once('exit', () => resolve()), server.kill('SIGTERM')))));
  const sql = async (statements: string) => (await run(findCommand('mariadb')!, ['--no-defaults', '-S', socket, '-uroot', '-N', '-B', '-r', '-e', statements])).stdout;
  for (let attempt = 0; !(await sql('SELECT 1').then(() => true, () => false)); attempt++) {
    if (server.exitCode !== null || attempt > 600) throw new Error(`mariadbd did not start:\n${await readFile(errorLog, 'utf8').catch(() => '')}`);
    await sleep(100);
  }
  return { socket, sql };
}

testNeeding(missingForOwnServer, 'with its production defaults the mariadb role secures a fresh MariaDB server, logging in as root through the socket', async (t) => {
  t.timeout(10 * 60_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mariadb-own-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { socket, sql } = await startOwnServer(t, dir);
  const accounts = async () => (await sql("SELECT CONCAT(User, '@', Host) FROM mysql.user ORDER BY 1")).trim().split('\n');
  const testGrants = "SELECT COUNT(*) FROM mysql.db WHERE Db IN ('test', 'test\\\\_%')";

  // What a fresh server has, and the secure steps remove; root from anywhere added for the test.
  await sql("CREATE USER 'root'@'%'");
  const before = await accounts();
  t.true(before.some((account) => account.startsWith('@')), `anonymous accounts: ${before.join(', ')}`);
  t.true(before.includes('root@%'));
  t.is((await sql("SHOW DATABASES LIKE 'test'")).trim(), 'test');
  t.true(Number(await sql(testGrants)) > 0, 'every account may use test and test_*');

  const inventory = await writeYaml(path.join(dir, 'inventory.yml'), localInventory(['slidebank_db']));
  const variables = await writeYaml(path.join(dir, 'vars.yml'), {
    ...(await localVariables(path.join(dir, 'root'))),
    slidebank_database: 'mariadb',
    slidebank_db_password: randomBytes(12).toString('hex'),
    // Only the socket differs from a Debian 12 host's (vars/Debian.yml): everything else is the default.
    slidebank_mariadb_socket: socket,
  });
  const first = await runPlaybook({ inventory, variables });
  const second = await runPlaybook({ inventory, variables });
  t.is(recap(first).failed, 0);
  t.is(recap(second).changed, 0, `the second run changed something:\n${changedTasks(second)}`);
  t.is(recap(second).failed, 0);

  const after = await accounts();
  t.false(after.some((account) => account.startsWith('@')), `no anonymous account: ${after.join(', ')}`);
  t.deepEqual(after.filter((account) => account.startsWith('root@')), ['root@localhost'], 'root logs in locally only, still through the socket');
  t.deepEqual(after.filter((account) => account.startsWith('slidebank@')), ['slidebank@127.0.0.1', 'slidebank@localhost']);
  t.is((await sql("SHOW DATABASES LIKE 'test'")).trim(), '');
  t.is(Number(await sql(testGrants)), 0);
  t.is((await sql("SHOW DATABASES LIKE 'slidebank'")).trim(), 'slidebank');
  t.is((await sql('SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = \'slidebank\'')).trim(), 'utf8mb4\tutf8mb4_unicode_ci');
});
