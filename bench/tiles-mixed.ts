import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { readSlideFacts } from '../server/catalog/slide-facts.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { parseDatabaseUrl } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { packageRoot } from '../server/package-info.js';
import { QueueRepository } from '../server/queue/index.js';
import { deepZoomGeometry } from '../server/wsi/index.js';
import { freePort } from '../test/support/cli.js';
import { runLoad, type LoadResult, type LoadTarget } from './load.js';
import { benchSlide } from './slide.js';
import { randomTiles, stop, waitFor } from './servers.js';

const run = promisify(execFile);

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = 16;
/** Tissue masks queued for each scenario with a worker: more than it can finish while measured, so that it is busy throughout. */
const TOOLBOX_JOBS = 300;
const IIPSRV = '/usr/lib/iipimage-server/iipsrv.fcgi';
const NGINX = '/usr/sbin/nginx';
const SPAWN_FCGI = '/usr/bin/spawn-fcgi';
const EMAIL = 'mixed@slidebank.local';
const PASSWORD = 'a long bench password of the mixed load';

/** The Slidebank configurations measured: no worker, a worker at the default background priority, and one at the web server's own priority. */
const SCENARIOS = [
  { name: 'slidebank, worker off', workers: 0, nice: 10, io: 'idle' },
  { name: 'slidebank, worker busy (nice 10, I/O idle: the default)', workers: 1, nice: 10, io: 'idle' },
  { name: 'slidebank, worker busy (nice 0, I/O normal)', workers: 1, nice: 0, io: 'normal' },
] as const;

interface Phase {
  tiles: LoadResult;
  /** Bytes and seconds of the downloads that ran beside the tiles (the last one cut off when the tiles were done). */
  download: { bytes: number; seconds: number };
}

interface Measured {
  name: string;
  /** Tiles from the server measured, the file from the same server. */
  own: Phase;
  /** Tiles from the server measured, the same file from nginx at the same time (the reference file server). */
  nginx?: Phase;
  /** Toolbox jobs the worker finished per minute while measured. */
  jobsPerMinute?: number;
}

/**
 * The mixed load (`npm run bench -- tiles` runs it after the tile benchmark):
 * random tiles of the 60000×40000 bench slide at concurrency 16 with a
 * session cookie, and at the same time one download after another of another
 * slide's file (curl, whole file), measured with the worker off, with a
 * worker busy on tissue masks at the default background priority, and with
 * one at the web server's own priority; each time the same file from nginx
 * beside the same tile load, for the ratio. Then the same pair served by
 * iipsrv (Debian's iipimage-server, one FastCGI process per core behind
 * nginx, on a pyramid TIFF that vips made from the same slide) and nginx.
 * Rounds interleave the scenarios; each figure is the median of its rounds.
 */
