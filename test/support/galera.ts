import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import mariadb from 'mariadb';

/**
 * A real MariaDB Galera cluster on this machine, for the cluster tests: each
 * node a `mariadbd` child process with a datadir of its own in a temporary
 * folder and its own loopback ports (SQL, group communication, IST, SST).
 * The first node bootstraps (`--wsrep-new-cluster`); the others join it and
 * receive their state by rsync SST; a node stopped and started again catches
 * up by IST from the others' gcache. Run as root, the servers run as the
 * `mysql` user (rsync's SST daemon drops root's rights to nobody, who could
 * not write the datadir).
 */

export const GALERA_PROVIDER = '/usr/lib/galera/libgalera_smm.so';
const MARIADBD = '/usr/sbin/mariadbd';

/** Why a Galera cluster cannot run here, or undefined when it can. */
export function galeraProblem(): string | undefined {
  if (!existsSync(GALERA_PROVIDER)) return `${GALERA_PROVIDER} is missing (apt-get install galera-4)`;
  if (!existsSync(MARIADBD)) return `${MARIADBD} is missing (apt-get install mariadb-server)`;
  for (const tool of ['rsync', 'mariadb-install-db']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return undefined;
}

export interface GaleraNode {
  name: string;
  port: number;
  /** `host:port` as DATABASE_URL lists it. */
  address: string;
  /** The server's error log, where Galera reports state transfers. */
  errorLog: string;
  running(): boolean;
  /** SIGTERM (a clean shutdown) and wait for the process to end. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or a power cut would. */
  kill(): Promise<void>;
  /** Start again and rejoin the cluster; resolves when the node is synced. */
  start(): Promise<void>;
  /** One query on this node. */
  query<T = Record<string, unknown>>(sql: string, values?: unknown[], database?: string): Promise<T[]>;
  /** A `SHOW STATUS` value (`wsrep_cluster_size`, `wsrep_local_state_comment`, …). */
  status(name: string): Promise<string | undefined>;
}

export interface GaleraCluster {
  nodes: GaleraNode[];
  root: string;
  stopAll(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

export async function startGaleraCluster(t: Teardown, { size = 3, name = 'slidebank-test' }: { size?: number; name?: string } = {}): Promise<GaleraCluster> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-galera-'));
  const asRoot = process.getuid?.() === 0;
  const ports = [];
  const taken = new Set<number>();
  for (let i = 0; i < size; i++) ports.push({ sql: await listenPort(taken), gcomm: await listenPort(taken), ist: await listenPort(taken), sst: await listenPort(taken) });
  const clusterAddress = `gcomm://${ports.map((p) => `127.0.0.1:${p.gcomm}`).join(',')}`;

  const nodes: NodeProcess[] = ports.map((p, i) => new NodeProcess(`node${i + 1}`, path.join(root, `node${i + 1}`), p, clusterAddress, name, asRoot));
  const cluster: GaleraCluster = { nodes, root, stopAll: () => Promise.all(nodes.map((n) => n.kill())).then(() => undefined) };
  t.teardown(async () => {
    await cluster.stopAll();
    await rm(root, { recursive: true, force: true });
  });

  for (const node of nodes) await mkdir(path.join(node.dir, 'data'), { recursive: true });
  if (asRoot) await chownTree(root);
  const install = spawnSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${path.join(nodes[0]!.dir, 'data')}`, '--auth-root-authentication-method=normal', '--skip-test-db', ...(asRoot ? ['--user=mysql'] : [])],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr}`);

  await nodes[0]!.startProcess(['--wsrep-new-cluster']);
  for (const node of nodes.slice(1)) await node.start();
  return cluster;
}

/**
 * A free port below the kernel's ephemeral range: the nodes' outgoing
 * connections (group communication, the test's own queries) take their local
 * ports from that range, and one of them landing on a port reserved for a
 * node's SST or IST listener made the joiner's state transfer fail.
 */
async function listenPort(taken: Set<number>): Promise<number> {
  const [low] = (await readFile('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').catch(() => '32768')).trim().split(/\s+/).map(Number);
  const top = Math.max(20_000, (low ?? 32_768) - 1);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 15_000 + Math.floor(Math.random() * (top - 15_000));
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) {
      taken.add(port);
      return port;
    }
  }
  throw new Error('no free port below the ephemeral range');
}

