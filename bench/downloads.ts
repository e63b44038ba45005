import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { evict } from './page-cache.js';
import { bodyParser } from '@koa/bodyparser';
import Koa, { type Middleware } from 'koa';
import type { AuditEvent, AuditLog } from '../server/audit/audit-log.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { loadConfig } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { createDownloadsService } from '../server/downloads/index.js';
import { errorHandler } from '../server/http/middleware/error-handler.js';
import { sha256File } from '../server/lib/hashing.js';
import { downloadRoutes } from '../server/http/routes/downloads.js';
import { mountRoutes } from '../server/http/route.js';
import { listen } from '../server/http/server.js';
import { createLogger } from '../server/logging.js';
import { packageRoot } from '../server/package-info.js';
import { createCatalogService, type Services } from '../server/services.js';
import { benchSlide, HEIGHT, WIDTH } from './slide.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const run = promisify(execFile);

/** Entries of the large archive: copies of the bench slide, ~2 GiB together. */
const LARGE_COPIES = 14;

interface Measured {
  bytes: number;
  seconds: number;
}

/**
 * The downloads benchmark, over loopback with curl as the client (a process
 * of its own, as a researcher's would be): one slide file, and a ZIP bundle
 * of four copies of it, each next to reading the same bytes from disk in the
 * same run (Node read stream into a sink), once with the files evicted from
 * the page cache (what a 1–2 TB store mostly is) and once warm; then the
 * peak RSS of this server process while it streams a ~2 GiB ZIP.
 *
 * The slide is the benchmarks' generated 60000×40000 SVS (bench/slide.ts,
 * ~154 MiB), smaller than many real scans: the same generator at their size
 * takes minutes to make, and throughput per byte does not depend on it.
 * The server is the real download routes and service on SQLite, behind a
 * pass-through guard in place of the accounts middleware.
 */
