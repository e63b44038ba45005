import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { loadConfig } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { createIngestService } from '../server/ingest/create.js';
import { createLogger } from '../server/logging.js';
import { packageRoot } from '../server/package-info.js';
import { DeepZoom, OPENSLIDE_GRID, Slide, type DeepZoomGrid } from '../server/wsi/index.js';
import { freePort } from '../test/support/cli.js';
import { runLoad, type LoadResult, type LoadTarget } from './load.js';
import { processCpuSeconds } from './process-cpu.js';
import { benchNdpi, benchSlide } from './slide.js';
import { DEEPZOOM_SERVER, peakRss, stop, tileTargets, waitFor, withSlidebank } from './servers.js';
import { viewerHeaders } from './viewer.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 3000);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** The tile quality of both servers (Slidebank's tiles.quality default; deepzoom_server.py's -Q). */
const QUALITY = 80;
/** The generated NDPI: 96×72 Deep Zoom tiles of 256 at full resolution, four stored levels. */
const WIDTH = 24_576;
const HEIGHT = 18_432;
const FIXTURES = process.env.SLIDEBANK_FIXTURES_DIR ?? path.resolve(packageRoot, '..', 'shared', 'fixtures');
/** The real NanoZoomer slides among the fixtures (../shared/fixtures/SOURCES.md). */
const FIXTURE_NDPIS = ['ndpi/test3-DAPI.ndpi'];

/** A slide both servers serve: Slidebank the published copy ingest made of `original`, OpenSlide the original itself. */
interface Served {
  label: string;
  original: string;
  slideId: number;
  published: string;
}

/** A slide on one grid: Slidebank's native one (the published file's tiles) or OpenSlide's 254/1; OpenSlide's server is given the same. */
interface Result {
  slide: Served;
  setting: 'native' | 'openslide';
  grid: DeepZoomGrid;
  rounds: Measured[][];
}

interface Measured {
  server: 'Slidebank' | 'OpenSlide';
  cold: LoadResult;
  warm: LoadResult;
  /** CPU seconds the server process spent on each load. */
  cpu: { cold: number; warm: number };
  peakRssMiB: number;
}

/** Two loads of the same targets on one server process, with the CPU time the process spent on each. */
async function coldAndWarm(pid: number, targets: () => LoadTarget[], headers?: Record<string, string>): Promise<Pick<Measured, 'cold' | 'warm' | 'cpu'>> {
  let before = processCpuSeconds(pid);
  const cold = await runLoad(targets(), CONCURRENCY, headers);
  const coldCpu = processCpuSeconds(pid) - before;
  before = processCpuSeconds(pid);
  const warm = await runLoad(targets(), CONCURRENCY, headers);
  return { cold, warm, cpu: { cold: coldCpu, warm: processCpuSeconds(pid) - before } };
}

/**
 * Random Deep Zoom tiles of published NDPIs over HTTP: Slidebank serving
 * the tiled TIFF that ingest made of each NDPI (restart intervals re-wrapped,
 * never decoded), against OpenSlide's deepzoom_server.py reading the original
 * NDPI, in the same run, with the same grid, format, quality, tiles and
 * concurrency. Each server is a new process per measure: "cold" is its first
 * load (OpenSlide's server opens the slide when it starts, Slidebank at the
 * first request), "warm" the same tiles again. The benchmarks' SVS is
 * measured alike in the same run, so that NDPI and SVS figures compare
 * directly. Two grids: Slidebank's native one (the published TIFF's tiles,
 * OpenSlide asked for the same size and overlap) and OpenSlide's 254/1.
 */
