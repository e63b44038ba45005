import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { AccessTokensRepository } from '../../server/access/access-tokens.repository.js';
import { verifyPassword } from '../../server/access/password.js';
import { sha256Hex } from '../../server/access/secrets.js';
import { collect, freePort, runCli, spawnCli, waitForHttp } from '../support/cli.js';
import { createTestDatabase, testDialect, type TestDatabase } from '../support/database.js';

/** `slidebank user …` as operators and scripts run it, on a real database. */

const PASSWORD = 'lighthouse keeper 1907';

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const database = await createTestDatabase();
  t.teardown(database.drop);
  const cwd = await mkdtemp(path.join(os.tmpdir(), 'slidebank-user-'));
  const run = (args: string[], env: Record<string, string> = {}) => runCli(['user', ...args], { cwd, env: { DATABASE_URL: database.url, ...env } });
  return { database, cwd, run };
}

async function auditActions(database: TestDatabase): Promise<{ action: string; actor_id: number | null; subject_id: string; details: string }[]> {
  return database.db.knex('audit_log').orderBy('id').select('action', 'actor_id', 'subject_id', 'details');
}

test(`user add creates confirmed accounts; L2 is an administrative grant for one year (${testDialect})`, async (t) => {
  const { database, run } = await setup(t);
  const added = await run(['add', '--email', 'Curator@Hospital.Example', '--password', PASSWORD, '--level', 'L2', '--role', 'curator', '--role', 'pathologist,admin', '--name', 'Kim', '--institution', 'SNUH']);
  t.is(added.code, 0, added.stderr);
  const until = new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10);
  t.regex(added.stdout, new RegExp(`^created curator@hospital\\.example \\(id \\d+\\): L2 until ${until}, roles: admin, curator, pathologist$`, 'm'));

  const row = await database.db.knex('users').where({ email: 'curator@hospital.example' }).first();
  t.like(row, { level: 'L2', name: 'Kim', institution: 'SNUH', disabled_at: null });
  t.not(row.email_confirmed_at, null, 'confirmed');
  const expiry = new Date(`${row.level_expires_at.replace(' ', 'T')}Z`).getTime();
  t.true(Math.abs(expiry - (Date.now() + 365 * 86_400_000)) < 120_000, 'expires a year from now');
  t.true(await verifyPassword(PASSWORD, row.password_hash));

  // Every option also reads an environment variable; the password then stays out of the process list.
  const byEnv = await run(['add'], {
    SLIDEBANK_USER_EMAIL: 'script@lab.example',
    SLIDEBANK_USER_PASSWORD: PASSWORD,
    SLIDEBANK_USER_LEVEL: 'L1',
    SLIDEBANK_USER_NAME: 'Batch Job',
  });
  t.is(byEnv.code, 0, byEnv.stderr);
  t.regex(byEnv.stdout, /^created script@lab\.example \(id \d+\): L1$/m);

  const list = await run(['list']);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^EMAIL +LEVEL +STORED +EXPIRES +ROLES +STATUS +NAME$/m);
  t.regex(list.stdout, new RegExp(`^curator@hospital\\.example +L2 +L2 +${until} +admin,curator,pathologist +active +Kim$`, 'm'));
  t.regex(list.stdout, /^script@lab\.example +L1 +L1 +- +- +active +Batch Job$/m);
  t.regex(list.stdout, /^2 account\(s\)$/m);
  const json = await run(['list', '--json']);
  const parsed = JSON.parse(json.stdout) as { email: string; level: string; roles: string[]; levelExpiresAt: string | null }[];
  t.deepEqual(parsed.map((u) => [u.email, u.level, u.roles]), [
    ['curator@hospital.example', 'L2', ['admin', 'curator', 'pathologist']],
    ['script@lab.example', 'L1', []],
  ]);

  const audit = await auditActions(database);
  t.deepEqual(audit.map((a) => a.action), ['user.created', 'user.level_changed', 'dua.approved', 'user.created', 'user.level_changed']);
  t.true(audit.every((a) => a.actor_id === null), 'the CLI acts without an account');
  t.like(JSON.parse(audit[0]!.details), { email: 'curator@hospital.example', level: 'L2', roles: ['admin', 'curator', 'pathologist'], via: 'cli' });
  t.like(JSON.parse(audit[1]!.details), { from: null, to: 'L2', via: 'cli' });
  t.is(JSON.parse(audit[1]!.details).levelExpiresAt.slice(0, 10), until);

  // The L2 rests on an administrative DUA approval on record, so that reports and expiry apply to it.
  const approval = await database.db.knex('dua_applications').where({ user_id: row.id }).first();
  t.like(approval, { status: 'approved', user_id: row.id });
  t.truthy(approval.administrative);
  t.is(String(approval.valid_until).slice(0, 10), until);
  t.like(JSON.parse(audit[2]!.details), { userId: row.id, administrative: true });
});

test(`user add refuses bad input with exit code 1 and a reason, and creates nothing (${testDialect})`, async (t) => {
  const { database, run } = await setup(t);
  t.is((await run(['add', '--email', 'taken@example.org', '--password', PASSWORD, '--level', 'L1'])).code, 0);
  const cases: [string[], RegExp][] = [
    [['--email', 'a@example.org', '--password', 'short', '--level', 'L1'], /^slidebank: The password must be at least 12 characters long$/m],
    [['--email', 'a@example.org', '--password', 'a@example.org', '--level', 'L1'], /must not be your e-mail address/],
    [['--email', 'TAKEN@example.org', '--password', PASSWORD, '--level', 'L1'], /^slidebank: taken@example\.org already has an account$/m],
    [['--email', 'not-an-address', '--password', PASSWORD, '--level', 'L1'], /e-mail must be an e-mail address/],
    [['--email', 'a@example.org', '--password', PASSWORD, '--level', 'L1', '--role', 'owner'], /role must be one of admin, curator, pathologist/],
    [['--email', 'a@example.org', '--password', PASSWORD, '--level', 'L1', '--name', '<b>Eve</b>'], /name must be plain text/],
    [['--email', 'a@example.org', '--password', PASSWORD, '--level', 'L5'], /argument 'L5' is invalid\. Allowed choices are L0, L1, L2, L3/],
    [['--email', 'a@example.org', '--level', 'L1'], /required option '--password <password>' not specified/],
  ];
  for (const [args, message] of cases) {
    const result = await run(['add', ...args]);
    t.is(result.code, 1, args.join(' '));
    t.regex(result.stderr, message, args.join(' '));
  }
  t.is((await database.db.knex('users').count({ n: '*' }).first())!.n, 1);
});

