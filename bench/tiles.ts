import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { readSlideFacts } from '../server/catalog/slide-facts.js';
import { AccessTokensRepository } from '../server/access/access-tokens.repository.js';
import { newSecret, sha256Hex } from '../server/access/secrets.js';
import { UsersRepository } from '../server/access/users.repository.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { parseDatabaseUrl } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { packageRoot } from '../server/package-info.js';
import { DeepZoom, OPENSLIDE_GRID, scaledJpegUnavailable, Slide, type DeepZoomGrid } from '../server/wsi/index.js';
import { freePort } from '../test/support/cli.js';
import { runLoad, type LatencySummary, type LoadResult, type LoadTarget } from './load.js';
import { benchSlide, HEIGHT, WIDTH } from './slide.js';
import { peakRss, stop, tileTargets as randomTileTargets, waitFor, withSlidebank as withServer } from './servers.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The slide a server is warmed up on before the cold run, and how many of its tiles are asked for. */
const WARM_UP_SIZE = [16_000, 12_000] as const;
const WARM_UP_REQUESTS = 1000;
/**
 * The Slidebank configurations measured: the default (native grid, scaled
 * JPEG decoding where the addon is built), the same without scaled decoding
 * (every resampled tile through sharp and Lanczos), and OpenSlide's grid.
 */
const SLIDEBANK_VARIANTS = [
  ['slidebank (native grid)', 'native', true],
  ['slidebank (native, no scaled decode)', 'native', false],
  ['slidebank (254/1 grid)', 'openslide', true],
] as const;
/**
 * `BENCH_TILES_SERVERS=native,openslide` runs only the servers whose names
 * contain one of these words; `BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=DIR'`
 * passes Node options to the Slidebank servers (to profile them).
 */
const ONLY = process.env.BENCH_TILES_SERVERS?.split(',').map((w) => w.trim().toLowerCase()).filter(Boolean);
const wanted = (name: string) => !ONLY || ONLY.some((word) => name.toLowerCase().includes(word));
const DEEPZOOM_SERVER = '/usr/share/doc/python-openslide-examples/examples/deepzoom/deepzoom_server.py';

/**
 * The tile benchmark: a generated 60000×40000 slide served by Slidebank
 * (native grid with passthrough, and OpenSlide's 254/1 grid) and, where
 * installed, by OpenSlide's deepzoom_server.py, all with the same random
 * tiles across all levels at concurrency 16. Slidebank is measured fresh (a
 * new process), cold (a process warmed up on another slide, nothing of this
 * one open or cached) and warm; OpenSlide's server opens the slide when it
 * starts, and is measured from there.
 */