export async function servedNdpiBenchmark(): Promise<void> {
  if (!existsSync(DEEPZOOM_SERVER)) {
    console.log(`\nNDPI served: skipped, OpenSlide's deepzoom_server.py is not installed (apt-get install python-openslide-examples python3-flask)`);
    return;
  }
  const load = [os.loadavg()[0]!];
  const originals: { label: string; file: string }[] = [{ label: `generated NDPI ${WIDTH}×${HEIGHT}`, file: await benchNdpi(WIDTH, HEIGHT, 'bench-ndpi-ingest') }];
  for (const name of FIXTURE_NDPIS) {
    const file = path.join(FIXTURES, name);
    if (existsSync(file)) originals.push({ label: `${path.basename(name)} (NanoZoomer)`, file });
    else console.log(`NDPI served: ${file} is absent, so the real NanoZoomer slide is skipped (../shared/fixtures/SOURCES.md says where it comes from)`);
  }
  const svs = await benchSlide();
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-ndpi-served-'));
  try {
    const databaseUrl = `sqlite:${path.join(work, 'bench.sqlite')}`;
    const { served, headers } = await publish(work, databaseUrl, originals, svs);
    const results: Result[] = [];
    for (const slide of served) {
      const opened = await Slide.open(slide.published);
      const native = DeepZoom.nativeGrid(opened);
      await opened.close();
      if (native) results.push({ slide, setting: 'native', grid: native, rounds: [] });
      results.push({ slide, setting: 'openslide', grid: OPENSLIDE_GRID, rounds: [] });
    }
    // Rounds interleave the servers and slides, so that a noisy neighbour weighs on all of them alike; figures are the medians of the rounds.
    for (let round = 0; round < ROUNDS; round++) {
      for (const result of results) {
        const pair = await measurePair(result, work, databaseUrl, headers);
        result.rounds.push(pair);
        console.log(
          `round ${round + 1}/${ROUNDS}, ${result.slide.label}, ${gridName(result.grid)}: Slidebank ${pair[0]!.cold.perSecond.toFixed(0)} / OpenSlide ${pair[1]!.cold.perSecond.toFixed(0)} tiles/s cold`,
        );
      }
    }
    load.push(os.loadavg()[0]!);
    report(results, load);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}


const gridName = (grid: DeepZoomGrid) => `${grid.tileSize}/${grid.overlap}`;

/** Each original ingested into a fresh catalog (NDPIs through the real ingest; the SVS too), and a viewer's headers. */
async function publish(work: string, databaseUrl: string, originals: { label: string; file: string }[], svs: string): Promise<{ served: Served[]; headers: Record<string, string> }> {
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { SLIDEBANK_PATHS_DATA: work, DATABASE_URL: databaseUrl, SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' },
  });
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await migrateToLatest(db);
    const service = createIngestService(config, db, log);
    const slides = new SlidesRepository(db.knex);
    const served: Served[] = [];
    for (const [i, { label, file }] of [...originals, { label: 'bench SVS', file: svs }].entries()) {
      const inbox = path.join(work, `inbox-${i}`);
      await mkdir(inbox, { recursive: true });
      const extension = path.extname(file);
      await copyFile(file, path.join(inbox, `case${extension}`));
      const xml = file.replace(/\.[^.]+$/, '.xml');
      if (existsSync(xml)) await copyFile(xml, path.join(inbox, 'case.xml'));
      const t0 = performance.now();
      const { results } = await service.ingestFolder(inbox, {
        source: 'cli',
        fallback: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'bench' },
      });
      const result = results[0];
      if (result?.outcome !== 'published' || result.slideId === null) throw new Error(`${file} was not published: ${result?.reason}`);
      const record = (await slides.findById(result.slideId))!;
      const published = path.resolve(config.paths.slides, record.filePath);
      console.log(`ingested ${label} (${path.basename(file)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      served.push({ label, original: file, slideId: result.slideId, published });
    }
    return { served, headers: await viewerHeaders(db.knex) };
  } finally {
    await db.close();
  }
}

/** One round of one slide on one grid: Slidebank, then OpenSlide, each a new process, cold then warm. */
async function measurePair({ slide, setting, grid }: Result, work: string, databaseUrl: string, headers: Record<string, string>): Promise<Measured[]> {
  const opened = await Slide.open(slide.published);
  try {
    // The published copy has the original's size (checked against OpenSlide's descriptor below), so one tile set serves both.
    const deepZoom = new DeepZoom(opened, grid);
    const targets = (base: string, name: string) => tileTargets(deepZoom, opened, (l, c, r) => `${base}/${name}_files/${l}/${c}_${r}.jpeg`, REQUESTS);
    await readFile(slide.published); // both files start in the page cache
    await readFile(slide.original);
    const ours = await withSlidebank(setting, databaseUrl, work, async (base, server) => {
      const { cold, warm, cpu } = await coldAndWarm(server.pid!, () => targets(`${base}/tiles`, String(slide.slideId)), headers);
      if (cold.errors + warm.errors > 0) throw new Error(`Slidebank, ${slide.label}: ${cold.errors + warm.errors} tile requests failed; the figures would be wrong`);
      return { server: 'Slidebank' as const, cold, warm, cpu, peakRssMiB: peakRss(server) };
    }, { SLIDEBANK_TILES_QUALITY: String(QUALITY) });
    const theirs = await withDeepZoomServer(slide.original, grid, async (base, server) => {
      const descriptor = await (await fetch(`${base}/slide.dzi`)).text();
      const expected = deepZoom.descriptor('jpeg');
      const size = (xml: string) => `${/Width="(\d+)"/.exec(xml)?.[1]}×${/Height="(\d+)"/.exec(xml)?.[1]}`;
      if (size(descriptor) !== size(expected)) throw new Error(`${slide.label}: OpenSlide sees ${size(descriptor)}, the published copy ${size(expected)}`);
      const { cold, warm, cpu } = await coldAndWarm(server.pid!, () => targets(base, 'slide'));
      if (cold.errors + warm.errors > 0) console.log(`WARNING: OpenSlide, ${slide.label}: ${cold.errors + warm.errors} tile requests failed`);
      return { server: 'OpenSlide' as const, cold, warm, cpu, peakRssMiB: peakRss(server) };
    });
    return [ours, theirs];
  } finally {
    await opened.close();
  }
}

/** OpenSlide's deepzoom_server.py on `file`, with the grid and quality given, for the time `run` takes. */
async function withDeepZoomServer<T>(file: string, grid: DeepZoomGrid, run: (base: string, server: ReturnType<typeof spawn>) => Promise<T>): Promise<T> {
  const port = await freePort();
  const args = [DEEPZOOM_SERVER, '-B', '-Q', String(QUALITY), '-s', String(grid.tileSize), '-e', String(grid.overlap), '-l', '127.0.0.1', '-p', String(port), file];
  const server = spawn('/usr/bin/python3', args, { stdio: ['ignore', 'ignore', 'ignore'] });
  try {
    await waitFor(`http://127.0.0.1:${port}/slide.dzi`, server);
    return await run(`http://127.0.0.1:${port}`, server);
  } finally {
    await stop(server);
  }
}

