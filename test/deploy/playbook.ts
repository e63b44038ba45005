import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ImplementationFn } from 'ava';
import { describeDatabase, parseDatabaseUrl, type DatabaseTarget } from '../../server/config/index.js';
import { openDatabase } from '../../server/db/index.js';
import { testNeeding as testNeedingAll } from '../support/requirements.js';
import { ansibleDir, findCommand, run } from './tools.js';

/** How the deployment tests run ansible: this repository's ansible.cfg, no colours. */
export const ansibleEnv: NodeJS.ProcessEnv = {
  ...process.env,
  ANSIBLE_CONFIG: path.join(ansibleDir, 'ansible.cfg'),
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_FORCE_COLOR: '0',
};

/** An inventory with one host, `testhost`, reached with ansible_connection=local, in the given groups. */
export function localInventory(groups: string[]): object {
  const hosts = { hosts: { testhost: {} } };
  return {
    all: {
      children: { slidebank: { children: Object.fromEntries(groups.map((group) => [group, hosts])) } },
      vars: { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3' },
    },
  };
}

/**
 * The variables that let the playbook run on a CI machine as the current user: everything
 * under `prefix`, no packages, no service user, no systemd (not PID 1 here).
 */
export async function localVariables(prefix: string): Promise<Record<string, unknown>> {
  return {
    slidebank_prefix: prefix,
    slidebank_become: false,
    slidebank_manage_packages: false,
    slidebank_manage_user: false,
    slidebank_systemd: false,
    slidebank_user: os.userInfo().username,
    slidebank_group: (await run('id', ['-gn'])).stdout.trim(),
  };
}

/** Write a file ansible reads as YAML (JSON is YAML). */
export async function writeYaml(file: string, value: unknown): Promise<string> {
  await writeFile(file, JSON.stringify(value));
  return file;
}

/** Run site.yml (or `playbook`) with an inventory and a variables file; stdout, or an error carrying all output. */
export async function runPlaybook(options: {
  inventory: string;
  variables: string;
  playbook?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<string> {
  const args = ['-i', options.inventory, '-e', `@${options.variables}`, ...(options.args ?? []), options.playbook ?? 'site.yml'];
  try {
    const { stdout } = await run('ansible-playbook', args, { cwd: ansibleDir, env: { ...ansibleEnv, ...options.env }, maxBuffer: 64 << 20 });
    return stdout;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`ansible-playbook failed: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
  }
}

/** The PLAY RECAP counts of `testhost`: ok, changed, failed, skipped, … */
export function recap(output: string): Record<string, number> {
  const line = /^testhost\s+:\s+(.*)$/m.exec(output)?.[1] ?? '';
  return Object.fromEntries([...line.matchAll(/(\w+)=(\d+)/g)].map((m) => [m[1]!, Number(m[2])]));
}

/** The tasks that reported a change, each with its "changed:" lines, for assertion messages. */
export function changedTasks(output: string): string {
  const shown: string[] = [];
  let task = '';
  for (const line of output.split('\n')) {
    if (line.startsWith('TASK ')) task = line;
    else if (line.startsWith('changed:')) {
      if (task) shown.push(task);
      shown.push(line);
      task = '';
    }
  }
  return shown.join('\n');
}

export type MariaDbTarget = Extract<DatabaseTarget, { client: 'mariadb' }>;

/**
 * The MariaDB server the mariadb role runs against, whichever database the rest of the suite
 * uses (so these tests run once, in `npm test`, not again in `npm run test:db`): the one
 * MARIADB_ADMIN_URL names (.ci/run sets it), by default the local one.
 */
export const suiteMariaDb = parseDatabaseUrl(process.env.MARIADB_ADMIN_URL ?? 'mariadb://root@127.0.0.1:3306/test', process.cwd()) as MariaDbTarget;

/** What a run of the mariadb role needs here and does not have: ansible, PyMySQL for the inventory's python, the server. */
export async function missingForMariaDbRole(commands: string[] = []): Promise<string[]> {
  const missing = ['ansible-playbook', ...commands].filter((command) => findCommand(command) === null);
  if (!(await run('/usr/bin/python3', ['-c', 'import pymysql']).then(() => true, () => false))) missing.push('python3-pymysql');
  const probe = openDatabase(suiteMariaDb, { acquireTimeoutMs: 5_000 });
  await probe.knex
    .raw('SELECT 1')
    .catch(() => missing.push(`a MariaDB server at ${describeDatabase(suiteMariaDb)}`))
    .finally(() => probe.close());
  return missing;
}

/** Like toolTest: skipped with the reason where something is missing, failed instead under SLIDEBANK_REQUIRE_FIXTURES=1. */
export function testNeeding(missing: string[], title: string, implementation: ImplementationFn<[]>): void {
  testNeedingAll(missing.map((what) => `${what} is not available (.ci/run installs and starts it)`), title, implementation);
}

/** The settings that point the mariadb role at the suite's server over TCP without touching what the suite relies on. */
export async function suiteMariaDbLogin(): Promise<Record<string, unknown>> {
  const admin = openDatabase(suiteMariaDb);
  try {
    const [rows] = (await admin.knex.raw("SELECT Host FROM mysql.user WHERE User = 'root'")) as [{ Host: string }[]];
    return {
      slidebank_mariadb_login_host: suiteMariaDb.host,
      slidebank_mariadb_login_port: suiteMariaDb.port,
      slidebank_mariadb_login_user: suiteMariaDb.user,
      slidebank_mariadb_login_password: suiteMariaDb.password,
      // The suite's server keeps its `test` database and every root account it has.
      slidebank_mariadb_remove_test_database: false,
      slidebank_mariadb_root_hosts: rows.map((row) => row.Host),
    };
  } finally {
    await admin.close();
  }
}
