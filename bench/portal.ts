import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { hashPassword } from '../server/access/password.js';
import { UsersRepository } from '../server/access/users.repository.js';
import { readSlideFacts } from '../server/catalog/slide-facts.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { THUMBNAIL_SIZES, thumbnailPath, writeThumbnails, type ThumbnailSize } from '../server/catalog/thumbnails.js';
import { loadConfig, type Config } from '../server/config/index.js';
import { migrateToLatest, openDatabase, type Database } from '../server/db/index.js';
import { createApp } from '../server/http/app.js';
import { loadVocabulary } from '../server/catalog/vocabulary.js';
import { createLogger } from '../server/logging.js';
import { packageRoot } from '../server/package-info.js';
import { createServices, type Services } from '../server/services.js';
import { makeSlide } from '../server/wsi/generate/index.js';

const SLIDES = 3000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const VIEWER_RUNS = 5;
const VIEWPORT = { width: 1440, height: 900 };
const PASSWORD = 'benchmark password of the portal 1';
const CHROMIUM = '/usr/bin/chromium';
/** The viewer's slide: generated once and kept in var/bench (big enough to need several levels, small enough to make in seconds). */
const VIEWER_SLIDE = { width: 24_000, height: 16_000, seed: 3 };

/**
 * The portal benchmark (docs/benchmarks.md, "Portal"):
 * - catalog filters over 3,000 published slides (rows only) on SQLite, through
 *   the real application in this process: server time is measured from the
 *   request's arrival to the response's last byte, beside the client's round trip;
 * - the catalog's first page in chromium on loopback: from navigation to the
 *   first card, and until every thumbnail of the page is loaded and decoded;
 * - a slide page's first full screen in chromium on loopback: from navigation
 *   to the descriptor, to the last tile of the first view, and until the
 *   viewer has drawn it;
 * - the production bundle (web/dist): the gzip size of each script and style,
 *   and of what the first page load fetches.
 * Figures only; nothing is asserted.
 */
export async function portalBenchmark(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-portal-'));
  try {
    const portal = await startPortal(work);
    try {
      await catalogFilters(portal);
      await firstFullScreen(portal);
    } finally {
      await portal.close();
    }
    await bundleSizes();
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface Portal {
  base: string;
  db: Database;
  config: Config;
  services: Services;
  /** Server time of each request, by the `x-bench-id` header it carried. */
  serverMs: Map<string, number>;
  close(): Promise<void>;
}

async function startPortal(work: string): Promise<Portal> {
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: {
      DATABASE_URL: `sqlite:${path.join(work, 'bench.sqlite')}`,
      SLIDEBANK_PATHS_DATA: work,
      SLIDEBANK_AUTH_SESSION_SECRET: 'benchmark-session-secret-of-at-least-32-characters',
      SLIDEBANK_MAIL_PUBLIC_URL: 'http://127.0.0.1',
      PORT: '0',
    },
  });
  const db = openDatabase(config.database.target);
  await migrateToLatest(db);
  const t0 = performance.now();
  await seedCatalog(db, config);
  console.log(`portal: seeded ${SLIDES} catalog rows in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const now = new Date();
  await new UsersRepository(db.knex).create(
    { email: 'bench@slidebank.local', name: 'Bench', passwordHash: await hashPassword(PASSWORD), level: 'L1', levelExpiresAt: null, roles: [], emailConfirmedAt: now },
    now,
  );

  const log = createLogger('warn');
  const services = createServices(config, db, log);
  const app = createApp({ config, log, db, services });
  const serverMs = new Map<string, number>();
  const handle = app.callback();
  const server = http.createServer((req, res) => {
    const started = performance.now();
    const id = req.headers['x-bench-id'];
    if (typeof id === 'string') res.on('finish', () => serverMs.set(id, performance.now() - started));
    void handle(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    db,
    config,
    services,
    serverMs,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await services.close();
      await db.close();
    },
  };
}

/** 3,000 published rows with vocabulary codes drawn by a fixed sequence (the files do not exist: only the catalog is read). */
async function seedCatalog(db: Database, config: Config): Promise<void> {
  const vocabulary = loadVocabulary(config.ingest.vocabularies);
  let state = 12345;
  const pick = <T>(list: readonly T[]): T => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    return list[state % list.length]!;
  };
  const start = Date.UTC(2024, 0, 1);
  await db.knex.transaction(async (trx) => {
    const slides = new SlidesRepository(trx);
    for (let i = 0; i < SLIDES; i++) {
      const organ = pick(vocabulary.organs);
      const stain = pick(vocabulary.stains);
      const name = `SB1-${organ.code}-${String(i).padStart(5, '0')}`;
      await slides.create(
        { name, filePath: `catalog/${name}.svs`, fileSize: 50_000_000 + i * 1000, sha256: null, vendor: 'aperio', width: 60_000, height: 40_000, levelCount: 4, mppX: 0.25, mppY: 0.25, objectivePower: 40 },
        new Date(start + i * 3_600_000),
        {
          metadata: {
            organ: organ.code,
            histology: pick(organ.histologies).code,
            stain: stain.code,
            marker: stain.requiresMarker && vocabulary.markers.length > 0 ? pick(vocabulary.markers).code : null,
            differentiation: vocabulary.differentiations.length > 0 ? pick(vocabulary.differentiations).code : null,
            pathologyInfo: i % 7 === 0 ? 'lymph node metastasis' : null,
            annotationMethod: vocabulary.annotationMethods.length > 0 ? pick(vocabulary.annotationMethods).code : null,
            dataset: pick(['TCGA-like', 'hospital-2024', 'hospital-2025']),
          },
          originalSha256: `${i}`.padStart(64, '0'),
          annotationPath: null,
          annotationSummary: null,
        },
      );
    }
  });
}

async function benchViewerSlide(): Promise<string> {
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `portal-${VIEWER_SLIDE.width}x${VIEWER_SLIDE.height}-seed${VIEWER_SLIDE.seed}`;
  const file = path.join(dir, `${name}.svs`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${VIEWER_SLIDE.width}×${VIEWER_SLIDE.height} slide (once; kept in ${dir}) … `);
  const t0 = performance.now();
  await makeSlide({ ...VIEWER_SLIDE, out: dir, name });
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB\n`);
  return file;
}

/** A logged-in session cookie, as the browser holds it (the login, like every anonymous write to /api/auth, carries the anonymous CSRF token). */
async function sessionCookie(base: string): Promise<string> {
  const csrf = await fetch(`${base}/api/auth/csrf`);
  const { csrfToken } = (await csrf.json()) as { csrfToken: string };
  const response = await fetch(`${base}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', cookie: csrf.headers.getSetCookie().map((line) => line.split(';')[0]).join('; '), 'x-csrf-token': csrfToken },
    body: JSON.stringify({ email: 'bench@slidebank.local', password: PASSWORD }),
  });
  if (!response.ok) throw new Error(`login answered ${response.status}`);
  return response.headers.getSetCookie().map((line) => line.split(';')[0]).join('; ');
}

