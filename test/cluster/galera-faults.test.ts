/**
 * Slidebank on a real three-node MariaDB Galera cluster, with faults
 * (`npm run test:cluster`; not part of `npm test`). Two app nodes (`slidebank
 * serve`, the built server) each point at a different Galera node first,
 * share one data folder and slide store and one session secret; one worker
 * process runs the toolbox jobs. While a client logs in, views tiles,
 * downloads slides and submits toolbox jobs through both app nodes in turn,
 * and a slide dropped in the inbox is ingested, a database node is stopped,
 * then an app node, then the worker, and each is started again. Afterwards
 * nothing is lost: every job succeeded exactly once, every download is
 * audited, every published slide is intact, no ingest is half done, the
 * client saw retries and fail-overs but no error, and the returning database
 * node caught up by IST with the same rows as the others.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, utimes, writeFile, copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { collect, freePort, runCli, spawnCli, waitForHttp, type CliResult } from '../support/cli.js';
import { galeraProblem, startGaleraCluster, type GaleraNode } from '../support/galera.js';
import { makeSlide } from '../support/slides.js';
import { missingFails } from '../support/requirements.js';

const DATABASE = 'slidebank';
const PASSWORD = 'grey heron over the river 42';
const RESEARCHER = 'researcher@hospital.example';
const SHEET_HEADER = 'file,organ,histology,stain,marker,differentiation,pathology_info,annotation_method,dataset,collection_date,consent';
const sheetRow = (file: string) => `${file},Liver,Hepatocellular carcinoma,H&E,,Moderately differentiated,,manual,cluster,2012-01,`;

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A `slidebank` process of the test: an app node or the worker. */
class Service {
  private child: ReturnType<typeof spawnCli> | undefined;
  private done: Promise<CliResult> | undefined;
  readonly logs: string[] = [];

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    readonly port?: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawnCli(this.args, { env: this.env });
    this.child = child;
    this.done = collect(child, 30 * 60_000).then((result) => {
      this.logs.push(result.stdout, result.stderr);
      return result;
    });
    if (this.port === undefined) return;
    try {
      await waitForHealthy(`${this.url}/healthz`, child);
    } catch (error) {
      if (child.exitCode === null) child.kill('SIGTERM');
      const { stdout, stderr } = await this.done;
      throw new Error(`${this.name} did not come up (${(error as Error).message}):\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`);
    }
  }

  /** SIGTERM: the node drains its requests (the worker gives its job back) and exits. */
  async stop(): Promise<CliResult> {
    if (this.child && this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.done!;
  }
}

async function waitForHealthy(url: string, child: ReturnType<typeof spawnCli>): Promise<void> {
  const deadline = Date.now() + 180_000;
  for (;;) {
    const answer = await waitForHttp(url, 180_000, child);
    if (answer.status === 200) return;
    if (Date.now() > deadline) throw new Error(`${url} answered ${answer.status} for three minutes`);
    await sleep(250);
  }
}

interface ClientEvent {
  at: number;
  kind: 'failover' | 'retry' | 'failure';
  method: string;
  path: string;
  node: string;
  detail: string;
}

/**
 * The client of the test, as nginx with `proxy_next_upstream error` and a
 * browser that retries on 503 would be: requests go to the app nodes in turn;
 * a node that refuses the connection is skipped (fail-over), a 503 with
 * Retry-After is sent again. Any other 5xx is a failure. The session cookie
 * and CSRF token travel between the nodes.
 */
class ClusterClient {
  readonly events: ClientEvent[] = [];
  /** Answers (below 500) per app node. */
  readonly answeredBy = new Map<string, number>();
  private readonly cookies = new Map<string, string>();
  private csrf: string | undefined;
  private turn = 0;

  constructor(private readonly nodes: Service[]) {}