export async function tilesBenchmark(): Promise<void> {
  const slideFile = await benchSlide();
  const warmUpFile = await benchSlide(WARM_UP_SIZE[0], WARM_UP_SIZE[1], 2);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-'));
  try {
    const databaseUrl = `sqlite:${path.join(work, 'bench.sqlite')}`;
    const { slideId, warmUpId, headers } = await register(databaseUrl, slideFile, warmUpFile);
    const slide = await Slide.open(slideFile);
    const warmUpSlide = await Slide.open(warmUpFile);
    const rounds: Row[][] = [];
    try {
      // Rounds interleave the servers, so that a noisy neighbour on the machine
      // weighs on all of them alike; the report takes the median of the rounds.
      for (let round = 0; round < ROUNDS; round++) {
        const rows: Row[] = [];
        for (const [name, grid, scaledDecode] of SLIDEBANK_VARIANTS.filter(([name]) => wanted(name))) {
          rows.push(await slidebankServer(name, grid, scaledDecode, { slide, slideId, warmUpSlide, warmUpId, headers, databaseUrl, work }));
        }
        const reference = wanted('OpenSlide deepzoom_server.py') ? await openslideServer(slideFile, slide) : undefined;
        if (reference) rows.push(reference);
        rounds.push(rows);
        console.log(`round ${round + 1}/${ROUNDS}: ${rows.map((r) => `${r.name} ${r.cold.perSecond.toFixed(0)} tiles/s cold`).join(', ')}`);
      }
    } finally {
      await slide.close();
      await warmUpSlide.close();
    }
    const rows = rounds[0]!.map((_, i) => median(rounds.map((r) => r[i]!)));
    report(rows, rounds);
    if (wanted(VIEWER_PATHS)) {
      const reference = rows.find((row) => row.name === 'OpenSlide deepzoom_server.py');
      reportViewerPaths(await viewerPaths({ slide, slideId, warmUpSlide, warmUpId, headers, databaseUrl, work }), reference?.cold);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface Row {
  name: string;
  grid: DeepZoomGrid;
  /** Slidebank: the load on a fresh process. */
  fresh?: LoadResult;
  cold: LoadResult;
  warm?: LoadResult;
  /** Slowest overview tile when a viewer opens the slide on a fresh, idle server. */
  firstView?: number;
  peakRssMiB: number;
}

interface BenchSetup {
  slide: Slide;
  slideId: number;
  /** Another slide, to warm a server up on without touching the measured slide. */
  warmUpSlide: Slide;
  warmUpId: number;
  headers: Record<string, string>;
  databaseUrl: string;
  work: string;
}

/**
 * One Slidebank configuration, each measure in its own server process: a
 * viewer opening the slide on an idle server; the load on a fresh process
 * ("fresh": the process and its caches start with the load); the load on a
 * process that has served another slide for a while, with nothing of this
 * slide open or cached ("cold", what a long-running server meets when someone
 * opens a slide nobody has viewed); and the same load again ("warm").
 */
async function slidebankServer(name: string, grid: 'native' | 'openslide', scaledDecode: boolean, setup: BenchSetup): Promise<Row> {
  const { slide, slideId, warmUpSlide, warmUpId, headers, databaseUrl, work } = setup;
  const gridOf = (s: Slide) => (grid === 'native' ? DeepZoom.nativeGrid(s) ?? OPENSLIDE_GRID : OPENSLIDE_GRID);
  const deepZoom = new DeepZoom(slide, gridOf(slide));
  const firstView = await withSlidebank(grid, scaledDecode, databaseUrl, work, (base) => openLikeAViewer(base, slideId, deepZoom, headers));
  const fresh = await withSlidebank(grid, scaledDecode, databaseUrl, work, async (base) => {
    return runLoad(tileTargets(deepZoom, slide, (l, c, r) => `${base}/tiles/${slideId}_files/${l}/${c}_${r}.jpeg`), CONCURRENCY, headers);
  });
  return withSlidebank(grid, scaledDecode, databaseUrl, work, async (base, server) => {
    const warmUp = tileTargets(new DeepZoom(warmUpSlide, gridOf(warmUpSlide)), warmUpSlide, (l, c, r) => `${base}/tiles/${warmUpId}_files/${l}/${c}_${r}.jpeg`);
    const warmedUp = await runLoad(warmUp.slice(0, WARM_UP_REQUESTS), CONCURRENCY, headers);
    const targets = tileTargets(deepZoom, slide, (l, c, r) => `${base}/tiles/${slideId}_files/${l}/${c}_${r}.jpeg`);
    const cold = await runLoad(targets, CONCURRENCY, headers);
    const warm = await runLoad(targets, CONCURRENCY, headers);
    const errors = fresh.errors + warmedUp.errors + cold.errors + warm.errors;
    if (errors > 0) throw new Error(`${name}: ${errors} tile requests failed; the figures would be wrong`);
    return { name, grid: deepZoom.grid, fresh, cold, warm, firstView, peakRssMiB: peakRss(server) };
  });
}

/** A fresh Slidebank process (servers.ts) with scaled JPEG decoding on or off. */
function withSlidebank<T>(grid: string, scaledDecode: boolean, databaseUrl: string, work: string, run: (base: string, server: ChildProcess) => Promise<T>, env: Record<string, string> = {}): Promise<T> {
  return withServer(grid, databaseUrl, work, run, { SLIDEBANK_TILES_SCALED_DECODE: String(scaledDecode), ...env });
}

/**
 * What a researcher waits for when opening a slide on an idle server: the
 * descriptor, then every tile of each overview level, a level at a time (as
 * OpenSeadragon and Leaflet ask for them). Returns the slowest tile, in ms.
 */
async function openLikeAViewer(base: string, slideId: number, deepZoom: DeepZoom, headers: Record<string, string>): Promise<number> {
  await (await fetch(`${base}/tiles/${slideId}.dzi`, { headers })).text();
  let slowest = 0;
  for (const [level, l] of deepZoom.levels.entries()) {
    if (l.cols * l.rows > 4) break;
    const tiles = [];
    for (let row = 0; row < l.rows; row++) for (let col = 0; col < l.cols; col++) tiles.push([col, row]);
    await Promise.all(
      tiles.map(async ([col, row]) => {
        const t0 = performance.now();
        const response = await fetch(`${base}/tiles/${slideId}_files/${level}/${col}_${row}.jpeg`, { headers });
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`first view: tile ${level}/${col}_${row} answered ${response.status}`);
        slowest = Math.max(slowest, performance.now() - t0);
      }),
    );
  }
  return slowest;
}

/**
 * One server's rounds summed up figure by figure: each figure is the median of
 * its rounds. The overview p99 rests on a dozen requests per round, mostly the
 * first burst after the server starts, so a single round's value is noisy.
 */
function median(rows: Row[]): Row {
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const summary = (pick: (row: Row) => LatencySummary | undefined): LatencySummary | undefined => {
    const found = rows.map(pick).filter((s): s is LatencySummary => s !== undefined);
    if (found.length === 0) return undefined;
    return { count: mid(found.map((s) => s.count)), p50: mid(found.map((s) => s.p50)), p99: mid(found.map((s) => s.p99)), max: mid(found.map((s) => s.max)) };
  };
  const result = (pick: (row: Row) => LoadResult | undefined): LoadResult | undefined => {
    const found = rows.map(pick).filter((r): r is LoadResult => r !== undefined);
    if (found.length === 0) return undefined;
    const groups = [...new Set(found.flatMap((r) => Object.keys(r.byGroup)))];
    return {
      requests: found[0]!.requests,
      errors: Math.max(...found.map((r) => r.errors)),
      seconds: mid(found.map((r) => r.seconds)),
      perSecond: mid(found.map((r) => r.perSecond)),
      bytes: found[0]!.bytes,
      latency: summary((row) => pick(row)?.latency)!,
      byGroup: Object.fromEntries(groups.map((group) => [group, summary((row) => pick(row)?.byGroup[group])!])),
    };
  };
  const firstViews = rows.flatMap((r) => (r.firstView === undefined ? [] : [r.firstView]));
  return {
    name: rows[0]!.name,
    grid: rows[0]!.grid,
    fresh: result((row) => row.fresh),
    cold: result((row) => row.cold)!,
    warm: result((row) => row.warm),
    firstView: firstViews.length > 0 ? mid(firstViews) : undefined,
    peakRssMiB: mid(rows.map((r) => r.peakRssMiB)),
  };
}

/** The slide in a fresh catalog, and a viewer's (L1) bearer token: the tile routes need a logged-in viewer. */
async function register(databaseUrl: string, file: string, warmUpFile: string): Promise<{ slideId: number; warmUpId: number; headers: Record<string, string> }> {
  const db = openDatabase(parseDatabaseUrl(databaseUrl, process.cwd()));
  try {
    await migrateToLatest(db);
    const slides = new SlidesRepository(db.knex);
    const record = await slides.create({ name: path.basename(file), filePath: file, sha256: null, ...(await readSlideFacts(file)) });
    const warmUp = await slides.create({ name: path.basename(warmUpFile), filePath: warmUpFile, sha256: null, ...(await readSlideFacts(warmUpFile)) });
    const now = new Date();
    const viewer = await new UsersRepository(db.knex).create({ email: 'bench@slidebank.local', passwordHash: null, level: 'L1', levelExpiresAt: null, roles: [], emailConfirmedAt: now }, now);
    const token = `sbk_${newSecret()}`;
    await new AccessTokensRepository(db.knex).create({ userId: viewer.id, name: 'bench', prefix: token.slice(0, 12), tokenHash: sha256Hex(token), scope: 'read', expiresAt: null }, now);
    return { slideId: record.id, warmUpId: warmUp.id, headers: { authorization: `Bearer ${token}` } };
  } finally {
    await db.close();
  }
}

/** A deterministic random set of distinct tiles: a level drawn uniformly, then a tile in it. */
/** The benchmark's random tile set: `REQUESTS` distinct tiles. */
function tileTargets(deepZoom: DeepZoom, slide: Slide, url: (level: number, col: number, row: number) => string): LoadTarget[] {
  return randomTileTargets(deepZoom, slide, url, REQUESTS);
}

async function openslideServer(slideFile: string, slide: Slide): Promise<Row | undefined> {
  if (!existsSync(DEEPZOOM_SERVER)) {
    console.log(`(OpenSlide's deepzoom_server.py is not installed: apt-get install python-openslide-examples python3-flask for the ratio)`);
    return undefined;
  }
  const port = await freePort();
  const server = spawn('/usr/bin/python3', [DEEPZOOM_SERVER, '-B', '-Q', '80', '-l', '127.0.0.1', '-p', String(port), slideFile], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  try {
    await waitFor(`http://127.0.0.1:${port}/slide.dzi`, server);
    const deepZoom = new DeepZoom(slide, OPENSLIDE_GRID);
    const targets = tileTargets(deepZoom, slide, (l, c, r) => `http://127.0.0.1:${port}/slide_files/${l}/${c}_${r}.jpeg`);
    const cold = await runLoad(targets, CONCURRENCY);
    return { name: 'OpenSlide deepzoom_server.py', grid: OPENSLIDE_GRID, cold, peakRssMiB: peakRss(server) };
  } finally {
    await stop(server);
  }
}

function report(rows: Row[], rounds: Row[][]): void {
  const ms = (v: number) => v.toFixed(1).padStart(7);
  console.log(
    `\ntiles: ${WIDTH}×${HEIGHT} generated slide, ${REQUESTS} distinct random tiles over all Deep Zoom levels, concurrency ${CONCURRENCY}, ${os.cpus().length} cores; each figure the median of ${ROUNDS} rounds`,
  );
  const unavailable = scaledJpegUnavailable();
  if (unavailable) console.log(`NOTE: scaled JPEG decoding is not available, so the first two Slidebank rows measure the same thing: ${unavailable}`);
  console.log(`${'server'.padEnd(38)} grid     run    tiles/s   p50 ms  p99 ms  p99 native  p99 resampled  p99 overview  errors  peak RSS MiB`);
  for (const row of rows) {
    for (const [run, result] of [['fresh', row.fresh], ['cold', row.cold], ['warm', row.warm]] as const) {
      if (!result) continue;
      const g = result.byGroup;
      console.log(
        `${row.name.padEnd(38)} ${`${row.grid.tileSize}/${row.grid.overlap}`.padEnd(8)} ${run.padEnd(5)} ${result.perSecond.toFixed(0).padStart(8)} ${ms(result.latency.p50)} ${ms(result.latency.p99)} ${ms(g.native?.p99 ?? 0).padStart(11)} ${ms(g.resampled?.p99 ?? 0).padStart(14)} ${ms(g.overview?.p99 ?? 0).padStart(13)} ${String(result.errors).padStart(7)} ${row.peakRssMiB.toFixed(0).padStart(13)}`,
      );
    }
  }
  const reference = rows.find((r) => r.name.startsWith('OpenSlide'));
  if (reference) {
    for (const row of rows.filter((r) => r !== reference)) {
      const each = rounds.map((round) => {
        const mine = round.find((r) => r.name === row.name)!;
        const theirs = round.find((r) => r.name === reference.name)!;
        return (mine.cold.perSecond / theirs.cold.perSecond).toFixed(1);
      });
      console.log(`ratio ${row.name} / OpenSlide, cold tiles/s: ${(row.cold.perSecond / reference.cold.perSecond).toFixed(1)}× (rounds: ${each.join(', ')})`);
      if (row.fresh) console.log(`ratio ${row.name} / OpenSlide, fresh process against OpenSlide cold: ${(row.fresh.perSecond / reference.cold.perSecond).toFixed(1)}×`);
    }
  }
  console.log('(native: Deep Zoom levels a stored level serves as is; resampled: levels between stored levels; overview: levels of at most four tiles; p99 of the requests of each kind)');
  console.log(`(Slidebank fresh: a new process, caches empty; cold: a process that first served ${WARM_UP_REQUESTS} tiles of another slide, this slide neither open nor cached; warm: the same tiles again)`);
  for (const row of rows.filter((r) => r.firstView !== undefined)) {
    console.log(`${row.name}: opening the slide on a fresh idle server, the slowest overview tile took ${row.firstView!.toFixed(1)} ms`);
  }
}

const VIEWER_PATHS = 'slidebank (native grid), viewer paths';
const VIEWER_EMAIL = 'viewer-paths@slidebank.local';
const VIEWER_PASSWORD = 'a long bench password of the viewer paths';

interface ViewerPaths {
  /** Warm tiles with the session cookie alone: the session and the user are read from the database for each. */
  session: LoadResult[];
  /** The same warm tiles with the slide's tile capability in their URLs (and the cookie, as a browser sends it). */
  capability: LoadResult[];
  /** The server's main-thread CPU time per tile in each run, in µs: what bounds its tiles/s, whatever else the machine runs. */
  sessionCpu: number[];
  capabilityCpu: number[];
  /** Cold tiles with the capability, each run on a new process warmed up on another slide (as the cold runs above). */
  coldCapability: LoadResult[];
  coldCapabilityCpu: number[];
  loadBefore: number[];
  loadAfter: number[];
}

/** A logged-in viewer on a running server: the session cookie, and a tile URL maker with the slide's capability. */
interface ViewerSession {
  cookie: string;
  capable(slideId: number): Promise<(level: number, col: number, row: number) => string>;
}

/** Log in as the portal does (an anonymous CSRF token, its cookie and header, then the login). */
async function logInAsViewer(base: string): Promise<ViewerSession> {
  const csrf = await fetch(`${base}/api/auth/csrf`);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const login = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: base, 'x-csrf-token': csrfToken, cookie: csrf.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ') },
    body: JSON.stringify({ email: VIEWER_EMAIL, password: VIEWER_PASSWORD }),
  });
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]!).filter((c) => c.startsWith('slidebank.sid')).join('; ');
  if (!login.ok || cookie === '') throw new Error(`viewer paths: login answered ${login.status}: ${await login.text()}`);
  return {
    cookie,
    async capable(slideId) {
      const answer = await fetch(`${base}/api/slides/${slideId}/tile-capability`, { headers: { cookie } });
      if (!answer.ok) throw new Error(`viewer paths: the tile capability answered ${answer.status}: ${await answer.text()}`);
      const { capability, parameter } = (await answer.json()) as { capability: string; parameter: string };
      return (l, c, r) => `${base}/tiles/${slideId}_files/${l}/${c}_${r}.jpeg?${parameter}=${encodeURIComponent(capability)}`;
    },
  };
}