async function catalogFilters(portal: Portal): Promise<void> {
  const vocabulary = loadVocabulary(portal.config.ingest.vocabularies);
  const [first, second] = vocabulary.organs;
  const cookie = await sessionCookie(portal.base);
  const queries: [string, string][] = [
    ['no filter (first page, newest first)', ''],
    ['one organ', `organ=${first!.code}`],
    ['two organs and a histology', `organ=${first!.code},${second!.code}&histology=${first!.histologies[0]!.code}`],
    ['organ, stain, dataset; sorted by size', `organ=${first!.code}&stain=${vocabulary.stains[0]!.code}&dataset=hospital-2024&sort=-size`],
    ['text search', 'q=metastasis'],
    ['page 40 of 24', 'page=40'],
    ['a filter with no results', `organ=${first!.code}&dataset=nowhere`],
  ];
  // Warm up the connection pool and SQLite's page cache, as a running server has them.
  for (const [, query] of queries) await (await fetch(`${portal.base}/api/slides?${query}`, { headers: { cookie } })).arrayBuffer();

  console.log(`\nportal: catalog filters over ${SLIDES} slides on SQLite, ${ROUNDS} requests each, one at a time (GET /api/slides with its facet counts); ${load()}`);
  console.log('query                                        total   server p50  server p95   round trip p50');
  const all: number[] = [];
  let n = 0;
  for (const [label, query] of queries) {
    const server: number[] = [];
    const client: number[] = [];
    let total = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const id = String(++n);
      const t0 = performance.now();
      const response = await fetch(`${portal.base}/api/slides?${query}`, { headers: { cookie, 'x-bench-id': id } });
      const body = (await response.json()) as { total: number };
      client.push(performance.now() - t0);
      if (!response.ok) throw new Error(`${label}: answered ${response.status}`);
      total = body.total;
      // 'finish' has fired by the time the body has arrived, or within the same turn.
      await new Promise((resolve) => setImmediate(resolve));
      server.push(portal.serverMs.get(id) ?? NaN);
    }
    all.push(...server);
    console.log(`${label.padEnd(44)} ${String(total).padStart(5)} ${ms(percentile(server, 50))} ${ms(percentile(server, 95))} ${ms(percentile(client, 50))}`);
  }
  console.log(`${'all'.padEnd(44)} ${''.padStart(5)} ${ms(percentile(all, 50))} ${ms(percentile(all, 95))}`);
}

