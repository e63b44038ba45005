import { mkdtemp, readFile, stat, utimes, writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { collect, freePort, runCli, runCliInProcess, spawnCli, staleBuild, waitForHttp } from '../support/cli.js';
import { migrations } from '../../server/db/migrations/index.js';
import { createTestDatabase, testDialect } from '../support/database.js';

const tempDir = () => mkdtemp(path.join(os.tmpdir(), 'slidebank-e2e-'));

test('--help works on the program and on every command', async (t) => {
  const top = await runCliInProcess(['--help']);
  t.is(top.code, 0);
  for (const command of ['serve', 'migrate', 'config']) t.regex(top.stdout, new RegExp(`^  ${command}\\b`, 'm'));
  for (const args of [['serve', '--help'], ['migrate', '--help'], ['config', 'check', '--help']]) {
    const result = await runCliInProcess(args);
    t.is(result.code, 0, args.join(' '));
    t.regex(result.stdout, /^Usage: slidebank /m);
  }
});

test('the tests of the built CLI refuse a build older than any file under server/, and say how to build', async (t) => {
  const root = await tempDir();
  const stamp = path.join(root, 'dist', '.build-stamp');
  await mkdir(path.join(root, 'server', 'cli'), { recursive: true });
  await mkdir(path.join(root, 'dist'));
  t.regex(staleBuild(root, stamp) ?? '', /^the server is not built \(dist\/\.build-stamp is missing\): run `npm run build:server`/);
  const source = path.join(root, 'server', 'cli', 'main.ts');
  await writeFile(source, '');
  await writeFile(stamp, '');
  const earlier = new Date(Date.now() - 60_000);
  await utimes(source, earlier, earlier);
  t.is(staleBuild(root, stamp), undefined, 'built after the last edit');
  await utimes(source, new Date(), new Date(Date.now() + 60_000));
  t.is(staleBuild(root, stamp), 'server/cli/main.ts is newer than the build in dist/: run `npm run build:server` (`npm test` does it first)');
});

test('config check prints each effective value with its source and masks the database password', async (t) => {
  const result = await runCli(['config', 'check'], {
    cwd: await tempDir(),
    env: {
      DATABASE_URL: 'mariadb://slidebank:s3cret-pw@db.hospital.local:3306/slidebank',
      PORT: '9090',
      SLIDEBANK_MAIL_SMTP_URL: 'smtp://mailer:m41l-pw@smtp.hospital.local:587',
    },
  });
  t.is(result.code, 0, result.stderr);
  t.false(result.stdout.includes('s3cret-pw'));
  t.false(result.stdout.includes('m41l-pw'), 'a password inside any URL is masked');
  t.regex(result.stdout, /^mail\.smtp\.url\s+"smtp:\/\/mailer:\*\*\*\*@smtp\.hospital\.local:587"/m);
  t.regex(result.stdout, /^databaseUrl\s+"mariadb:\/\/slidebank:\*\*\*\*@db\.hospital\.local:3306\/slidebank"\s+\(env DATABASE_URL\)$/m);
  t.regex(result.stdout, /^port\s+9090\s+\(env PORT\)$/m);
  t.regex(result.stdout, /^paths\.slides\s+".*\/var\/slides"\s+\(config\/default\.json|.*default\.json\)$/m);

  const json = await runCli(['config', 'check', '--json'], { env: { PORT: '9090' } });
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout), { port: { value: 9090, source: 'env PORT' } });
});

test('a bad configuration stops every command with exit code 2 and one line per problem', async (t) => {
  for (const command of [['config', 'check'], ['serve'], ['migrate']]) {
    const result = await runCliInProcess(command, { env: { PORT: 'http', DATABASE_URL: 'postgres://x@y/z' } });
    t.is(result.code, 2, command.join(' '));
    t.is(result.stdout, '');
    t.is(
      result.stderr,
      [
        'slidebank: configuration is invalid:',
        '  - port (env PORT): must be a whole number from 0 to 65535 (0 picks a free port), got "http"',
        '  - databaseUrl (env DATABASE_URL): unsupported scheme "postgres:"; use sqlite:path/file.sqlite or mariadb://user:password@host:port/database',
        '',
      ].join('\n'),
    );
  }
});