/**
 * Tiles the way the portal's viewer asks for them (default configuration, no
 * toolbox worker). Warm: on one server an L1 account logs in through the
 * API, the load runs once to warm the caches, then the same tiles run with
 * the session cookie alone and with the tile capability the viewer gets from
 * GET /api/slides/{id}/tile-capability, alternately, ROUNDS times each, so
 * that a noisy neighbour weighs on both alike. Cold: ROUNDS new servers, each
 * first serving WARM_UP_REQUESTS tiles of another slide, then the load on the
 * measured slide with its capability.
 */
async function viewerPaths(setup: BenchSetup): Promise<ViewerPaths> {
  const { slide, slideId, warmUpSlide, warmUpId, databaseUrl, work } = setup;
  await promisify(execFile)(process.execPath, [path.join(packageRoot, 'bin', 'slidebank.js'), 'user', 'add', '--email', VIEWER_EMAIL, '--password', VIEWER_PASSWORD, '--level', 'L1'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, SLIDEBANK_PATHS_DATA: work, SLIDEBANK_LOG_LEVEL: 'warn' },
  });
  const deepZoom = new DeepZoom(slide, DeepZoom.nativeGrid(slide) ?? OPENSLIDE_GRID);
  const loadBefore = os.loadavg();
  const viewerServer = <T>(run: (base: string, server: ChildProcess) => Promise<T>) =>
    withSlidebank('native', true, databaseUrl, work, run, { SLIDEBANK_QUEUE_WORKERS: '0' });
  const coldCapability: LoadResult[] = [];
  const coldCapabilityCpu: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await viewerServer(async (base, server) => {
      const viewer = await logInAsViewer(base);
      const headers = { cookie: viewer.cookie };
      const warmUp = await runLoad(
        randomTileTargets(new DeepZoom(warmUpSlide, DeepZoom.nativeGrid(warmUpSlide) ?? OPENSLIDE_GRID), warmUpSlide, await viewer.capable(warmUpId), WARM_UP_REQUESTS),
        CONCURRENCY,
        headers,
      );
      const cold = await measuredLoad(server, tileTargets(deepZoom, slide, await viewer.capable(slideId)), headers);
      coldCapability.push(cold.result);
      coldCapabilityCpu.push(cold.mainThreadUs);
      if (warmUp.errors + cold.result.errors > 0) throw new Error(`viewer paths, cold: ${warmUp.errors + cold.result.errors} tile requests failed; the figures would be wrong`);
    });
  }
  const measured = await viewerServer(async (base, server) => {
    const viewer = await logInAsViewer(base);
    const url = (l: number, c: number, r: number) => `${base}/tiles/${slideId}_files/${l}/${c}_${r}.jpeg`;
    const session = tileTargets(deepZoom, slide, url);
    const capable = tileTargets(deepZoom, slide, await viewer.capable(slideId));
    const headers = { cookie: viewer.cookie };
    const warmUp = await runLoad(session, CONCURRENCY, headers);
    const result: Pick<ViewerPaths, 'session' | 'capability' | 'sessionCpu' | 'capabilityCpu'> = { session: [], capability: [], sessionCpu: [], capabilityCpu: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const bySession = await measuredLoad(server, session, headers);
      result.session.push(bySession.result);
      result.sessionCpu.push(bySession.mainThreadUs);
      const byCapability = await measuredLoad(server, capable, headers);
      result.capability.push(byCapability.result);
      result.capabilityCpu.push(byCapability.mainThreadUs);
    }
    const errors = [warmUp, ...result.session, ...result.capability].reduce((sum, r) => sum + r.errors, 0);
    if (errors > 0) throw new Error(`viewer paths: ${errors} tile requests failed; the figures would be wrong`);
    return result;
  });
  return { ...measured, coldCapability, coldCapabilityCpu, loadBefore, loadAfter: os.loadavg() };
}