/**
 * A slide page opened in a fresh browser context (nothing cached in the
 * browser; the server's tile cache is warm after the first run): from the
 * navigation's start to the descriptor's arrival, and to the viewer's "all
 * visible tiles loaded" (Leaflet's `load` on the slide layer).
 */
async function firstFullScreen(portal: Portal): Promise<void> {
  if (!existsSync(CHROMIUM)) {
    console.log(`\nportal: ${CHROMIUM} is missing (apt-get install chromium): no first-screen figures`);
    return;
  }
  if (!existsSync(path.join(packageRoot, 'web', 'dist', 'index.html'))) {
    console.log('\nportal: web/dist is missing (npm run build:web): no first-screen figures');
    return;
  }
  // Registered now, so that the catalog figures above are over exactly SLIDES rows.
  const file = await benchViewerSlide();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
  const cookie = await sessionCookie(portal.base);
  const cookies = cookie.split('; ').map((pair) => {
    const [n, ...v] = pair.split('=');
    return { name: n!, value: v.join('='), url: portal.base };
  });
  try {
    await catalogThumbnails(portal, file, cookie, async () => {
      const context = await browser.newContext({ viewport: VIEWPORT });
      await context.addCookies(cookies);
      return context;
    });
  } catch (error) {
    await browser.close();
    throw error;
  }
  const slide = await new SlidesRepository(portal.db.knex).create({ name: 'BENCH-VIEWER', filePath: file, sha256: null, ...(await readSlideFacts(file)) });
  console.log(`\nportal: a slide page's first full screen in chromium on loopback, viewport ${VIEWPORT.width}×${VIEWPORT.height}, ${VIEWER_SLIDE.width}×${VIEWER_SLIDE.height} generated slide; ${load()}`);
  console.log('(ms from the navigation\'s start to the last byte of: the slide\'s metadata, the viewer\'s script, the descriptor, the last tile of the view; then until the viewer has drawn every tile of the view)');
  console.log('run            metadata   viewer script   descriptor   first screen        drawn   tiles');
  try {
    for (let run = 1; run <= VIEWER_RUNS; run++) {
      const context = await browser.newContext({ viewport: VIEWPORT });
      await context.addCookies(cookies);
      const page = await context.newPage();
      await page.goto(`${portal.base}/slides/${slide.id}`);
      const drawn = (await (await page.waitForFunction(viewerReady, undefined, { timeout: 60_000 })).jsonValue()) as number;
      const figures = await page.evaluate(timings);
      console.log(
        `${(run === 1 ? 'cold server' : `warm ${run}`).padEnd(12)} ${ms(figures.metadata)} ${ms(figures.viewerScript).padStart(15)} ${ms(figures.descriptor).padStart(12)} ${ms(figures.screen).padStart(14)} ${ms(drawn).padStart(12)} ${String(figures.tiles).padStart(7)}`,
      );
      await context.close();
    }
  } finally {
    await browser.close();
  }
}

/**
 * The catalog's first page (newest first, as a visitor lands on it) in a
 * fresh browser context: from the navigation's start to the first card, and
 * until every thumbnail of the page has loaded and decoded. The page's slides
 * get real thumbnails (those of the viewer's slide); the rest of the catalog
 * has none and is not shown.
 */