test(`serve: first start migrates, creates the administrator, publishes the demo slides, answers /healthz, and stops cleanly on SIGTERM (${testDialect})`, async (t) => {
  const cwd = await tempDir();
  const database = testDialect === 'mariadb' ? await createTestDatabase() : undefined;
  if (database) t.teardown(database.drop);
  const port = await freePort();
  const env = { PORT: String(port), SLIDEBANK_HOST: '127.0.0.1', DATABASE_URL: database?.url };

  const server = spawnCli(['serve'], { cwd, env });
  // The first start generates and publishes eight demo slides: ~11 s alone, three times that beside the rest of the suite on two cores.
  const finished = collect(server, 240_000);
  const health = await waitForHttp(`http://127.0.0.1:${port}/healthz`, 120_000, server);
  t.is(health.status, 200);
  t.like(await health.json(), { status: 'ok', database: { status: 'up', dialect: testDialect } });
  // The catalog is for logged-in viewers: the initial administrator logs in with the password from its file.
  t.is((await fetch(`http://127.0.0.1:${port}/api/slides`)).status, 401, 'not without logging in');
  const adminFile = await readFile(path.join(cwd, 'var', 'initial-admin.txt'), 'utf8');
  const csrf = await fetch(`http://127.0.0.1:${port}/api/auth/csrf`);
  const csrfHeaders = { cookie: csrf.headers.getSetCookie().map((c) => c.split(';')[0]).join('; '), 'x-csrf-token': ((await csrf.json()) as { csrfToken: string }).csrfToken };
  const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...csrfHeaders },
    body: JSON.stringify({ email: /email: (\S+)/.exec(adminFile)?.[1], password: /password: (\S+)/.exec(adminFile)?.[1] }),
  });
  t.is(login.status, 200);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const catalog = (await (await fetch(`http://127.0.0.1:${port}/api/slides?pageSize=50`, { headers: { cookie } })).json()) as {
    total: number;
    items: { name: string; organ: string; stain: string }[];
    facets: { organ: { value: string; count: number }[] };
  };
  t.is(catalog.total, 8, 'the demo slides are in the catalog');
  t.deepEqual(catalog.facets.organ.map((f) => f.value).sort(), ['CO', 'KI', 'LV', 'PB', 'PR']);
  t.true(catalog.items.some((i) => i.stain === 'IHC') && catalog.items.some((i) => i.stain === 'HE'));
  server.kill('SIGTERM');
  const first = await finished;
  t.is(first.code, 0, first.stderr);

  const printed = /password: (\S+)/.exec(first.stdout)?.[1];
  t.truthy(printed, 'the password is printed once');
  const file = path.join(cwd, 'var', 'initial-admin.txt');
  t.is((await stat(file)).mode & 0o777, 0o600);
  t.true((await readFile(file, 'utf8')).includes(`password: ${printed}`));
  if (!database) t.true((await stat(path.join(cwd, 'var', 'slidebank.sqlite'))).isFile(), 'SQLite lives in var/');
  for (const folder of ['slides', 'quarantine', 'cache', 'outbox']) t.true((await stat(path.join(cwd, 'var', folder))).isDirectory());
  const logs = first.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; step?: string });
  t.deepEqual(
    logs.filter((l) => l.step).map((l) => l.step),
    ['folders', 'database', 'migrations', 'first start', 'user guide', 'agreement', 'site key', 'demo data', 'http'],
    'each boot step is logged with its time',
  );
  t.true(logs.some((l) => l.msg === 'stopped'));
  t.true(logs.some((l) => l.msg.startsWith('demo data: 8 generated slides published')));
  t.true(logs.some((l) => l.msg.startsWith('installed the default data use agreement')), 'researchers can apply at once');

  const again = spawnCli(['serve'], { cwd, env });
  const second = collect(again, 120_000);
  t.is((await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, again)).status, 200);
  again.kill('SIGINT');
  const result = await second;
  t.is(result.code, 0);
  t.false(result.stdout.includes('password:'), 'the second start creates no administrator');
  t.false(result.stdout.includes('demo data: '), 'nor demo slides');
  t.false(result.stdout.includes('installed the default data use agreement'), 'nor a second agreement');
});

