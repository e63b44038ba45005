import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ansibleEnv, writeYaml } from './playbook.js';
import { ansibleDir, run, toolTest } from './tools.js';

/**
 * The mariadb role's server configuration as Ansible renders it (its template
 * with its defaults and Debian variables, per host of the inventory): with
 * three hosts in slidebank_db it is a Galera cluster whose nodes all list the
 * same members, each with its own name and address; with one host it is a
 * plain server. The cluster itself is tested for real in test/cluster/.
 */

const ROLE = path.join(ansibleDir, 'roles', 'mariadb');

async function render(hosts: Record<string, Record<string, string>>): Promise<Record<string, string>> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-galera-config-'));
  try {
    const inventory = await writeYaml(path.join(work, 'hosts.yml'), {
      all: {
        children: { slidebank: { children: { slidebank_db: { hosts } } } },
        vars: { ansible_connection: 'local', ansible_python_interpreter: '/usr/bin/python3' },
      },
    });
    const playbook = await writeYaml(path.join(work, 'render.yml'), [
      {
        hosts: 'slidebank_db',
        gather_facts: false,
        vars_files: [path.join(ROLE, 'defaults', 'main.yml'), path.join(ROLE, 'vars', 'Debian.yml'), path.join(ansibleDir, 'group_vars', 'all.yml')],
        tasks: [{ name: 'render', 'ansible.builtin.template': { src: path.join(ROLE, 'templates', 'slidebank.cnf.j2'), dest: `${work}/{{ inventory_hostname }}.cnf`, mode: '0644' } }],
      },
    ]);
    await run('ansible-playbook', ['-i', inventory, playbook], { env: ansibleEnv, cwd: ansibleDir });
    const rendered: Record<string, string> = {};
    for (const host of Object.keys(hosts)) rendered[host] = await readFile(path.join(work, `${host}.cnf`), 'utf8');
    return rendered;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** `key = value` lines of a section of an ini file. */
function section(ini: string, name: string): Record<string, string> {
  const values: Record<string, string> = {};
  let inside = false;
  for (const line of ini.split('\n')) {
    const header = /^\[(.+)\]$/.exec(line.trim());
    if (header) inside = header[1] === name;
    else if (inside && /^[a-z_-]+\s*=/.test(line)) {
      const [key, ...rest] = line.split('=');
      values[key!.trim()] = rest.join('=').trim();
    }
  }
  return values;
}

toolTest('three database hosts render a Galera cluster: the same members everywhere, each node its own name and address', ['ansible-playbook'], async (t) => {
  t.timeout(3 * 60_000);
  const rendered = await render({
    'db1.hospital.example': { ansible_host: '10.20.0.21' },
    'db2.hospital.example': { ansible_host: '10.20.0.22' },
    'db3.hospital.example': { ansible_host: '10.20.0.23' },
  });
  const addresses = ['10.20.0.21', '10.20.0.22', '10.20.0.23'];
  for (const [index, [host, ini]] of Object.entries(rendered).entries()) {
    const galera = section(ini, 'galera');
    t.like(galera, {
      wsrep_on: 'ON',
      wsrep_provider: '/usr/lib/galera/libgalera_smm.so',
      wsrep_cluster_name: 'slidebank',
      wsrep_cluster_address: `gcomm://${addresses.map((a) => `${a}:4567`).join(',')}`,
      wsrep_node_name: host,
      wsrep_node_address: addresses[index],
      wsrep_sst_method: 'rsync',
      wsrep_sst_receive_address: `${addresses[index]}:4444`,
      binlog_format: 'ROW',
      default_storage_engine: 'InnoDB',
      innodb_autoinc_lock_mode: '2',
      wsrep_sync_wait: '1',
    }, host);
    t.is(galera.wsrep_provider_options, `"gmcast.listen_addr=tcp://0.0.0.0:4567;ist.recv_addr=${addresses[index]}:4568;gcache.size=1G"`);
    t.like(section(ini, 'mysqld'), { log_bin_trust_function_creators: '1', 'character-set-server': 'utf8mb4' });
  }
});

toolTest('one database host renders a plain MariaDB server without Galera', ['ansible-playbook'], async (t) => {
  t.timeout(3 * 60_000);
  const { db1 } = await render({ db1: {} });
  t.deepEqual(section(db1!, 'galera'), {});
  t.notRegex(db1!, /wsrep/);
  t.like(section(db1!, 'mysqld'), { 'bind-address': '127.0.0.1' });
});