/** A load on a server, and the server's main-thread CPU time per request over it, in µs. */
async function measuredLoad(server: ChildProcess, targets: LoadTarget[], headers: Record<string, string>): Promise<{ result: LoadResult; mainThreadUs: number }> {
  const before = mainThreadNs(server);
  const result = await runLoad(targets, CONCURRENCY, headers);
  return { result, mainThreadUs: (mainThreadNs(server) - before) / 1000 / targets.length };
}

/** CPU time the process's main thread (the event loop: HTTP, middleware, routes) has run, in ns (schedstat, Linux). */
function mainThreadNs(child: ChildProcess): number {
  return Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/schedstat`, 'utf8').split(' ')[0]);
}

function reportViewerPaths(paths: ViewerPaths, openslideCold: LoadResult | undefined): void {
  const { session, capability, sessionCpu, capabilityCpu, coldCapability, coldCapabilityCpu, loadBefore, loadAfter } = paths;
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(
    `\ntiles, viewer paths: the same ${REQUESTS} random tiles at concurrency ${CONCURRENCY}, logged in with a session cookie (no toolbox worker). Warm: alternately without and with the slide's tile capability, median of ${ROUNDS} runs each. Cold: with the capability, each run a new server that first served ${WARM_UP_REQUESTS} tiles of another slide. Load average before ${load(loadBefore)}, after ${load(loadAfter)}`,
  );
  console.log(`${'path'.padEnd(44)} tiles/s   p50 ms  p99 ms  main-thread µs/tile   (each run: tiles/s)`);
  for (const [name, runs, cpu] of [
    ['session cookie, warm', session, sessionCpu],
    ['tile capability (?cap=, as the viewer), warm', capability, capabilityCpu],
    ['tile capability, cold', coldCapability, coldCapabilityCpu],
  ] as const) {
    console.log(
      `${name.padEnd(44)} ${mid(runs.map((r) => r.perSecond)).toFixed(0).padStart(7)} ${mid(runs.map((r) => r.latency.p50)).toFixed(1).padStart(7)} ${mid(runs.map((r) => r.latency.p99)).toFixed(1).padStart(7)} ${mid(cpu).toFixed(0).padStart(20)}   (${runs.map((r) => r.perSecond.toFixed(0)).join(', ')})`,
    );
  }
  console.log(`(main-thread µs/tile: the server's event loop's CPU time over the run divided by its tiles; 1,000,000 / it is the most tiles/s one core can answer, whatever else the machine runs)`);
  console.log(`ratio capability / session cookie, warm tiles/s: ${(mid(capability.map((r) => r.perSecond)) / mid(session.map((r) => r.perSecond))).toFixed(2)}×`);
  if (openslideCold) console.log(`ratio capability cold / OpenSlide deepzoom_server.py cold, tiles/s: ${(mid(coldCapability.map((r) => r.perSecond)) / openslideCold.perSecond).toFixed(1)}×`);
}
