import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { AccessTokensRepository } from '../server/access/access-tokens.repository.js';
import { newSecret, sha256Hex } from '../server/access/secrets.js';
import { loadVocabulary } from '../server/catalog/vocabulary.js';
import { loadConfig, parseDatabaseUrl } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { packageRoot } from '../server/package-info.js';
import { seedCatalogRows, type SeededCatalog } from '../test/support/catalog-rows.js';
import { freePort } from '../test/support/cli.js';
import { summarize, type LatencySummary } from './load.js';
import { stop, waitFor } from './servers.js';

const SLIDES = Number(process.env.BENCH_CATALOG_SLIDES ?? 100_000);
const AUDIT_EVENTS = Number(process.env.BENCH_CATALOG_AUDIT ?? 1_000_000);
/** Requests of each kind, spread over the concurrent users. */
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 320);
const USERS = 16;
/** The benchmark's own MariaDB database, dropped and created anew on each run. */
const MARIADB_URL = process.env.BENCH_MARIADB_URL ?? 'mysql://root@127.0.0.1:3306/slidebank_bench_catalog';
const PASSWORD = 'benchmark password of the catalog 1';
const GOAL_P95_MS = 100;

/**
 * The catalog benchmark (docs/benchmarks.md, "Catalog"): 100,000 generated
 * catalog rows (test/support/catalog-rows.ts) and a million audit events, on
 * SQLite and on MariaDB, served by a Slidebank process of its own (compiled,
 * as in production); 16 users at once ask, over HTTP, for each kind of page
 * in turn, and each kind's latencies (to the last byte) are reported.
 * `BENCH_CATALOG_DATABASES=sqlite` (or `mariadb`) runs one database only;
 * `BENCH_CATALOG_KEEP=DIR` keeps the SQLite database for later runs, and
 * `BENCH_CATALOG_KINDS` picks kinds by words of their labels.
 * Figures only; nothing is asserted.
 */
export async function catalogBenchmark(): Promise<void> {
  const wanted = (process.env.BENCH_CATALOG_DATABASES ?? 'sqlite,mariadb').split(',');
  for (const dialect of ['sqlite', 'mariadb'] as const) {
    if (!wanted.includes(dialect)) continue;
    const kept = dialect === 'sqlite' ? process.env.BENCH_CATALOG_KEEP : undefined;
    const work = kept ? path.resolve(kept) : await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-catalog-'));
    try {
      if (kept) await mkdir(work, { recursive: true });
      const url = dialect === 'sqlite' ? `sqlite:${path.join(work, 'catalog.sqlite')}` : await freshMariadb();
      await benchDatabase(dialect, url, work, kept !== undefined);
    } finally {
      if (!kept) await rm(work, { recursive: true, force: true });
    }
  }
}