export async function downloadsBenchmark(): Promise<void> {
  const slide = await benchSlide();
  const xml = slide.replace(/\.svs$/, '.xml');
  const size = (await stat(slide)).size;
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-downloads-'));
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env: { SLIDEBANK_PATHS_DATA: path.join(work, 'var') } });
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await migrateToLatest(db);
    const sha256 = await sha256File(slide);
    // Four copies of their own, so that the cold-cache runs read four files from disk; the large archive repeats the first.
    const copies: string[] = [];
    for (let i = 0; i < 4; i++) {
      const copy = path.join(work, `copy-${i}.svs`);
      await copyFile(slide, copy);
      copies.push(copy);
    }
    const slides = new SlidesRepository(db.knex);
    const ids: number[] = [];
    for (let i = 0; i < LARGE_COPIES; i++) {
      const created = await slides.create(
        { name: `SB1-LV-HCC-HE-MD-00-00-BENCH${String(i).padStart(5, '0')}`, filePath: copies[i] ?? copies[0]!, fileSize: size, sha256, vendor: 'aperio', width: WIDTH, height: HEIGHT, levelCount: 4, mppX: 0.499, mppY: 0.499, objectivePower: 20 },
        new Date(),
        {
          metadata: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'bench' },
          originalSha256: `${sha256.slice(0, 58)}${String(i).padStart(6, '0')}`,
          annotationPath: xml,
          annotationSummary: null,
        },
      );
      ids.push(created.id);
    }
    const audit: AuditLog & { events: AuditEvent[] } = { events: [], record: async (event) => void audit.events.push(event) };
    const downloads = createDownloadsService(
      { ...config, downloads: { ...config.downloads, concurrentPerUser: 0, maxBundleBytes: 0 } },
      db,
      log,
      { catalog: createCatalogService(config, db), audit },
    );
    /** In place of the accounts middleware: everyone is user 1 at L2. */
    const everyoneL2: Middleware = (ctx, next) => {
      ctx.state.requester = { user: { id: 1 }, level: 'L2', roles: [], via: 'token' };
      return next();
    };
    const app = new Koa();
    app.silent = true;
    app.use(errorHandler());
    app.use(bodyParser({ enableTypes: ['json'] }));
    app.context.services = { downloads } as unknown as Services;
    app.use(everyoneL2);
    const router = mountRoutes(downloadRoutes, { operatorAddress: () => false });
    app.use(router.routes());
    const server = await listen(app, { port: 0, host: '127.0.0.1', log });
    try {
      const fileUrl = `${server.url}/api/slides/${ids[0]}/files/slide`;
      const four = JSON.stringify({ slides: ids.slice(0, 4) });
      const rounds: { disk1: Measured; http1: Measured; disk4: Measured; zip4: Measured }[] = [];
      const cold: typeof rounds = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Cold: each file's pages dropped from the page cache first (dd iflag=nocache, this file only).
        await evict(copies);
        const disk1 = await readFromDisk(copies.slice(0, 1));
        await evict(copies);
        const http1 = await curl(fileUrl);
        await evict(copies);
        const disk4 = await readFromDisk(copies);
        await evict(copies);
        const zip4 = await curl(`${server.url}/api/downloads`, four);
        cold.push({ disk1, http1, disk4, zip4 });
      }
      await readFromDisk(copies); // warm the page cache
      for (let round = 0; round < ROUNDS; round++) {
        const disk1 = await readFromDisk(copies.slice(0, 1));
        const http1 = await curl(fileUrl);
        const disk4 = await readFromDisk(copies);
        const zip4 = await curl(`${server.url}/api/downloads`, four);
        if (http1.bytes !== size) throw new Error(`the file download sent ${http1.bytes} bytes, not ${size}`);
        rounds.push({ disk1, http1, disk4, zip4 });
        console.log(`round ${round + 1}/${ROUNDS}: file ${mbps(http1).toFixed(0)} MB/s (disk ${mbps(disk1).toFixed(0)}), zip of 4 ${mbps(zip4).toFixed(0)} MB/s (disk ${mbps(disk4).toFixed(0)})`);
      }

      // The large archive, with this process's RSS sampled while it streams.
      global.gc?.();
      const baseline = process.memoryUsage().rss;
      let peak = baseline;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
      const large = await curl(`${server.url}/api/downloads`, JSON.stringify({ slides: ids }));
      clearInterval(sampler);
      peak = Math.max(peak, process.memoryUsage().rss);
      const bundles = audit.events.filter((e) => e.action === 'download.bundle');
      if (!bundles.every((e) => e.details?.complete === true)) throw new Error('a bundle was not complete');

      const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
      console.log(`\ndownloads: ${WIDTH}×${HEIGHT} generated slide (bench/slide.ts), ${mib(size)}, and 4 copies of it; loopback, curl as the client; median of ${ROUNDS} rounds`);
      console.log('| cache | what | bytes | s | MB/s | vs disk read |');
      console.log('| --- | --- | --- | --- | --- | --- |');
      for (const [label, set] of [
        ['cold', cold],
        ['warm', rounds],
      ] as const) {
        const median = (key: keyof (typeof rounds)[number]) => [...set].map((r) => r[key]).sort((a, b) => mbps(a) - mbps(b))[Math.floor(set.length / 2)]!;
        const [disk1, http1, disk4, zip4] = [median('disk1'), median('http1'), median('disk4'), median('zip4')];
        const row = (what: string, m: Measured, disk: Measured) =>
          console.log(`| ${label} | ${what} | ${mib(m.bytes)} | ${m.seconds.toFixed(2)} | ${mbps(m).toFixed(0)} | ${(mbps(m) / mbps(disk)).toFixed(2)}× |`);
        row('disk read, 1 slide (Node stream, 1 MiB chunks)', disk1, disk1);
        row('GET /files/slide (200, whole file)', http1, disk1);
        row('disk read, 4 slides', disk4, disk4);
        row('POST /api/downloads, ZIP of the 4 (STORE)', zip4, disk4);
      }
      console.log(
        `ZIP of ${LARGE_COPIES} copies: ${mib(large.bytes)} in ${large.seconds.toFixed(1)} s (${mbps(large).toFixed(0)} MB/s); server RSS ${mib(baseline)} before, peak ${mib(peak)} during: +${mib(peak - baseline)}`,
      );
    } finally {
      await server.close(1000);
    }
  } finally {
    await db.close();
    await rm(work, { recursive: true, force: true });
  }
}

function mbps(m: Measured): number {
  return m.bytes / 1e6 / m.seconds;
}

async function readFromDisk(files: string[]): Promise<Measured> {
  let bytes = 0;
  const t0 = performance.now();
  for (const file of files) {
    await pipeline(
      createReadStream(file, { highWaterMark: 1 << 20 }),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          bytes += chunk.length;
          done();
        },
      }),
    );
  }
  return { bytes, seconds: (performance.now() - t0) / 1000 };
}

/** curl into /dev/null; its own timing (from the request to the last byte). */
async function curl(url: string, json?: string): Promise<Measured> {
  const args = ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download} %{time_total}', '-H', 'Authorization: Bearer bench'];
  if (json !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', json);
  const { stdout } = await run('curl', [...args, url]);
  const [bytes, seconds] = stdout.trim().split(' ').map(Number);
  return { bytes: bytes!, seconds: seconds! };
}