export async function tilesMixedBenchmark(): Promise<void> {
  const tileSlide = await benchSlide();
  const downloadSlide = await benchSlide(40_000, 30_000, 2);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-mixed-'));
  const nginxAvailable = existsSync(NGINX);
  const iipAvailable = nginxAvailable && existsSync(IIPSRV) && existsSync(SPAWN_FCGI);
  const pyramid = iipAvailable ? await vipsPyramid(tileSlide) : undefined;
  const loadBefore = os.loadavg();
  try {
    const databaseUrl = `sqlite:${path.join(work, 'bench.sqlite')}`;
    const ids = await register(databaseUrl, work, tileSlide, downloadSlide);
    const nginx = nginxAvailable ? await startNginx(work, downloadSlide, iipAvailable ? os.cpus().length : 0) : undefined;
    const rounds: Measured[][] = [];
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const rows: Measured[] = [];
        for (const scenario of SCENARIOS) rows.push(await slidebankScenario(scenario, databaseUrl, work, ids, nginx));
        if (nginx && pyramid) rows.push(await iipsrvScenario(nginx, pyramid));
        rounds.push(rows);
        console.log(`round ${round + 1}/${ROUNDS}: ${rows.map((r) => `${r.name}: ${r.own.tiles.perSecond.toFixed(0)} tiles/s, ${mbps(r.own.download).toFixed(0)} MB/s`).join('; ')}`);
      }
    } finally {
      if (nginx) await stop(nginx.process);
    }
    report(rounds, (await stat(downloadSlide)).size, loadBefore, nginx ? undefined : `nginx is not installed (${NGINX})`, pyramid ? undefined : `iipsrv needs ${IIPSRV}, ${SPAWN_FCGI} and nginx`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface Registered {
  tileId: number;
  downloadId: number;
}

/** Both slides in a fresh catalog, and an L2 account (with its agreement) made through the CLI, whose session the load uses. */
async function register(databaseUrl: string, work: string, tileSlide: string, downloadSlide: string): Promise<Registered> {
  const db = openDatabase(parseDatabaseUrl(databaseUrl, process.cwd()));
  try {
    await migrateToLatest(db);
    const slides = new SlidesRepository(db.knex);
    const tiles = await slides.create({ name: path.basename(tileSlide), filePath: tileSlide, sha256: null, ...(await readSlideFacts(tileSlide)) });
    const download = await slides.create({ name: path.basename(downloadSlide), filePath: downloadSlide, sha256: null, ...(await readSlideFacts(downloadSlide)) });
    await run(process.execPath, [path.join(packageRoot, 'bin', 'slidebank.js'), 'user', 'add', '--email', EMAIL, '--password', PASSWORD, '--level', 'L2'], {
      env: { ...process.env, DATABASE_URL: databaseUrl, SLIDEBANK_PATHS_DATA: work, SLIDEBANK_LOG_LEVEL: 'warn' },
    });
    return { tileId: tiles.id, downloadId: download.id };
  } finally {
    await db.close();
  }
}

async function slidebankScenario(scenario: (typeof SCENARIOS)[number], databaseUrl: string, work: string, ids: Registered, nginx: Nginx | undefined): Promise<Measured> {
  const db = openDatabase(parseDatabaseUrl(databaseUrl, process.cwd()));
  const queue = new QueueRepository(db.knex, db.dialect);
  try {
    if (scenario.workers > 0) {
      for (let i = 0; i < TOOLBOX_JOBS; i++) await queue.insert({ type: 'tissue-mask', slideId: ids.tileId, parameters: { method: 'grey' }, ownerId: null, maxAttempts: 1 });
    }
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = spawn(process.execPath, [path.join(packageRoot, 'bin', 'slidebank.js'), 'serve'], {
      env: {
        ...process.env,
        PORT: String(port),
        SLIDEBANK_HOST: '127.0.0.1',
        DATABASE_URL: databaseUrl,
        SLIDEBANK_PATHS_DATA: work,
        SLIDEBANK_LOG_LEVEL: 'warn',
        SLIDEBANK_DEMO: '0',
        SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '',
        SLIDEBANK_QUEUE_WORKERS: String(scenario.workers),
        SLIDEBANK_QUEUE_WORKER_NICE: String(scenario.nice),
        SLIDEBANK_QUEUE_WORKER_IO_PRIORITY: scenario.io,
        SLIDEBANK_QUEUE_POLL_SECONDS: '0.2',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await waitFor(`${base}/healthz`, server);
      const headers = { cookie: await logIn(base) };
      if (scenario.workers > 0) await workerBusy(queue);
      const done = async () => (await queue.list({ status: 'succeeded', limit: 1_000_000 })).length;
      const doneBefore = scenario.workers > 0 ? await done() : 0;
      const t0 = performance.now();
      const targets = await deepZoomTargets(`${base}/tiles/${ids.tileId}.dzi`, (l, c, r) => `${base}/tiles/${ids.tileId}_files/${l}/${c}_${r}.jpeg`, headers);
      const own = await alongside(targets, headers, `${base}/api/slides/${ids.downloadId}/files/slide`, headers);
      const viaNginx = nginx ? await alongside(targets, headers, `${nginx.base}/files/slide.svs`, {}) : undefined;
      const jobsPerMinute = scenario.workers > 0 ? ((await done()) - doneBefore) / ((performance.now() - t0) / 60_000) : undefined;
      return { name: scenario.name, own, nginx: viaNginx, jobsPerMinute };
    } finally {
      await stop(server);
    }
  } finally {
    await db.close();
  }
}

/** iipsrv's tiles (Deep Zoom, through nginx's FastCGI) and nginx's file at the same time: the pair a site without Slidebank would run. */
async function iipsrvScenario(nginx: Nginx, pyramid: string): Promise<Measured> {
  const iip = nginx.fastcgiPorts.map((port) =>
    spawn(SPAWN_FCGI, ['-n', '-a', '127.0.0.1', '-p', String(port), '--', IIPSRV], {
      env: { ...process.env, VERBOSITY: '0', JPEG_QUALITY: '80', MAX_IMAGE_CACHE_SIZE: '64', FILESYSTEM_PREFIX: '' },
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  try {
    const dzi = `${nginx.base}/fcgi-bin/iipsrv.fcgi?DeepZoom=${pyramid}.dzi`;
    await waitFor(dzi, iip[0]!);
    const targets = await deepZoomTargets(dzi, (l, c, r) => `${nginx.base}/fcgi-bin/iipsrv.fcgi?DeepZoom=${pyramid}_files/${l}/${c}_${r}.jpg`, {});
    const own = await alongside(targets, {}, `${nginx.base}/files/slide.svs`, {});
    return { name: `iipsrv ${iip.length} FastCGI processes + nginx`, own };
  } finally {
    await Promise.all(iip.map(stop));
  }
}

/** The tiles at concurrency 16 and, until they are done, one whole-file download after another. */
async function alongside(targets: LoadTarget[], tileHeaders: Record<string, string>, file: string, fileHeaders: Record<string, string>): Promise<Phase> {
  let tilesDone = false;
  const download = { bytes: 0, seconds: 0 };
  const downloads = (async () => {
    const started = performance.now();
    while (!tilesDone) {
      // At most until the tiles are done (checked each second): the cut-off download counts its bytes so far.
      const measured = await curl(file, fileHeaders, 1);
      download.bytes += measured.bytes;
      download.seconds += measured.seconds;
      if (performance.now() - started > 600_000) throw new Error('the tiles took over 10 minutes');
    }
  })();
  // A failed download ends the loop; its error is thrown once the tiles are done, so that no server is left running.
  const failed = downloads.then(() => undefined, (error: unknown) => error);
  const tiles = await runLoad(targets, CONCURRENCY, tileHeaders);
  tilesDone = true;
  const error = await failed;
  if (error) throw error;
  if (tiles.errors > 0) throw new Error(`${tiles.errors} of ${tiles.requests} tile requests failed; the figures would be wrong`);
  return { tiles, download };
}

/** curl into /dev/null for at most `maxSeconds`: its bytes and time (a transfer cut off by the limit counts what it received). */
async function curl(url: string, headers: Record<string, string>, maxSeconds: number): Promise<{ bytes: number; seconds: number }> {
  const args = ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{time_total}', '--max-time', String(maxSeconds), ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  let timedOut = false;
  const { stdout } = await run('curl', args).catch((error: { code?: number; stdout?: string }) => {
    // 28: the time limit, as intended.
    if (error.code !== 28 || !error.stdout) throw error;
    timedOut = true;
    return { stdout: error.stdout };
  });
  const [status, bytes, seconds] = stdout.trim().split(' ').map(Number);
  // Cut off before the answer's headers came (status 0): a second with nothing received, which counts.
  if (status !== 200 && !(timedOut && status === 0)) throw new Error(`${url} answered ${status}`);
  return { bytes: bytes!, seconds: seconds! };
}

/** A deterministic random set of distinct tiles over the levels of a Deep Zoom descriptor: a level drawn uniformly, then a tile in it. */
async function deepZoomTargets(dziUrl: string, url: (level: number, col: number, row: number) => string, headers: Record<string, string>): Promise<LoadTarget[]> {
  const response = await fetch(dziUrl, { headers });
  const xml = await response.text();
  if (!response.ok) throw new Error(`${dziUrl} answered ${response.status}: ${xml.slice(0, 200)}`);
  const number = (name: string) => Number(new RegExp(`${name}="(\\d+)"`).exec(xml)?.[1]);
  const { levels } = deepZoomGeometry(number('Width'), number('Height'), { tileSize: number('TileSize'), overlap: number('Overlap') });
  return randomTiles(levels, REQUESTS, 0x2545f491).map(({ level, col, row }) => ({ url: url(level, col, row), group: 'tile' }));
}

/** Log in as the portal does (a CSRF token first, then the password): the session cookie. */
async function logIn(base: string): Promise<string> {
  const jar = new Map<string, string>();
  const keep = (response: Response) => response.headers.getSetCookie().forEach((c) => jar.set(c.split('=')[0]!, c.split(';')[0]!));
  const cookie = () => [...jar.values()].join('; ');
  const csrf = await fetch(`${base}/api/auth/csrf`);
  keep(csrf);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const response = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken, cookie: cookie() },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
  });
  keep(response);
  if (!response.ok) throw new Error(`login answered ${response.status}: ${await response.text()}`);
  return cookie();
}

/** Wait until the worker has taken a job up. */
async function workerBusy(queue: QueueRepository): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await queue.list({ status: 'running' })).length === 0) {
    if (Date.now() > deadline) throw new Error('the worker took no job up within 60 s');
    await sleep(100);
  }
}