  async request(method: string, pathname: string, body?: unknown): Promise<{ status: number; body: Buffer; json: () => unknown; node: string }> {
    for (let attempt = 0; attempt < 60; attempt++) {
      const node = this.nodes[this.turn++ % this.nodes.length]!;
      const headers: Record<string, string> = {};
      if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (method !== 'GET' && this.csrf) headers['x-csrf-token'] = this.csrf;
      if (body !== undefined) headers['content-type'] = 'application/json';
      let response: Response;
      let bytes: Buffer;
      try {
        response = await fetch(`${node.url}${pathname}`, { method, headers, redirect: 'manual', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
        bytes = Buffer.from(await response.arrayBuffer());
      } catch (error) {
        this.events.push({ at: Date.now(), kind: 'failover', method, path: pathname, node: node.name, detail: String((error as Error).cause ?? error) });
        await sleep(50);
        continue;
      }
      for (const line of response.headers.getSetCookie()) {
        const [pair = ''] = line.split(';');
        const eq = pair.indexOf('=');
        const value = pair.slice(eq + 1).trim();
        if (value === '') this.cookies.delete(pair.slice(0, eq).trim());
        else this.cookies.set(pair.slice(0, eq).trim(), value);
      }
      if (response.status === 503 && response.headers.get('retry-after')) {
        this.events.push({ at: Date.now(), kind: 'retry', method, path: pathname, node: node.name, detail: bytes.toString('utf8').slice(0, 200) });
        await sleep(200);
        continue;
      }
      if (response.status >= 500) {
        this.events.push({ at: Date.now(), kind: 'failure', method, path: pathname, node: node.name, detail: `${response.status} ${bytes.toString('utf8').slice(0, 300)}` });
      }
      else this.answeredBy.set(node.name, (this.answeredBy.get(node.name) ?? 0) + 1);
      const json = (): unknown => JSON.parse(bytes.toString('utf8'));
      if (/json/.test(response.headers.get('content-type') ?? '') && bytes.length > 0) {
        const token = (json() as { csrfToken?: unknown }).csrfToken;
        if (typeof token === 'string') this.csrf = token;
      }
      return { status: response.status, body: bytes, json, node: node.name };
    }
    throw new Error(`${method} ${pathname}: no app node answered in 60 tries`);
  }

  async logIn(): Promise<void> {
    await this.request('GET', '/api/auth/csrf');
    const answer = await this.request('POST', '/api/auth/login', { email: RESEARCHER, password: PASSWORD });
    if (answer.status !== 200) throw new Error(`login answered ${answer.status}: ${answer.body.toString()}`);
  }
}

interface Load {
  downloads: number;
  downloadMismatches: string[];
  tiles: number;
  logins: number;
  jobIds: number[];
  /** Set by the test when it needs a job in the queue now; the next round submits one. */
  jobWanted: boolean;
  unexpected: string[];
}

/** The researcher's work, round after round until `stop` is set: log in, list, view tiles, download a slide whole and check its bytes, now and then submit a toolbox job. */
async function researcherLoad(client: ClusterClient, slides: { id: number; sha256: string }[], load: Load, stop: { now: boolean }): Promise<void> {
  for (let round = 0; !stop.now; round++) {
    if (round % 5 === 0) {
      await client.logIn();
      load.logins++;
    }
    const list = await client.request('GET', '/api/slides');
    if (list.status !== 200) load.unexpected.push(`GET /api/slides answered ${list.status} on ${list.node}`);
    const slide = slides[round % slides.length]!;
    const dzi = await client.request('GET', `/tiles/${slide.id}.dzi`);
    if (dzi.status !== 200) load.unexpected.push(`dzi answered ${dzi.status}`);
    for (const level of [0, 8, 9]) {
      const tile = await client.request('GET', `/tiles/${slide.id}_files/${level}/0_0.jpeg`);
      if (tile.status !== 200) load.unexpected.push(`tile ${level} answered ${tile.status} on ${tile.node}: ${tile.body.toString().slice(0, 200)}`);
      else load.tiles++;
    }
    const file = await client.request('GET', `/api/slides/${slide.id}/files/slide`);
    if (file.status !== 200) load.unexpected.push(`download answered ${file.status} on ${file.node}`);
    else {
      load.downloads++;
      if (sha256(file.body) !== slide.sha256) load.downloadMismatches.push(`slide ${slide.id} via ${file.node}`);
    }
    if ((round % 3 === 0 && load.jobIds.length < 8) || load.jobWanted) {
      load.jobWanted = false;
      const job = await client.request('POST', '/api/jobs', { type: 'tissue-mask', slideId: slide.id, parameters: { method: 'grey' } });
      if (job.status === 201) load.jobIds.push((job.json() as { job: { id: number } }).job.id);
      else load.unexpected.push(`job submission answered ${job.status}: ${job.body.toString().slice(0, 200)}`);
    }
  }
}

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 240_000, pollMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(pollMs);
  }
}

/** Row counts of every table of the database on one node. */
async function rowCounts(node: GaleraNode): Promise<Record<string, number>> {
  const tables = await node.query<{ name: string }>("SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY table_name", [DATABASE]);
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const [row] = await node.query<{ n: number }>(`SELECT COUNT(*) AS n FROM \`${name}\``, [], DATABASE);
    counts[name] = Number(row!.n);
  }
  return counts;
}