test('serve on a port in use exits with code 4 and says which port', async (t) => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.teardown(() => void blocker.close());
  const { port } = blocker.address() as { port: number };
  const result = await runCli(['serve'], { cwd: await tempDir(), env: { PORT: String(port), SLIDEBANK_HOST: '127.0.0.1', SLIDEBANK_DEMO: '0' } });
  t.is(result.code, 4);
  t.regex(result.stderr, new RegExp(`^slidebank: http: port ${port} on 127\\.0\\.0\\.1 is already in use\\. Stop the other process or choose another port with PORT$`, 'm'));
});

test('serve on a corrupt SQLite file exits with code 3, says what to do, and keeps the file', async (t) => {
  const cwd = await tempDir();
  await mkdir(path.join(cwd, 'var'));
  const file = path.join(cwd, 'var', 'slidebank.sqlite');
  const garbage = Buffer.alloc(8192, 'not sqlite ');
  await writeFile(file, garbage);
  const result = await runCli(['serve'], { cwd, env: { PORT: String(await freePort()) } });
  t.is(result.code, 3);
  t.regex(result.stderr, /^slidebank: database: .*var\/slidebank\.sqlite is not a usable SQLite database \(file is not a database\)\. Restore it from a backup, or move it aside to start with an empty database$/m);
  t.deepEqual(await readFile(file), garbage);
});

test('serve with MariaDB unreachable retries for the configured bound, then exits with code 3', async (t) => {
  const dbPort = await freePort();
  const result = await runCli(['serve'], {
    cwd: await tempDir(),
    env: {
      PORT: String(await freePort()),
      DATABASE_URL: `mariadb://root@127.0.0.1:${dbPort}/slidebank`,
      SLIDEBANK_DATABASE_CONNECT_TIMEOUT_SECONDS: '2',
    },
  });
  t.is(result.code, 3);
  t.regex(result.stderr, new RegExp(`^slidebank: database: cannot reach MariaDB at 127\\.0\\.0\\.1:${dbPort} \\(.*ECONNREFUSED.*\\) after \\d+ s\\. Start MariaDB, or correct DATABASE_URL$`, 'm'));
  t.regex(result.stdout, /database not reachable yet; retrying/);
});

test(`migrate applies, reports and previews on ${testDialect}`, async (t) => {
  const database = await createTestDatabase();
  t.teardown(database.drop);
  const env = { DATABASE_URL: database.url };
  const cwd = await tempDir();

  const preview = await runCli(['migrate', '--dry-run'], { cwd, env });
  t.is(preview.code, 0, preview.stderr);
  t.regex(preview.stdout, /^would apply {2}2026-11-29-01-accounts$/m);
  t.false(await database.db.knex.schema.hasTable('users'), '--dry-run changes nothing');

  const apply = await runCli(['migrate'], { cwd, env });
  t.is(apply.code, 0, apply.stderr);
  t.regex(apply.stdout, /^applied {2}2026-11-29-01-accounts$/m);
  t.true(await database.db.knex.schema.hasTable('users'));

  const status = await runCli(['migrate', '--status'], { cwd, env });
  t.regex(status.stdout, new RegExp(`: ${migrations.length} applied, 0 pending$`, 'm'));
  const again = await runCli(['migrate'], { cwd, env });
  t.regex(again.stdout, /up to date$/m);

  const rollbackPreview = await runCli(['migrate', '--rollback', '--dry-run'], { cwd, env });
  t.regex(rollbackPreview.stdout, /would roll back the latest batch/);
  t.true(await database.db.knex.schema.hasTable('users'));
});