async function chownTree(dir: string): Promise<void> {
  const { uid, gid } = mysqlIds();
  await chown(dir, uid, gid);
  const chowned = spawnSync('chown', ['-R', `${uid}:${gid}`, dir]);
  if (chowned.status !== 0) throw new Error(`chown -R mysql ${dir} failed`);
}

function mysqlIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync('id', [flag, 'mysql'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

class NodeProcess implements GaleraNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly port: number;
  readonly address: string;
  readonly errorLog: string;

  constructor(
    readonly name: string,
    readonly dir: string,
    private readonly ports: { sql: number; gcomm: number; ist: number; sst: number },
    private readonly clusterAddress: string,
    private readonly clusterName: string,
    private readonly asRoot: boolean,
  ) {
    this.port = ports.sql;
    this.address = `127.0.0.1:${ports.sql}`;
    this.errorLog = path.join(dir, 'error.log');
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async startProcess(extra: string[] = []): Promise<void> {
    if (this.running()) throw new Error(`${this.name} is already running`);
    const args = [
      '--no-defaults',
      ...(this.asRoot ? ['--user=mysql'] : []),
      `--datadir=${path.join(this.dir, 'data')}`,
      `--socket=${path.join(this.dir, 'mysqld.sock')}`,
      `--pid-file=${path.join(this.dir, 'mysqld.pid')}`,
      `--log-error=${this.errorLog}`,
      '--bind-address=127.0.0.1',
      `--port=${this.ports.sql}`,
      '--innodb-buffer-pool-size=64M',
      '--innodb-log-file-size=16M',
      '--innodb-flush-log-at-trx-commit=2',
      '--max-connections=300',
      '--binlog-format=ROW',
      '--default-storage-engine=InnoDB',
      '--innodb-autoinc-lock-mode=2',
      '--log-bin-trust-function-creators=1',
      '--wsrep-on=ON',
      `--wsrep-provider=${GALERA_PROVIDER}`,
      `--wsrep-cluster-name=${this.clusterName}`,
      `--wsrep-node-name=${this.name}`,
      '--wsrep-node-address=127.0.0.1',
      `--wsrep-cluster-address=${this.clusterAddress}`,
      `--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:${this.ports.gcomm};ist.recv_addr=127.0.0.1:${this.ports.ist};gcache.size=128M`,
      '--wsrep-sst-method=rsync',
      `--wsrep-sst-receive-address=127.0.0.1:${this.ports.sst}`,
      ...extra,
    ];
    const child = spawn(MARIADBD, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await this.waitSynced(child, () => stderr);
  }

  start(): Promise<void> {
    return this.startProcess();
  }

  async stop(): Promise<void> {
    if (!this.running()) return;
    this.child!.kill('SIGTERM');
    await this.exited;
  }

  async kill(): Promise<void> {
    if (!this.running()) return;
    this.child!.kill('SIGKILL');
    await this.exited;
  }

  async query<T = Record<string, unknown>>(sql: string, values: unknown[] = [], database?: string): Promise<T[]> {
    const conn = await mariadb.createConnection({ host: '127.0.0.1', port: this.port, user: 'root', connectTimeout: 5000, bigIntAsNumber: true, ...(database ? { database } : {}) });
    try {
      return (await conn.query(sql, values)) as T[];
    } finally {
      await conn.end();
    }
  }

  async status(name: string): Promise<string | undefined> {
    const rows = await this.query<{ Value: string }>('SHOW STATUS LIKE ?', [name]);
    return rows[0]?.Value;
  }

  /** Until the node answers queries and reports itself synced with the primary component. */
  private async waitSynced(child: ChildProcess, stderr: () => string, timeoutMs = 180_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const log = await readFile(this.errorLog, 'utf8').catch(() => '');
        const transfer = log.split('\n').filter((line) => /WSREP_SST|\[ERROR\]/.test(line)).slice(-40).join('\n');
        throw new Error(`${this.name} exited while starting (${child.exitCode ?? child.signalCode}):\n${stderr()}\nstate transfer and errors:\n${transfer}\nlog tail:\n${log.slice(-3000)}`);
      }
      try {
        if ((await this.status('wsrep_local_state_comment')) === 'Synced' && (await this.status('wsrep_ready')) === 'ON') return;
      } catch {
        // not accepting connections yet
      }
      if (Date.now() > deadline) throw new Error(`${this.name} did not become synced within ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  }
}