async function freshMariadb(): Promise<string> {
  const url = new URL(MARIADB_URL);
  const database = url.pathname.slice(1);
  url.pathname = '/mysql';
  const admin = openDatabase(parseDatabaseUrl(url.toString(), process.cwd()), { poolMax: 1 });
  try {
    await admin.knex.raw(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.knex.raw(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  } finally {
    await admin.close();
  }
  return MARIADB_URL;
}

interface Accounts {
  researcher: Record<string, string>;
  admin: Record<string, string>;
}

async function benchDatabase(dialect: 'sqlite' | 'mariadb', url: string, work: string, keep: boolean): Promise<void> {
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env: { DATABASE_URL: url, SLIDEBANK_PATHS_DATA: work } });
  const vocabulary = loadVocabulary(config.ingest.vocabularies);
  const facts = path.join(work, 'seeded.json');
  const reused = keep ? ((await readFile(facts, 'utf8').then(JSON.parse, () => undefined)) as { seeded: SeededCatalog; accounts: Accounts } | undefined) : undefined;
  if (reused) {
    // A kept database (BENCH_CATALOG_KEEP) is brought to the current schema and measured again, without seeding.
    const db = openDatabase(parseDatabaseUrl(url, work));
    try {
      await migrateToLatest(db);
    } finally {
      await db.close();
    }
    console.log(`catalog (${dialect}): reusing the database seeded in ${work}`);
    return measure(dialect, url, work, vocabulary, reused.seeded, reused.accounts);
  }
  const db = openDatabase(parseDatabaseUrl(url, work));
  let seeded: SeededCatalog;
  try {
    await migrateToLatest(db);
    const t0 = performance.now();
    let shown = '';
    seeded = await seedCatalogRows(db.knex, vocabulary, { slides: SLIDES, auditEvents: AUDIT_EVENTS }, (what, done, total) => {
      const line = `${what} ${Math.floor((100 * done) / total)}%`;
      if (line !== shown && done % (total >= 100_000 ? total / 10 : total) === 0) console.log(`catalog (${dialect}): seeding ${line}`);
      shown = line;
    });
    console.log(`catalog (${dialect}): seeded ${SLIDES} slides (${seeded.published} published) and ${AUDIT_EVENTS} audit events in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    if (dialect === 'mariadb') await db.knex.raw('ANALYZE TABLE slides, audit_log, ingest_records');
    else await db.knex.raw('ANALYZE');
  } finally {
    await db.close();
  }
  const accounts = await createAccounts(url, work);
  if (keep) await writeFile(facts, JSON.stringify({ seeded, accounts }));
  await measure(dialect, url, work, vocabulary, seeded, accounts);
}

/** A Slidebank process on the seeded database, and each kind's requests (those named in BENCH_CATALOG_KINDS, or all). */
async function measure(dialect: 'sqlite' | 'mariadb', url: string, work: string, vocabulary: ReturnType<typeof loadVocabulary>, seeded: SeededCatalog, accounts: Accounts): Promise<void> {
  const port = await freePort();
  const server = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS?.split(' ') ?? []), path.join(packageRoot, 'bin', 'slidebank.js'), 'serve'], {
    env: { ...process.env, PORT: String(port), SLIDEBANK_HOST: '127.0.0.1', DATABASE_URL: url, SLIDEBANK_PATHS_DATA: work, SLIDEBANK_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    const base = `http://127.0.0.1:${port}`;
    await waitFor(`${base}/healthz`, server);
    const only = process.env.BENCH_CATALOG_KINDS?.split(',');
    const kinds = (await requestKinds(base, seeded, vocabulary.organs.map((organ) => organ.code), accounts)).filter((kind) => !only || only.some((word) => kind.label.includes(word)));
    for (const kind of kinds) await runKind({ ...kind, requests: kind.requests.slice(0, USERS) }); // warm up: caches and JIT, as a running server has them
    console.log(`\ncatalog (${dialect}): ${SLIDES} slides, ${AUDIT_EVENTS} audit events; ${USERS} users at once, ${REQUESTS} requests of each kind over HTTP to a server process; ${load()}`);
    console.log(`kind                                              status   p50 ms   p95 ms   p99 ms   max ms   req/s   p95 < ${GOAL_P95_MS} ms   other status`);
    for (const kind of kinds) {
      const result = await runKind(kind);
      const l = result.latency;
      console.log(
        `${kind.label.padEnd(49)} ${String(kind.status).padStart(6)} ${f(l.p50)} ${f(l.p95)} ${f(l.p99)} ${f(l.max)} ${result.perSecond.toFixed(0).padStart(7)}   ${(l.p95 < GOAL_P95_MS ? 'yes' : 'no').padEnd(13)}${result.unexpected}`,
      );
    }
  } finally {
    await stop(server);
  }
}

/** A researcher at L2 (administrative DUA) and an administrator, made by the CLI as an operator would, each with a read token. */
async function createAccounts(url: string, work: string): Promise<Accounts> {
  const cli = path.join(packageRoot, 'bin', 'slidebank.js');
  const env = { ...process.env, DATABASE_URL: url, SLIDEBANK_PATHS_DATA: work, SLIDEBANK_USER_PASSWORD: PASSWORD };
  await promisify(execFile)(process.execPath, [cli, 'user', 'add', '--email', 'researcher@bench.example', '--level', 'L2'], { env });
  await promisify(execFile)(process.execPath, [cli, 'user', 'add', '--email', 'admin@bench.example', '--level', 'L1', '--role', 'admin,curator'], { env });
  const db = openDatabase(parseDatabaseUrl(url, work));
  try {
    const token = async (email: string) => {
      const user = (await db.knex('users').where({ email }).first('id')) as { id: number };
      const secret = `sbk_${newSecret()}`;
      await new AccessTokensRepository(db.knex).create({ userId: user.id, name: 'bench', prefix: secret.slice(0, 12), tokenHash: sha256Hex(secret), scope: 'read', expiresAt: null }, new Date());
      return { authorization: `Bearer ${secret}` };
    };
    return { researcher: await token('researcher@bench.example'), admin: await token('admin@bench.example') };
  } finally {
    await db.close();
  }
}

interface Kind {
  label: string;
  headers: Record<string, string>;
  /** The status every answer must have: the manifest of 20,000 slides is refused (413) once the filter is resolved. */
  status: number;
  requests: string[];
}

/** Each kind's URLs, drawn by a fixed sequence so that runs compare. */
async function requestKinds(base: string, seeded: SeededCatalog, organs: string[], accounts: Accounts): Promise<Kind[]> {
  let state = 7;
  const random = (below: number) => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return state % below;
  };
  const many = (make: (i: number) => string) => Array.from({ length: REQUESTS }, (_, i) => `${base}${make(i)}`);
  const { researcher, admin } = accounts;
  const datasets = seeded.datasets;
  const words = ['metastasis', 'invasion', 'cirrhosis', 'liver', 'carcinoma', 'mucinous', 'ki67', 'margin', 'necrosis', 'regression'];
  const sorts = ['name', '-name', 'created', '-created', 'size', '-size'];
  const manifest = await manifestFilter(base, researcher, datasets);
  const kinds: Kind[] = [
    { label: 'catalog, first page, every facet counted', headers: researcher, status: 200, requests: many(() => '/api/slides') },
    {
      label: 'catalog, facet filters (1–3 facets), counts',
      headers: researcher,
      status: 200,
      requests: many((i) => {
        const organ = `organ=${organs[random(organs.length)]}`;
        const parts = [organ, i % 2 === 0 ? 'stain=IHC' : 'stain=HE', `dataset=${datasets[random(datasets.length)]}`];
        return `/api/slides?${parts.slice(0, 1 + (i % 3)).join('&')}&page=${1 + random(5)}`;
      }),
    },
    { label: 'catalog as staff, filtered by scanner vendor', headers: admin, status: 200, requests: many((i) => `/api/slides?scannerVendor=${['aperio', 'hamamatsu', 'dicom'][i % 3]}&organ=${organs[random(organs.length)]}`) },
    { label: 'text search (q, one or two words)', headers: researcher, status: 200, requests: many((i) => `/api/slides?q=${words[random(words.length)]}${i % 2 === 0 ? `+${words[random(words.length)]}` : ''}`) },
    ...sorts.map((sort) => ({
      label: `sorted by ${sort}, pages 1–100`,
      headers: researcher,
      status: 200,
      requests: many(() => `/api/slides?sort=${sort}&page=${1 + random(100)}`),
    })),
    { label: `manifest by filter expression (${manifest.total} slides: 413)`, headers: researcher, status: 413, requests: many(() => `/api/downloads/manifest?filter=${encodeURIComponent(manifest.expression)}`) },
    {
      label: "admin's slide list (status, name part, pages)",
      headers: admin,
      status: 200,
      requests: many((i) => ['/api/admin/slides', `/api/admin/slides?status=withdrawn&offset=${random(50) * 50}`, `/api/admin/slides?q=SB1-${organs[random(organs.length)]}&offset=${random(200) * 50}`, `/api/admin/slides?offset=${random(2000) * 50}`][i % 4]!),
    },
    { label: 'ingest records, newest first, pages', headers: admin, status: 200, requests: many((i) => ['/api/ingest/records', '/api/ingest/records?outcome=quarantined', `/api/ingest/records?offset=${random(1000) * 50}`][i % 3]!) },
    {
      label: 'audit log (1M events): pages, filters',
      headers: admin,
      status: 200,
      requests: many((i) => ['/api/admin/audit', `/api/admin/audit?page=${1 + random(200)}`, '/api/admin/audit?action=download.*', `/api/admin/audit?actor=${seeded.userIds[random(seeded.userIds.length)]}`][i % 4]!),
    },
  ];
  return kinds;
}