async function catalogThumbnails(portal: Portal, file: string, cookie: string, newContext: () => Promise<import('playwright-core').BrowserContext>): Promise<void> {
  const page1 = (await (await fetch(`${portal.base}/api/slides`, { headers: { cookie } })).json()) as { items: { id: number }[] };
  const ids = page1.items.map((item) => item.id);
  const folder = portal.config.paths.thumbnails;
  await writeThumbnails(file, folder, ids[0]!);
  for (const id of ids.slice(1)) {
    for (const size of Object.keys(THUMBNAIL_SIZES) as ThumbnailSize[]) await copyFile(thumbnailPath(folder, ids[0]!, size), thumbnailPath(folder, id, size));
  }
  console.log(`\nportal: the catalog's first page in chromium on loopback, viewport ${VIEWPORT.width}×${VIEWPORT.height}, ${ids.length} cards of ${SLIDES} slides, each with its thumbnail; ${load()}`);
  console.log('(ms from the navigation\'s start until: the first card is shown, every thumbnail of the page is loaded and decoded)');
  console.log('run             first card   thumbnails   images');
  for (let run = 1; run <= VIEWER_RUNS; run++) {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${portal.base}/catalog`);
    const card = (await (await page.waitForFunction(firstCard, undefined, { timeout: 60_000 })).jsonValue()) as number;
    const loaded = (await (await page.waitForFunction(thumbnailsLoaded, ids.length, { timeout: 60_000 })).jsonValue()) as number;
    console.log(`${(run === 1 ? 'cold server' : `warm ${run}`).padEnd(12)} ${ms(card).padStart(13)} ${ms(loaded).padStart(12)} ${String(ids.length).padStart(8)}`);
    await context.close();
  }
}

interface ImageElement {
  complete: boolean;
  naturalWidth: number;
}

/** What the page functions below read of the browser, typed here: the benchmarks compile without the DOM's types. */
interface BrowserGlobals {
  document: {
    querySelector(selector: string): { dataset: Record<string, string | undefined> } | null;
    querySelectorAll(selector: string): ArrayLike<ImageElement>;
  };
  performance: { now(): number; getEntriesByType(type: 'resource'): { name: string; responseEnd: number }[] };
}

/** When the catalog shows its first card: the time since the navigation's start, or false. */
function firstCard(): number | false {
  const { document, performance } = globalThis as unknown as BrowserGlobals;
  return document.querySelector('.grid .card') !== null && performance.now();
}

/** When all `count` thumbnails of the grid are loaded and decoded: the time since the navigation's start, or false. */
function thumbnailsLoaded(count: number): number | false {
  const { document, performance } = globalThis as unknown as BrowserGlobals;
  const images = Array.from(document.querySelectorAll('.grid .card .thumb img'));
  return images.length === count && images.every((img) => img.complete && img.naturalWidth > 0) && performance.now();
}

/** When the slide layer has drawn every tile of the view (Leaflet's `load` ends the viewer's loading notice): the time since the navigation's start, or false. */
function viewerReady(): number | false {
  const { document, performance } = globalThis as unknown as BrowserGlobals;
  return Number(document.querySelector('[data-testid=viewer]')?.dataset.tilesLoaded ?? 0) > 0 && document.querySelector('.viewer-loading') === null && performance.now();
}

/** From the navigation's start: the descriptor's last byte, the last slide tile's last byte, and how many tiles. */
function timings(): { metadata: number; viewerScript: number; descriptor: number; screen: number; tiles: number } {
  const { performance } = globalThis as unknown as BrowserGlobals;
  const resources = performance.getEntriesByType('resource');
  const descriptor = resources.find((r) => r.name.endsWith('.dzi') && !r.name.includes('/overlays/'));
  const tiles = resources.filter((r) => /_files\/\d+\/\d+_\d+\.\w+$/.test(r.name) && !r.name.includes('/overlays/'));
  const metadata = resources.find((r) => /\/api\/slides\/\d+$/.test(r.name));
  const viewerScript = resources.find((r) => /\/assets\/SlideViewer-[^/]+\.js$/.test(r.name));
  return {
    metadata: metadata ? metadata.responseEnd : NaN,
    viewerScript: viewerScript ? viewerScript.responseEnd : NaN,
    descriptor: descriptor ? descriptor.responseEnd : NaN,
    screen: Math.max(...tiles.map((r) => r.responseEnd)), tiles: tiles.length };
}

/** Each built script and style gzip-compressed (level 9), and the set index.html loads first. */
async function bundleSizes(): Promise<void> {
  const dist = path.join(packageRoot, 'web', 'dist');
  if (!existsSync(path.join(dist, 'index.html'))) {
    console.log('\nportal: web/dist is missing (npm run build:web): no bundle figures');
    return;
  }
  const assets = (await readdir(path.join(dist, 'assets'))).filter((f) => /\.(js|css)$/.test(f)).sort();
  const sizes = new Map<string, { raw: number; gzip: number }>();
  for (const file of assets) {
    const data = await readFile(path.join(dist, 'assets', file));
    sizes.set(file, { raw: data.length, gzip: gzipSync(data, { level: 9 }).length });
  }
  const html = await readFile(path.join(dist, 'index.html'), 'utf8');
  const first = [...html.matchAll(/(?:src|href)="\/assets\/([^"]+\.(?:js|css))"/g)].map((m) => m[1]!);
  const sum = (files: string[], key: 'raw' | 'gzip') => files.reduce((s, f) => s + (sizes.get(f)?.[key] ?? 0), 0);
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`.padStart(11);
  console.log(`\nportal: production bundle (web/dist), ${assets.length} files`);
  console.log('file                                                  size        gzip');
  for (const [file, size] of [...sizes].sort((a, b) => b[1].gzip - a[1].gzip)) console.log(`${file.padEnd(50)} ${kb(size.raw)} ${kb(size.gzip)}`);
  for (const ext of ['js', 'css']) {
    const files = assets.filter((f) => f.endsWith(`.${ext}`));
    console.log(`all ${ext.padEnd(46)} ${kb(sum(files, 'raw'))} ${kb(sum(files, 'gzip'))}`);
  }
  console.log(`first load (what index.html names: ${first.join(', ')}) ${kb(sum(first, 'raw'))} ${kb(sum(first, 'gzip'))}`);
}

/** The machine's state, for reading the figures: shared machines make them noisy. */
function load(): string {
  return `${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)}`;
}

function percentile(values: number[], p: number): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`.padStart(11);
}