const problem = galeraProblem();

test('a Galera cluster loses nothing while a database node, an app node and the worker stop and start again', async (t: ExecutionContext) => {
  if (problem) {
    if (missingFails()) t.fail(problem);
    else t.pass(`skipped: ${problem}`);
    return;
  }
  t.timeout(10 * 60_000);
  const figures: Record<string, string> = {};
  let clock = Date.now();
  const lap = (name: string) => {
    figures[name] = `${((Date.now() - clock) / 1000).toFixed(1)} s`;
    clock = Date.now();
  };

  // The built CLI is checked against the source first, before minutes go into the cluster.
  t.is((await runCli(['--version'])).code, 0);
  const cluster = await startGaleraCluster(t);
  const [db1, db2, db3] = cluster.nodes as [GaleraNode, GaleraNode, GaleraNode];
  await db1.query(`CREATE DATABASE \`${DATABASE}\` CHARACTER SET utf8mb4`);
  lap('three Galera nodes up (bootstrap, two rsync SSTs)');

  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-cluster-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const data = path.join(root, 'shared');
  const inbox = path.join(data, 'inbox');
  const urlFor = (...order: GaleraNode[]) => `mariadb://root@${order.map((n) => n.address).join(',')}/${DATABASE}`;
  const common = {
    SLIDEBANK_PATHS_DATA: data,
    SLIDEBANK_DEMO: '0',
    SLIDEBANK_AUTH_SESSION_SECRET: 'cluster-session-secret-of-at-least-32-characters',
    SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '',
    SLIDEBANK_INGEST_INBOX_SCHEDULE: '*/2 * * * * *',
    SLIDEBANK_QUEUE_WORKERS: '0',
    SLIDEBANK_QUEUE_LEASE_SECONDS: '6',
    SLIDEBANK_QUEUE_POLL_SECONDS: '1',
    SLIDEBANK_HOST: '127.0.0.1',
  };
  const [portA, portB] = [await freePort(), await freePort()];
  const appA = new Service('app-a', ['serve'], { ...common, DATABASE_URL: urlFor(db1, db2, db3), PORT: String(portA) }, portA);
  const appB = new Service('app-b', ['serve'], { ...common, DATABASE_URL: urlFor(db2, db3, db1), PORT: String(portB) }, portB);
  const worker = new Service('worker', ['worker'], { ...common, DATABASE_URL: urlFor(db3, db1, db2) });
  t.teardown(async () => {
    await Promise.all([appA.stop(), appB.stop(), worker.stop()].map((p) => p.catch(() => undefined)));
  });

  // Both app nodes start at once against different Galera nodes: the migration lock keeps them to one migration.
  await Promise.all([appA.start(), appB.start()]);
  await worker.start();
  lap('two app nodes migrated and up, worker started');

  const cli = (args: string[]) => runCli(args, { env: { ...common, DATABASE_URL: urlFor(db2, db1, db3) }, timeoutMs: 180_000 });
  const added = await cli(['user', 'add', '--email', RESEARCHER, '--password', PASSWORD, '--level', 'L2']);
  t.is(added.code, 0, added.stderr);
  const seed = path.join(root, 'seed');
  await mkdir(seed);
  const rows = [SHEET_HEADER];
  for (const s of [21, 22, 23]) {
    await makeSlide({ width: 2400, height: 1800, levels: 2, seed: s, out: seed });
    rows.push(sheetRow(`synthetic-${s}.svs`));
  }
  await writeFile(path.join(seed, 'metadata.csv'), `${rows.join('\n')}\n`);
  const ingested = await cli(['ingest', seed, '--json']);
  t.is(ingested.code, 0, ingested.stderr);
  const slides = await db3.query<{ id: number; sha256: string; file_path: string }>("SELECT id, sha256, file_path FROM slides WHERE status = 'published' ORDER BY id", [], DATABASE);
  t.is(slides.length, 3);
  lap('three slides ingested');

  const client = new ClusterClient([appA, appB]);
  const load: Load = { downloads: 0, downloadMismatches: [], tiles: 0, logins: 0, jobIds: [], jobWanted: false, unexpected: [] };
  const stop = { now: false };
  const running = researcherLoad(client, slides, load, stop);

  // A slide dropped into the watched inbox, old enough to be taken at once.
  const dropped = await makeSlide({ width: 2400, height: 1800, levels: 2, seed: 24, out: path.join(root, 'drop') });
  await mkdir(inbox, { recursive: true });
  for (const file of [dropped.svs, dropped.xml]) await copyFile(file, path.join(inbox, path.basename(file)));
  await writeFile(path.join(inbox, 'metadata.csv'), `${SHEET_HEADER}\n${sheetRow(path.basename(dropped.svs))}\n`);
  const past = new Date(Date.now() - 10 * 60_000);
  for (const name of await readdir(inbox)) await utimes(path.join(inbox, name), past, past);
  const droppedSha = sha256(await readFile(dropped.svs));

  await until('the first toolbox jobs submitted', async () => load.jobIds.length >= 2);

  // 1. A database node stops (cleanly) while app A's connections use it; writes go on meanwhile.
  clock = Date.now();
  await db1.stop();
  lap('database node 1: clean shutdown');
  const servedAfter = load.downloads;
  const servedThroughA = () => client.answeredBy.get('app-a') ?? 0;
  const throughABefore = servedThroughA();
  await until('app A answers again from another database node', async () => {
    const health = await fetch(`${appA.url}/healthz`);
    return health.status === 200 && load.downloads > servedAfter + 1 && servedThroughA() > throughABefore + 3;
  });
  lap('app A answering from another database node after node 1 went away');
  const seqnoAtStop = Number(await db2.status('wsrep_last_committed'));

  // 2. An app node stops; the client fails over to the other, then it comes back.
  const appAStop = await appA.stop();
  t.is(appAStop.code, 0, `app A stopped cleanly: ${appAStop.stderr.slice(-500)}`);
  const roundsWithoutA = load.downloads;
  await until('downloads go on through app B alone', async () => load.downloads >= roundsWithoutA + 3);
  await appA.start();
  lap('app node A stopped and restarted');

  // 3. The worker stops (giving its job back) and starts again.
  // The jobs submitted so far may all be done by now: the load submits another whenever the queue is empty.
  await until(
    'the worker is running a job',
    async () => {
      const [row] = await db2.query<{ running: number; queued: number }>(
        "SELECT SUM(status = 'running') AS running, SUM(status = 'queued') AS queued FROM queue_jobs",
        [],
        DATABASE,
      );
      if (Number(row!.running ?? 0) > 0) return true;
      if (Number(row!.queued ?? 0) === 0) load.jobWanted = true;
      return false;
    },
    240_000,
    25,
  );
  const workerStop = await worker.stop();
  t.is(workerStop.code, 0, `worker stopped cleanly: ${workerStop.stderr.slice(-500)}`);
  await worker.start();
  lap('worker stopped mid-job and restarted');

  // 4. The database node returns and catches up by incremental state transfer.
  const transactionsMissed = Number(await db2.status('wsrep_last_committed')) - seqnoAtStop;
  clock = Date.now();
  await db1.start();
  lap('database node 1 started, rejoined and synced (IST)');

  // Let the load run on all nodes a little more, then wait for the queue and the inbox to drain.
  const downloadsBefore = load.downloads;
  await until('more downloads with every node back', async () => load.downloads >= downloadsBefore + 4);
  stop.now = true;
  await running;
  const jobs = await until(
    'every toolbox job finished',
    async () => {
      const rows = await db1.query<{ id: number; status: string; log: string | null; attempts: number; error: string | null }>(
        `SELECT id, status, log, attempts, error FROM queue_jobs WHERE id IN (${load.jobIds.join(',')}) ORDER BY id`,
        [],
        DATABASE,
      );
      return rows.every((r) => ['succeeded', 'failed', 'cancelled'].includes(r.status)) ? rows : undefined;
    },
    300_000,
  );
  const droppedSlide = await until('the inbox slide published', async () => {
    const [row] = await db1.query<{ id: number; file_path: string; sha256: string }>(
      "SELECT s.id, s.file_path, s.sha256 FROM ingest_records r JOIN slides s ON s.id = r.slide_id WHERE r.source = 'inbox' AND r.outcome = 'published'",
      [],
      DATABASE,
    );
    return row;
  });
  lap('queue and inbox drained');

  // Nothing lost.
  t.deepEqual(load.unexpected, [], 'every answer was the expected one');
  t.deepEqual(client.events.filter((e) => e.kind === 'failure'), [], 'no 5xx reached the client');
  t.deepEqual(load.downloadMismatches, [], 'every download had the published bytes');
  t.true(load.jobIds.length >= 2);
  for (const job of jobs) {
    t.is(job.status, 'succeeded', `job ${job.id}: ${job.error ?? ''}\n${job.log ?? ''}`);
    t.is((job.log ?? '').match(/^.*succeeded: /gm)?.length, 1, `job ${job.id} succeeded exactly once:\n${job.log ?? ''}`);
    const results = await readdir(path.join(data, 'results', String(job.id)));
    t.true(results.includes('tissue-mask.png'), `job ${job.id} results: ${results.join(', ')}`);
  }
  t.deepEqual((await readdir(path.join(data, 'results'))).filter((name) => name.includes('.partial')), [], 'no partial results left');

  const [audited] = await db1.query<{ n: number }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'download.slide'", [], DATABASE);
  t.is(Number(audited!.n), load.downloads, 'every download is in the audit log');
  const [logins] = await db2.query<{ n: number }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'auth.login'", [], DATABASE);
  t.is(Number(logins!.n), load.logins, 'every login is in the audit log');

  // Published slides intact; no half ingest: every file in the store is a published slide, every published slide's file is whole.
  const published = await db2.query<{ id: number; file_path: string; sha256: string }>("SELECT id, file_path, sha256 FROM slides WHERE status = 'published' ORDER BY id", [], DATABASE);
  t.is(published.length, 4, 'three ingested by hand and one from the inbox');
  for (const slide of published) {
    const bytes = await readFile(path.resolve(data, 'slides', slide.file_path)).catch(() => readFile(path.resolve(data, slide.file_path)));
    t.is(sha256(bytes), slide.sha256, `slide ${slide.id} intact`);
  }
  const stored = (await readdir(path.join(data, 'slides'))).filter((name) => name.endsWith('.svs'));
  t.is(stored.length, published.length, `the store holds the published slides and nothing else: ${stored.join(', ')}`);
  const [records] = await db2.query<{ n: number }>("SELECT COUNT(*) AS n FROM ingest_records WHERE source = 'inbox'", [], DATABASE);
  t.is(Number(records!.n), 1, 'the inbox slide was ingested once');
  const [original] = await db2.query<{ original_sha256: string }>("SELECT original_sha256 FROM ingest_records WHERE source = 'inbox'", [], DATABASE);
  t.is(original!.original_sha256, droppedSha, 'the inbox record is of the dropped file');
  t.truthy(droppedSlide.sha256);
  t.deepEqual((await readdir(inbox)).filter((name) => name.endsWith('.svs')), [], 'the inbox is empty');

  // The returning node caught up by IST and holds the same rows as the others.
  const rejoinLog = await readFile(db1.errorLog, 'utf8');
  const lastStart = rejoinLog.lastIndexOf('Starting MariaDB');
  const afterRestart = rejoinLog.slice(lastStart >= 0 ? lastStart : 0);
  t.regex(afterRestart, /IST received|Receiving IST/, 'node 1 received an incremental state transfer');
  t.notRegex(afterRestart, /rsync SST completed on joiner/, 'node 1 needed no full SST');
  // The app nodes' schedulers write on every tick: stop everything, then compare the nodes at rest.
  for (const service of [appA, appB, worker]) t.is((await service.stop()).code, 0, `${service.name} stopped cleanly`);
  const committed = await until('every node applied the last commit', async () => {
    const seqnos = await Promise.all(cluster.nodes.map((node) => node.status('wsrep_last_committed')));
    return new Set(seqnos).size === 1 ? seqnos[0] : undefined;
  });
  t.truthy(committed);
  const [c1, c2, c3] = await Promise.all([rowCounts(db1), rowCounts(db2), rowCounts(db3)]);
  t.deepEqual(c1, c2, 'node 1 and node 2 hold the same rows');
  t.deepEqual(c2, c3, 'node 2 and node 3 hold the same rows');
  for (const node of cluster.nodes) t.is(await node.status('wsrep_cluster_size'), '3');

  const retries = client.events.filter((e) => e.kind === 'retry').length;
  const failovers = client.events.filter((e) => e.kind === 'failover').length;
  figures['client requests'] = `${load.downloads} downloads, ${load.tiles} tiles, ${load.logins} logins, ${load.jobIds.length} jobs; ${retries} retried on 503, ${failovers} failed over`;
  figures['transactions node 1 missed while down'] = String(transactionsMissed);
  t.log(Object.entries(figures).map(([k, v]) => `${k}: ${v}`).join('\n'));
});