/** A filter expression of whole datasets that selects about 20,000 published slides (more than a manifest takes: it is answered 413). */
async function manifestFilter(base: string, headers: Record<string, string>, datasets: string[]): Promise<{ expression: string; total: number }> {
  const sizes: [string, number][] = [];
  for (const dataset of datasets) {
    const page = (await (await fetch(`${base}/api/slides?dataset=${encodeURIComponent(dataset)}&limit=1`, { headers })).json()) as { total: number };
    sizes.push([dataset, page.total]);
  }
  sizes.sort((a, b) => b[1] - a[1]);
  const chosen: string[] = [];
  let total = 0;
  for (const [dataset, size] of sizes) {
    if (total >= 20_000) break;
    if (total + size <= 24_000 || chosen.length === 0) {
      chosen.push(dataset);
      total += size;
    }
  }
  return { expression: `dataset=${chosen.join(',')};stain=HE,IHC`, total };
}

/**
 * Every request of a kind, USERS at a time over keep-alive connections (fetch's pool);
 * answers of another status, and requests that failed (counted as status 0), are
 * counted and shown, not fatal, so that a refused kind still shows.
 */
async function runKind(kind: Kind): Promise<{ latency: LatencySummary & { p95: number }; perSecond: number; unexpected: string }> {
  const latencies: number[] = [];
  const unexpected = new Map<number, number>();
  let next = 0;
  const started = performance.now();
  const user = async () => {
    while (next < kind.requests.length) {
      const url = kind.requests[next++]!;
      const t0 = performance.now();
      const status = await fetch(url, { headers: kind.headers })
        .then(async (response) => {
          await response.arrayBuffer();
          return response.status;
        })
        .catch(() => 0);
      latencies.push(performance.now() - t0);
      if (status !== kind.status) unexpected.set(status, (unexpected.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: USERS }, user));
  const seconds = (performance.now() - started) / 1000;
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    latency: { ...summarize(latencies), p95: sorted[Math.min(sorted.length - 1, Math.floor(0.95 * sorted.length))] ?? 0 },
    perSecond: latencies.length / seconds,
    unexpected: [...unexpected].map(([status, n]) => `${n}× ${status}`).join(', '),
  };
}

function load(): string {
  return `${os.cpus().length} cores, load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`;
}

function f(value: number): string {
  return value.toFixed(1).padStart(8);
}