interface Nginx {
  process: ChildProcess;
  base: string;
  fastcgiPorts: number[];
}

/** nginx serving the download slide as a static file (sendfile), and iipsrv's FastCGI processes when there are any. */
async function startNginx(work: string, downloadSlide: string, fastcgiProcesses: number): Promise<Nginx> {
  const root = path.join(work, 'nginx');
  await mkdir(path.join(root, 'files'), { recursive: true });
  const port = await freePort();
  const fastcgiPorts: number[] = [];
  for (let i = 0; i < fastcgiProcesses; i++) fastcgiPorts.push(await freePort());
  const temp = (name: string) => `${name}_temp_path ${path.join(root, `${name}-temp`)};`;
  const conf = [
    `worker_processes ${os.cpus().length};`,
    `pid ${path.join(root, 'nginx.pid')};`,
    `error_log ${path.join(root, 'error.log')};`,
    'events { worker_connections 1024; }',
    'http {',
    '  access_log off;',
    '  sendfile on;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((name) => `  ${temp(name)}`),
    // No upstream keepalive: an iipsrv process serves one FastCGI connection at a time, and a kept one would block it.
    ...(fastcgiPorts.length ? ['  upstream iipsrv {', ...fastcgiPorts.map((p) => `    server 127.0.0.1:${p};`), '  }'] : []),
    '  server {',
    `    listen 127.0.0.1:${port};`,
    `    location = /files/slide.svs { alias ${downloadSlide}; }`,
    ...(fastcgiPorts.length ? ['    location /fcgi-bin/iipsrv.fcgi {', '      include /etc/nginx/fastcgi_params;', '      fastcgi_pass iipsrv;', '    }'] : []),
    '  }',
    '}',
  ].join('\n');
  await writeFile(path.join(root, 'nginx.conf'), conf);
  const child = spawn(NGINX, ['-p', root, '-c', path.join(root, 'nginx.conf'), '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(`${base}/files/slide.svs`, child, 'HEAD');
  return { process: child, base, fastcgiPorts };
}

/** The slide as a tiled JPEG pyramid TIFF for iipsrv, made once by vips and kept beside the bench slide. */
async function vipsPyramid(slide: string): Promise<string> {
  const file = slide.replace(/\.svs$/, '.iip.tif');
  if (existsSync(file)) return file;
  process.stdout.write(`converting the bench slide to a pyramid TIFF for iipsrv (once; kept as ${file}) … `);
  const t0 = performance.now();
  const partial = file.replace(/\.tif$/, '-partial.tif');
  await run('vips', ['tiffsave', slide, partial, '--tile', '--pyramid', '--compression', 'jpeg', '--Q', '80', '--tile-width', '256', '--tile-height', '256', '--bigtiff'], { maxBuffer: 1 << 20 });
  await rename(partial, file);
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  return file;
}

function mbps(download: { bytes: number; seconds: number }): number {
  return download.seconds > 0 ? download.bytes / 1e6 / download.seconds : 0;
}

function report(rounds: Measured[][], fileBytes: number, loadBefore: number[], noNginx?: string, noIipsrv?: string): void {
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(
    `\ntiles, mixed load: ${REQUESTS} distinct random tiles of the 60000×40000 bench slide at concurrency ${CONCURRENCY} (session cookie), and meanwhile whole-file downloads (curl) of another slide (${(fileBytes / 2 ** 20).toFixed(0)} MiB); ${os.cpus().length} cores; median of ${ROUNDS} rounds; load average before ${load(loadBefore)}, after ${load(os.loadavg())}`,
  );
  console.log('| server | tiles/s | p50 ms | p99 ms | download MB/s | nginx MB/s, same load | download / nginx | worker jobs/min |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const [i, row] of rounds[0]!.entries()) {
    const all = rounds.map((r) => r[i]!);
    const own = mid(all.map((r) => mbps(r.own.download)));
    const nginx = all[0]!.nginx ? mid(all.map((r) => mbps(r.nginx!.download))) : undefined;
    const jobs = all[0]!.jobsPerMinute !== undefined ? mid(all.map((r) => r.jobsPerMinute!)).toFixed(1) : '–';
    console.log(
      `| ${row.name} | ${mid(all.map((r) => r.own.tiles.perSecond)).toFixed(0)} | ${mid(all.map((r) => r.own.tiles.latency.p50)).toFixed(1)} | ${mid(all.map((r) => r.own.tiles.latency.p99)).toFixed(1)} | ${own.toFixed(0)} | ${nginx === undefined ? '–' : nginx.toFixed(0)} | ${nginx === undefined ? '–' : `${(own / nginx).toFixed(2)}×`} | ${jobs} |`,
    );
  }
  const iip = rounds[0]!.findIndex((r) => r.name.startsWith('iipsrv'));
  const off = rounds[0]!.findIndex((r) => r.name === SCENARIOS[0].name);
  if (iip >= 0) {
    const ratios = rounds.map((r) => r[off]!.own.tiles.perSecond / r[iip]!.own.tiles.perSecond);
    console.log(`ratio slidebank (worker off) / iipsrv, tiles/s under the same mixed load: ${mid(ratios).toFixed(2)}× (rounds: ${ratios.map((v) => v.toFixed(2)).join(', ')})`);
  }
  if (noNginx) console.log(`(${noNginx}: no reference file server)`);
  if (noIipsrv) console.log(`(no iipsrv run: ${noIipsrv})`);
  console.log('(iipsrv: Debian iipimage-server, one FastCGI process per core (spawn-fcgi) behind nginx, on a vips tiffsave --tile --pyramid --compression jpeg pyramid of the same slide, 256-pixel tiles)');
}
