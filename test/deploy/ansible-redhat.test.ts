import { randomBytes } from 'node:crypto';
import { access, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../server/db/index.js';
import {
  ansibleEnv,
  changedTasks,
  localInventory,
  localVariables,
  missingForMariaDbRole,
  recap,
  runPlaybook,
  suiteMariaDb,
  suiteMariaDbLogin,
  testNeeding,
  writeYaml,
} from './playbook.js';
import { ansibleDir, findCommand, opsDir, run, toolTest } from './tools.js';

/**
 * The RHEL 9 family, as far as a Debian machine can show it (docs/operations.md, "RHEL 9").
 * The roles pick their package names and paths with include_vars of
 * vars/<ansible_facts.os_family>.yml, which `-e ansible_os_family=RedHat` does not change, so the test
 * gathers this machine's facts into a jsonfile fact cache, rewrites them to a RHEL 9
 * host's (os_family RedHat, dnf) and runs site.yml with gathering=smart, which then uses
 * the cached facts instead of gathering again. What runs: everything but packages and
 * systemd, as in ansible.test.ts, with MariaDB. What cannot run here: dnf, SELinux,
 * the RHEL packages' own paths and users.
 */

const ROLES = ['common', 'mariadb', 'slidebank', 'nginx', 'backup'];
// Before any test is declared: ava wants them all declared at once.
const missing = await missingForMariaDbRole();

/** Each file's top-level keys, read by the YAML library ansible itself uses. */
async function yamlKeys(files: string[]): Promise<Record<string, string[]>> {
  const script = 'import json, sys, yaml\nprint(json.dumps({f: sorted((yaml.safe_load(open(f)) or {}).keys()) for f in sys.argv[1:]}))';
  const { stdout } = await run('/usr/bin/python3', ['-c', script, ...files]);
  return JSON.parse(stdout) as Record<string, string[]>;
}

toolTest("every role's vars/Debian.yml and vars/RedHat.yml define the same variables", ['ansible-playbook'], async (t) => {
  const roles = (await readdir(path.join(ansibleDir, 'roles'))).sort();
  t.deepEqual(roles, [...ROLES].sort(), 'the roles this test knows are all the roles');
  for (const role of roles) {
    const vars = path.join(ansibleDir, 'roles', role, 'vars');
    const keys = await yamlKeys([path.join(vars, 'Debian.yml'), path.join(vars, 'RedHat.yml')]);
    const [debian, redhat] = Object.values(keys);
    t.true((debian?.length ?? 0) > 0, `${role} has OS-family variables`);
    t.deepEqual(redhat, debian, `${role}: RedHat.yml and Debian.yml name the same variables`);
  }
});

/** A small playbook that loads every role's vars/<family>.yml and writes what they resolve to, as JSON, to `out`. */
async function writeResolvePlaybook(work: string): Promise<string> {
  return writeYaml(path.join(work, 'resolve.yml'), [
    {
      name: 'Resolve the OS family variables of every role',
      hosts: 'localhost',
      connection: 'local',
      gather_facts: false,
      tasks: [
        {
          name: 'Load them',
          'ansible.builtin.include_vars': { file: `${ansibleDir}/roles/{{ item }}/vars/{{ family }}.yml`, name: 'resolved_{{ item }}' },
          loop: ROLES,
        },
        {
          name: 'Write them',
          'ansible.builtin.copy': {
            content: `{{ { ${ROLES.map((role) => `'${role}': resolved_${role}`).join(', ')} } | to_json }}`,
            dest: '{{ out }}',
            mode: '0600',
          },
        },
      ],
    },
  ]);
}

async function resolveNames(playbook: string, family: 'Debian' | 'RedHat', database: 'sqlite' | 'mariadb'): Promise<Record<string, Record<string, unknown>>> {
  const work = path.dirname(playbook);
  const out = path.join(work, `${family}-${database}.json`);
  const variables = await writeYaml(path.join(work, `${family}-${database}-vars.yml`), { family, out, slidebank_database: database, slidebank_prefix: '' });
  await run('ansible-playbook', ['-i', 'localhost,', '-e', `@${variables}`, playbook], { cwd: ansibleDir, env: ansibleEnv, maxBuffer: 16 << 20 });
  return JSON.parse(await readFile(out, 'utf8')) as Record<string, Record<string, unknown>>;
}

// What RHEL 9 calls them (BaseOS and AppStream; nothing from EPEL is needed):
// sqlite, rsync, gzip, util-linux, ca-certificates in BaseOS; turbojpeg, mariadb-server, the mariadb
// client, python3-PyMySQL (which community.mysql needs), nginx and the nodejs:20 module
// stream in AppStream; for a Galera cluster mariadb-server-galera, which brings the galera package and
// its provider in /usr/lib64/galera. MariaDB's unit is mariadb.service, its socket
// /var/lib/mysql/mysql.sock, its drop-in folder /etc/my.cnf.d; nginx reads conf.d/*.conf.
const RHEL9 = {
  common: { slidebank_base_packages: ['ca-certificates', 'rsync', 'sqlite', 'gzip', 'util-linux', 'turbojpeg'] },
  mariadb: {
    slidebank_mariadb_packages: ['mariadb-server', 'python3-PyMySQL'],
    slidebank_mariadb_service: 'mariadb',
    slidebank_mariadb_socket: '/var/lib/mysql/mysql.sock',
    slidebank_mariadb_conf_dir: '/etc/my.cnf.d',
    slidebank_galera_packages: ['mariadb-server-galera', 'rsync'],
    slidebank_galera_provider: '/usr/lib64/galera/libgalera_smm.so',
  },
  // vips and openslide's tools (for slides only OpenSlide reads) come from EPEL, as Node.js's module comes from AppStream.
  slidebank: { slidebank_node_package: '@nodejs:20/common', slidebank_system_packages: ['vips-tools', 'openslide-tools'] },
  nginx: { slidebank_nginx_site: '/etc/nginx/conf.d/slidebank.conf', slidebank_nginx_user: 'nginx', slidebank_nginx_enabled_link: '' },
  backup: { slidebank_backup_packages: ['sqlite', 'gzip', 'rsync', 'mariadb'] },
};

toolTest('the package, service and path names resolve to what RHEL 9 and Debian 12 call them', ['ansible-playbook'], async (t) => {
  t.timeout(5 * 60_000);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ansible-names-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const playbook = await writeResolvePlaybook(work);
  const [redhatSqlite, redhatMariaDb, debianSqlite, debianMariaDb] = await Promise.all([
    resolveNames(playbook, 'RedHat', 'sqlite'),
    resolveNames(playbook, 'RedHat', 'mariadb'),
    resolveNames(playbook, 'Debian', 'sqlite'),
    resolveNames(playbook, 'Debian', 'mariadb'),
  ]);
  t.deepEqual(redhatMariaDb, RHEL9);
  t.deepEqual(redhatSqlite.backup, { slidebank_backup_packages: ['sqlite', 'gzip', 'rsync'] }, 'the MariaDB client only with MariaDB');

  // Debian's names are checked against this machine's package lists.
  t.deepEqual(debianSqlite.backup, { slidebank_backup_packages: ['sqlite3', 'gzip', 'rsync'] });
  const debianPackages = [
    ...(debianMariaDb.common!.slidebank_base_packages as string[]),
    ...(debianMariaDb.mariadb!.slidebank_mariadb_packages as string[]),
    ...(debianMariaDb.mariadb!.slidebank_galera_packages as string[]),
    debianMariaDb.slidebank!.slidebank_node_package as string,
    ...(debianMariaDb.slidebank!.slidebank_system_packages as string[]),
    ...(debianMariaDb.backup!.slidebank_backup_packages as string[]),
  ];
  if (findCommand('apt-cache') === null) {
    t.log('apt-cache is not here: the Debian names are not checked against package lists');
    return;
  }
  for (const name of new Set(debianPackages)) {
    const known = await run('apt-cache', ['show', '--no-all-versions', name]).then(
      ({ stdout }) => stdout.includes(`Package: ${name}\n`),
      () => false,
    );
    t.true(known, `Debian knows the package ${name}`);
  }
});

testNeeding(missing, 'with the facts of a RHEL 9 host the playbook installs into a prefix at the RedHat paths, on MariaDB, and a second run changes nothing', async (t) => {
  t.timeout(20 * 60_000);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ansible-redhat-'));
  const name = `sb_rhel_${process.pid}_${randomBytes(3).toString('hex')}`;
  const clientHosts = ['127.0.0.1', 'localhost'];
  t.teardown(async () => {
    const admin = openDatabase(suiteMariaDb);
    try {
      for (const host of clientHosts) await admin.knex.raw('DROP USER IF EXISTS ?@?', [name, host]);
      await admin.knex.raw(`DROP DATABASE IF EXISTS \`${name}\``);
    } finally {
      await admin.close();
    }
    await rm(work, { recursive: true, force: true });
  });
  const prefix = path.join(work, 'root');
  const { stdout: made } = await run(path.join(opsDir, 'make-release.sh'), ['--out', path.join(work, 'release'), '--version', '0.0.0-rhel'], { maxBuffer: 16 << 20 });
  const tarball = made.trim().split('\n').at(-1)!;

  const inventory = await writeYaml(path.join(work, 'inventory.yml'), localInventory(['slidebank_app', 'slidebank_db', 'slidebank_proxy', 'slidebank_backup']));
  const variables = await writeYaml(path.join(work, 'vars.yml'), {
    ...(await localVariables(prefix)),
    ...(await suiteMariaDbLogin()),
    // The secure steps are mariadb-role.test.ts's to show; off here, so that the two runs on the
    // shared server, which may overlap, do not remove each other's decoy accounts.
    slidebank_mariadb_remove_anonymous_users: false,
    slidebank_mariadb_remove_remote_root: false,
    slidebank_release_tarball: tarball,
    slidebank_node_source: 'system',
    slidebank_node: process.execPath,
    slidebank_database: 'mariadb',
    slidebank_db_host: suiteMariaDb.host,
    slidebank_db_port: suiteMariaDb.port,
    slidebank_db_name: name,
    slidebank_db_user: name,
    slidebank_db_password: randomBytes(12).toString('hex'),
    slidebank_db_client_hosts: clientHosts,
    slidebank_server_name: 'slidebank.test',
    slidebank_session_secret: 'a-test-session-secret-of-at-least-32-characters',
  });

  // This machine's facts, made a RHEL 9 host's, in a fact cache that site.yml then uses.
  const cache = path.join(work, 'facts');
  const env = { ANSIBLE_CACHE_PLUGIN: 'jsonfile', ANSIBLE_CACHE_PLUGIN_CONNECTION: cache, ANSIBLE_GATHERING: 'smart' };
  await run('ansible', ['-i', inventory, 'testhost', '-m', 'ansible.builtin.setup'], { cwd: ansibleDir, env: { ...ansibleEnv, ...env }, maxBuffer: 16 << 20 });
  const factsFile = path.join(cache, 'testhost');
  const facts = JSON.parse(await readFile(factsFile, 'utf8')) as Record<string, unknown>;
  t.is(facts.ansible_os_family, 'Debian', 'the cache holds the gathered facts');
  Object.assign(facts, {
    ansible_os_family: 'RedHat',
    ansible_distribution: 'RedHat',
    ansible_distribution_major_version: '9',
    ansible_distribution_version: '9.4',
    ansible_pkg_mgr: 'dnf',
    // gathering=smart skips hosts whose cached facts say they were gathered.
    _ansible_facts_gathered: true,
  });
  await writeFile(factsFile, JSON.stringify(facts));

  const first = await runPlaybook({ inventory, variables, env });
  const second = await runPlaybook({ inventory, variables, env });
  t.notRegex(first, /TASK \[Gathering Facts\]/, 'the RHEL facts were used, not gathered again');
  t.is(recap(first).failed, 0);
  t.true((recap(first).changed ?? 0) > 10, first.slice(-2000));
  t.is(recap(second).changed, 0, `the second run changed something:\n${changedTasks(second)}`);
  t.is(recap(second).failed, 0);
  t.regex(first, /TASK \[nginx : Enable the site \(Debian\)\] \*+\nskipping:/);

  // Every template rendered, at the RHEL paths and not at Debian's.
  const exists = (file: string) => access(path.join(prefix, file)).then(() => true, () => false);
  t.regex(await readFile(path.join(prefix, 'etc/my.cnf.d/60-slidebank.cnf'), 'utf8'), /^character-set-server = utf8mb4$/m);
  t.false(await exists('etc/mysql'), "no Debian MariaDB folder");
  t.regex(await readFile(path.join(prefix, 'etc/nginx/conf.d/slidebank.conf'), 'utf8'), /location \/protected-slides\/ \{\s+internal;/);
  t.false(await exists('etc/nginx/sites-enabled'), 'no Debian sites-enabled folder');
  for (const unit of ['slidebank.service', 'slidebank-worker.service', 'slidebank-backup.service', 'slidebank-backup.timer']) {
    t.true(await exists(`etc/systemd/system/${unit}`), unit);
  }
  const url = `mariadb://${name}:`;
  t.true((await readFile(path.join(prefix, 'etc/slidebank/backup.env'), 'utf8')).includes(`DATABASE_URL='${url}`));
  const current = path.join(prefix, 'opt/slidebank/current');
  const config = JSON.parse(await readFile(path.join(current, 'config/production.json'), 'utf8')) as { databaseUrl: string };
  t.true(config.databaseUrl.startsWith(url));

  // The app migrated the database the mariadb role made, as the user it made.
  // Without DATABASE_URL in the environment, which would win over the rendered configuration.
  const { DATABASE_URL: _ignored, ...environment } = process.env;
  const { stdout: status } = await run(process.execPath, ['bin/slidebank.js', 'migrate', '--status'], { cwd: current, env: { ...environment, NODE_ENV: 'production' } });
  t.regex(status, new RegExp(`^mariadb ${name}@${suiteMariaDb.host}:${suiteMariaDb.port}/${name}: `, 'm'));
  t.regex(status, /[1-9]\d* applied, 0 pending/);
});