function report(results: Result[], load: number[]): void {
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    `\nNDPI served: random Deep Zoom tiles (up to ${REQUESTS} distinct, all levels) at concurrency ${CONCURRENCY}, JPEG q${QUALITY}; Slidebank serves the published copy, OpenSlide's deepzoom_server.py the original; median of ${ROUNDS} rounds; load average ${load.map((l) => l.toFixed(1)).join(' → ')}, ${os.cpus().length} cores`,
  );
  console.log('| slide | grid | server | run | tiles | tiles/s | CPU ms per tile | p50 ms | p99 ms | p99 native | p99 resampled | peak RSS MiB |');
  console.log('| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { slide, grid, rounds } of results) {
    for (const side of [0, 1]) {
      for (const run of ['cold', 'warm'] as const) {
        const these = rounds.map((r) => r[side]![run]);
        const by = (group: string) => (these.some((r) => r.byGroup[group]) ? mid(these.map((r) => r.byGroup[group]?.p99 ?? 0)).toFixed(1) : '');
        console.log(
          `| ${slide.label} | ${gridName(grid)} | ${rounds[0]![side]!.server} | ${run} | ${these[0]!.requests} | ${mid(these.map((r) => r.perSecond)).toFixed(0)} | ${((mid(rounds.map((r) => r[side]!.cpu[run])) / these[0]!.requests) * 1000).toFixed(2)} | ${mid(these.map((r) => r.latency.p50)).toFixed(1)} | ${mid(these.map((r) => r.latency.p99)).toFixed(1)} | ${by('native')} | ${by('resampled')} | ${mid(rounds.map((r) => r[side]!.peakRssMiB)).toFixed(0)} |`,
        );
      }
    }
  }
  console.log('');
  for (const { slide, grid, rounds } of results) {
    for (const run of ['cold', 'warm'] as const) {
      const each = rounds.map((r) => r[0]![run].perSecond / r[1]![run].perSecond);
      const cpu = mid(rounds.map((r) => r[1]!.cpu[run] / r[0]!.cpu[run]));
      console.log(`ratio Slidebank / OpenSlide, ${slide.label}, ${gridName(grid)}, ${run}: ${mid(each).toFixed(2)}× the tiles/s (rounds: ${each.map((x) => x.toFixed(2)).join(', ')}); OpenSlide spends ${cpu.toFixed(2)}× Slidebank's CPU per tile`);
    }
  }
  // The product's goal: NDPI tiles at least as fast as SVS tiles, here measured side by side.
  const svs = results.filter((r) => r.slide.label === 'bench SVS');
  for (const { slide, setting, grid, rounds } of results.filter((r) => r.slide.label !== 'bench SVS')) {
    const reference = svs.find((r) => r.setting === setting);
    if (!reference) continue;
    for (const run of ['cold', 'warm'] as const) {
      const ndpi = mid(rounds.map((r) => r[0]![run].perSecond));
      const base = mid(reference.rounds.map((r) => r[0]![run].perSecond));
      const ratioNdpi = mid(rounds.map((r) => r[0]![run].perSecond / r[1]![run].perSecond));
      const ratioSvs = mid(reference.rounds.map((r) => r[0]![run].perSecond / r[1]![run].perSecond));
      console.log(
        `Slidebank ${run}, ${slide.label} ${gridName(grid)} against the bench SVS ${gridName(reference.grid)}: ${(ndpi / base).toFixed(2)}× the tiles/s (${ndpi.toFixed(0)} vs ${base.toFixed(0)}); against OpenSlide ${ratioNdpi.toFixed(2)}× vs ${ratioSvs.toFixed(2)}× on the SVS`,
      );
    }
  }
  console.log('(native: tiles of Deep Zoom levels a stored level serves as it is; resampled: the levels between; p99 of the requests of each kind)');
}