test(`set-level, disable and enable change accounts, audited, with --dry-run to preview (${testDialect})`, async (t) => {
  const { database, run } = await setup(t);
  await run(['add', '--email', 'admin@example.org', '--password', PASSWORD, '--level', 'L1', '--role', 'admin']);
  await run(['add', '--email', 'r@example.org', '--password', PASSWORD, '--level', 'L2']);

  const preview = await run(['set-level', 'r@example.org', 'L3', '--dry-run']);
  t.is(preview.code, 0, preview.stderr);
  t.regex(preview.stdout, /^would set r@example\.org from L2 to L3$/m);
  t.like(await database.db.knex('users').where({ email: 'r@example.org' }).first(), { level: 'L2' });

  const set = await run(['set-level', 'R@example.org', 'L3', '--reason', 'partner membership']);
  t.is(set.code, 0, set.stderr);
  t.regex(set.stdout, /^r@example\.org: L2 → L3$/m);
  t.like(await database.db.knex('users').where({ email: 'r@example.org' }).first(), { level: 'L3', level_expires_at: null });

  const l2 = await run(['set-level', 'r@example.org', 'L2']);
  t.is(l2.code, 1);
  t.regex(l2.stderr, /L2 comes with an approved data use agreement/);
  const unknown = await run(['set-level', 'nobody@example.org', 'L1']);
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /^slidebank: There is no account for nobody@example\.org$/m);

  const owner = await database.db.knex('users').where({ email: 'r@example.org' }).first();
  const tokens = new AccessTokensRepository(database.db.knex);
  const token = await tokens.create({ userId: owner.id, name: 'script', prefix: 'sbk_cliscrip', tokenHash: sha256Hex('cli token'), scope: 'all', expiresAt: null }, new Date());
  t.regex((await run(['disable', 'r@example.org', '--dry-run'])).stdout, /^would disable r@example\.org$/m);
  t.is((await database.db.knex('users').where({ email: 'r@example.org' }).first()).disabled_at, null);
  const disabled = await run(['disable', 'r@example.org']);
  t.is(disabled.code, 0, disabled.stderr);
  t.not((await database.db.knex('users').where({ email: 'r@example.org' }).first()).disabled_at, null);
  t.regex((await run(['disable', 'r@example.org'])).stdout, /already disabled/);
  t.regex((await run(['list'])).stdout, /^r@example\.org +L3 +L3 +- +- +disabled/m);
  const lastAdmin = await run(['disable', 'admin@example.org']);
  t.is(lastAdmin.code, 1);
  t.regex(lastAdmin.stderr, /last active administrator/);
  t.is((await run(['enable', 'r@example.org'])).code, 0);
  t.is((await database.db.knex('users').where({ email: 'r@example.org' }).first()).disabled_at, null);
  t.not((await tokens.findById(token.id))?.revokedAt ?? null, null, 'the access token revoked at disable stays revoked');

  const actions = (await auditActions(database)).map((a) => a.action);
  t.deepEqual(actions.slice(-3), ['user.level_changed', 'user.disabled', 'user.enabled']);
  t.like(JSON.parse((await auditActions(database)).at(-3)!.details), { from: 'L2', to: 'L3', reason: 'partner membership', via: 'cli' });
  t.like(JSON.parse((await auditActions(database)).at(-2)!.details), { tokensRevoked: 1, via: 'cli' });
});

test(`an account made by user add logs in to a served appliance (${testDialect})`, async (t) => {
  const { database, cwd, run } = await setup(t);
  t.is((await run(['add', '--email', 'viewer@example.org', '--password', PASSWORD, '--level', 'L1'])).code, 0);
  const port = await freePort();
  const server = spawnCli(['serve'], { cwd, env: { DATABASE_URL: database.url, PORT: String(port), SLIDEBANK_HOST: '127.0.0.1', SLIDEBANK_DEMO: '0' } });
  const finished = collect(server, 120_000);
  const base = `http://127.0.0.1:${port}`;
  await waitForHttp(`${base}/healthz`, 60_000, server);

  t.is((await fetch(`${base}/api/slides`)).status, 401);
  const csrf = await fetch(`${base}/api/auth/csrf`);
  const csrfHeaders = { cookie: csrf.headers.getSetCookie().map((c) => c.split(';')[0]).join('; '), 'x-csrf-token': ((await csrf.json()) as { csrfToken: string }).csrfToken };
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...csrfHeaders },
    body: JSON.stringify({ email: 'viewer@example.org', password: PASSWORD }),
  });
  t.is(login.status, 200);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const me = await fetch(`${base}/api/auth/me`, { headers: { cookie } });
  t.like(await me.json(), { email: 'viewer@example.org', level: 'L1', via: 'session' });
  t.is((await fetch(`${base}/api/slides`, { headers: { cookie } })).status, 200);

  server.kill('SIGTERM');
  const result = await finished;
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /generated the session secret/, 'the first start made a session secret in the data folder');
});
