import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { appendFile, copyFile, mkdir, mkdtemp, open, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { loadConfig } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { createIngestService } from '../server/ingest/create.js';
import type { IngestStage } from '../server/ingest/ingest-slide.js';
import { createLogger } from '../server/logging.js';
import { packageRoot } from '../server/package-info.js';
import { makeSlide } from '../server/wsi/generate/index.js';
import { restartIntervalFor } from '../server/wsi/generate/ndpi.js';
import { evict } from './page-cache.js';
import { benchNdpi, benchSlide, HEIGHT, WIDTH } from './slide.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// BENCH_NDPI_INGEST_WIDTH and _HEIGHT: another size of generated NDPI (intervals of at most 32 MCUs that divide each level's row).
const NDPI_WIDTH = Number(process.env.BENCH_NDPI_INGEST_WIDTH ?? 24_576);
const NDPI_HEIGHT = Number(process.env.BENCH_NDPI_INGEST_HEIGHT ?? 18_432);

interface Round {
  cache: 'cold' | 'warm';
  copyFileMBps: number;
  /** copyFile, then fsync of the copy: what a plain copy costs that survives a power cut, as the published slide does. */
  durableCopyMBps: number;
  streamCopyMBps: number;
  ingestMBps: number;
  ingestSeconds: number;
  /** User and system CPU time of the whole process (every thread) during the ingest: less swayed by other work on the machine than the clock. */
  ingestCpuSeconds: number;
  stages: Partial<Record<IngestStage, number>>;
}

/**
 * The ingest benchmark: the whole way in for a 60000×40000 generated slide
 * (hash of the original, reading it, XML check and scrub, de-identified copy,
 * independent verification, thumbnails, catalog row), against copying the
 * same file in the same run: with copyFile (in-kernel), with copyFile and an
 * fsync of the copy (a durable copy: the published slide is synced too), and
 * with a stream (read and write through Node, as the rewriter does). The
 * slide as a classic-TIFF SVS, as a BigTIFF SVS and as an NDPI. Cold rounds
 * (the files' pages dropped from the page cache before each step) and warm
 * ones; medians of each. Then a batch: copies of the SVS ingested from one
 * folder, in parallel (ingest.parallelSlides, default the cores) and one by
 * one, against durable copies of the same files.
 */
export async function ingestBenchmark(): Promise<void> {
  // BENCH_INGEST=ndpi (or svs, bigtiff, batch; comma-separated) measures those alone.
  const only = new Set((process.env.BENCH_INGEST ?? 'svs,bigtiff,ndpi,batch').split(','));
  console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}; ${os.availableParallelism()} cores`);
  if (only.has('svs')) {
    const source = await benchSlide();
    const bytes = (await stat(source)).size;
    const rounds = await measure(source, 'case.svs');
    report(`${WIDTH}×${HEIGHT} generated SVS (classic TIFF), ${(bytes / 2 ** 20).toFixed(0)} MiB with its XML`, rounds);
  }
  if (only.has('bigtiff')) {
    const source = await benchBigTiff();
    const bytes = (await stat(source)).size;
    const rounds = await measure(source, 'case.svs');
    report(`${WIDTH}×${HEIGHT} generated SVS written as BigTIFF, ${(bytes / 2 ** 20).toFixed(0)} MiB with its XML`, rounds);
  }
  if (only.has('ndpi')) {
    // NDPI: re-tiled from its restart intervals into a tiled TIFF (not a rewrite of the same layout).
    const ndpi = await benchNdpi(NDPI_WIDTH, NDPI_HEIGHT, 'bench-ndpi-ingest');
    const ndpiBytes = (await stat(ndpi)).size;
    const ndpiRounds = await measure(ndpi, 'case.ndpi');
    const interval = restartIntervalFor(NDPI_WIDTH, 32) * 8;
    report(`${NDPI_WIDTH}×${NDPI_HEIGHT} generated NDPI (level 0's restart intervals ${interval}×8 pixels), ${(ndpiBytes / 2 ** 20).toFixed(0)} MiB with its XML`, ndpiRounds);
  }
  if (only.has('batch')) await measureBatch(await benchSlide());
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB; load average ${os.loadavg().map((l) => l.toFixed(2)).join(', ')}`);
}

/** The bench slide written as BigTIFF, made once and kept in var/bench. */
async function benchBigTiff(): Promise<string> {
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `bench-bigtiff-${WIDTH}x${HEIGHT}-seed1`;
  const file = path.join(dir, `${name}.svs`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${WIDTH}×${HEIGHT} BigTIFF SVS (once; kept in ${dir}) … `);
  const t0 = performance.now();
  await makeSlide({ width: WIDTH, height: HEIGHT, seed: 1, out: dir, name, bigtiff: true });
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB\n`);
  return file;
}

/** copyFile, then the copy synced to disk; seconds. */
async function durableCopy(source: string, target: string): Promise<number> {
  const t0 = performance.now();
  await copyFile(source, target);
  const handle = await open(target, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  return (performance.now() - t0) / 1000;
}


/** Copies and ingests of `source` (with the XML beside it) under `inboxName`: cold rounds, then warm ones. */
async function measure(source: string, inboxName: string): Promise<Round[]> {
  const xml = source.replace(/\.(svs|ndpi)$/, '.xml');
  const bytes = (await stat(source)).size;
  const rounds: Round[] = [];
  for (let round = 0; round < 2 * ROUNDS; round++) {
    // Cold rounds first: the original's pages are dropped before the copy and before the ingest.
    const cache = round < ROUNDS ? 'cold' : 'warm';
    const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-ingest-'));
    try {
      const inbox = path.join(work, 'in');
      await mkdir(inbox);
      const copyTarget = path.join(inbox, inboxName);
      if (cache === 'cold') await evict([source]);
      let t0 = performance.now();
      await copyFile(source, copyTarget);
      const copySeconds = (performance.now() - t0) / 1000;
      await copyFile(xml, path.join(inbox, 'case.xml'));

      if (cache === 'cold') await evict([source]);
      const durableSeconds = await durableCopy(source, path.join(work, 'durable-copy'));
      await rm(path.join(work, 'durable-copy'));

      if (cache === 'cold') await evict([source]);
      t0 = performance.now();
      await pipeline(createReadStream(source, { highWaterMark: 8 << 20 }), createWriteStream(path.join(work, 'stream-copy')));
      const streamSeconds = (performance.now() - t0) / 1000;
      await rm(path.join(work, 'stream-copy'));

      const { config } = loadConfig({
        configDir: path.join(packageRoot, 'config'),
        env: { SLIDEBANK_PATHS_DATA: path.join(work, 'var'), SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' },
      });
      const log = createLogger('warn');
      const db = openDatabase(config.database.target, { log });
      try {
        await migrateToLatest(db);
        const service = createIngestService(config, db, log);
        if (cache === 'cold') await evict([copyTarget, source]);
        const stages: Partial<Record<IngestStage, number>> = {};
        let stage: IngestStage | undefined;
        let stageStart = 0;
        t0 = performance.now();
        const cpu0 = process.cpuUsage();
        const { results } = await service.ingestFolder(inbox, {
          source: 'cli',
          fallback: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'bench' },
          onProgress: (p) => {
            if (p.stage === stage) return;
            const now = performance.now();
            if (stage) stages[stage] = (stages[stage] ?? 0) + (now - stageStart) / 1000;
            stage = p.stage;
            stageStart = now;
          },
        });
        const ingestSeconds = (performance.now() - t0) / 1000;
        const cpu = process.cpuUsage(cpu0);
        const ingestCpuSeconds = (cpu.user + cpu.system) / 1e6;
        if (results[0]?.outcome !== 'published') throw new Error(`the bench slide was not published: ${results[0]?.reason}`);
        rounds.push({
          cache,
          copyFileMBps: bytes / 1e6 / copySeconds,
          durableCopyMBps: bytes / 1e6 / durableSeconds,
          streamCopyMBps: bytes / 1e6 / streamSeconds,
          ingestMBps: bytes / 1e6 / ingestSeconds,
          ingestSeconds,
          ingestCpuSeconds,
          stages,
        });
        console.log(
          `${cache} round ${(round % ROUNDS) + 1}/${ROUNDS}: ingest ${(bytes / 1e6 / ingestSeconds).toFixed(0)} MB/s, durable copy ${(bytes / 1e6 / durableSeconds).toFixed(0)} MB/s (${(durableSeconds / ingestSeconds).toFixed(2)}×), copyFile ${(bytes / 1e6 / copySeconds).toFixed(0)} MB/s; load ${os.loadavg()[0]!.toFixed(2)}`,
        );
      } finally {
        await db.close();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  return rounds;
}

function report(what: string, rounds: Round[]): void {
  console.log(`\ningest: ${what}; median of ${ROUNDS} rounds each`);
  console.log(`| cache | what | MB/s | vs durable copy | vs copyFile |`);
  console.log(`| --- | --- | ---: | ---: | ---: |`);
  for (const cache of ['cold', 'warm'] as const) {
    const these = rounds.filter((r) => r.cache === cache);
    const mid = (pick: (r: Round) => number) => these.map(pick).sort((a, b) => a - b)[Math.floor(these.length / 2)]!;
    const copyFileMBps = mid((r) => r.copyFileMBps);
    const durableMBps = mid((r) => r.durableCopyMBps);
    const streamCopyMBps = mid((r) => r.streamCopyMBps);
    // Each round's ingest against the durable copy of the same round, so that load on the shared machine hits both.
    const ratio = mid((r) => r.ingestMBps / r.durableCopyMBps);
    const median = [...these].sort((a, b) => a.ingestMBps - b.ingestMBps)[Math.floor(these.length / 2)]!;
    console.log(`| ${cache} | copyFile (in-kernel copy) | ${copyFileMBps.toFixed(0)} | | 1.00× |`);
    console.log(`| ${cache} | durable copy (copyFile + fsync) | ${durableMBps.toFixed(0)} | 1.00× | ${(durableMBps / copyFileMBps).toFixed(2)}× |`);
    console.log(`| ${cache} | stream copy (read + write through Node) | ${streamCopyMBps.toFixed(0)} | | ${(streamCopyMBps / copyFileMBps).toFixed(2)}× |`);
    console.log(`| ${cache} | slidebank ingest (all stages) | ${median.ingestMBps.toFixed(0)} | ${ratio.toFixed(2)}× | ${(median.ingestMBps / copyFileMBps).toFixed(2)}× |`);
    console.log(
      `|  | stages of the median ${cache} run (s): ${Object.entries(median.stages)
        .map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`)
        .join(', ')}; total ${median.ingestSeconds.toFixed(2)}, CPU ${median.ingestCpuSeconds.toFixed(2)} (user + system, all threads) | | | |`,
    );
  }
}

const BATCH = Number(process.env.BENCH_BATCH ?? 2);

/**
 * A batch: BATCH copies of `source` (each made distinct by a few bytes after
 * the TIFF data, which no directory points to, so that the duplicate check
 * lets them all in) ingested from one folder, cold, in parallel (the default
 * ingest.parallelSlides: the cores) and one by one; against a durable copy
 * (copyFile + fsync) of the same files one after the other, as `cp` and
 * `sync` would.
 */
async function measureBatch(source: string): Promise<void> {
  const xml = source.replace(/\.svs$/, '.xml');
  const results: { parallel: number; sequential: number; durable: number }[] = [];
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-batch-'));
    try {
      const inbox = path.join(work, 'in');
      await mkdir(inbox);
      const files: string[] = [];
      for (let i = 0; i < BATCH; i++) {
        const file = path.join(inbox, `case-${i}.svs`);
        await copyFile(source, file);
        await appendFile(file, `batch ${round} slide ${i}\0`);
        await copyFile(xml, path.join(inbox, `case-${i}.xml`));
        files.push(file);
      }
      bytes = (await Promise.all(files.map((f) => stat(f)))).reduce((sum, s) => sum + s.size, 0);
      await evict(files);
      let durable = 0;
      for (const [i, file] of files.entries()) durable += await durableCopy(file, path.join(work, `durable-${i}`));
      const parallel = await ingestBatch(work, inbox, files, 'parallel');
      const sequential = await ingestBatch(work, inbox, files, 'sequential');
      results.push({ parallel, sequential, durable });
      console.log(
        `batch round ${round + 1}/${ROUNDS}: ${BATCH} slides in parallel ${parallel.toFixed(2)} s, one by one ${sequential.toFixed(2)} s, durable copies ${durable.toFixed(2)} s; load ${os.loadavg()[0]!.toFixed(2)}`,
      );
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  const mid = (pick: (r: (typeof results)[number]) => number) => results.map(pick).sort((a, b) => a - b)[Math.floor(results.length / 2)]!;
  const durable = mid((r) => r.durable);
  console.log(`\ningest: a batch of ${BATCH} copies of the SVS (${(bytes / 2 ** 20).toFixed(0)} MiB), cold, ${os.availableParallelism()} cores; median of ${ROUNDS} rounds`);
  console.log(`| what | s | MB/s | vs durable copies |`);
  console.log(`| --- | ---: | ---: | ---: |`);
  console.log(`| durable copies (copyFile + fsync, one after the other) | ${durable.toFixed(2)} | ${(bytes / 1e6 / durable).toFixed(0)} | 1.00× |`);
  for (const [label, key] of [
    ['slidebank ingest, slides in parallel (default)', 'parallel'],
    ['slidebank ingest, one by one (ingest.parallelSlides 1)', 'sequential'],
  ] as const) {
    const seconds = mid((r) => r[key]);
    console.log(`| ${label} | ${seconds.toFixed(2)} | ${(bytes / 1e6 / seconds).toFixed(0)} | ${mid((r) => r.durable / r[key]).toFixed(2)}× |`);
  }
}

/** One ingest of the batch folder into a fresh data folder, the inputs evicted first; seconds. */
async function ingestBatch(work: string, inbox: string, files: string[], mode: 'parallel' | 'sequential'): Promise<number> {
  const data = path.join(work, `var-${mode}`);
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: {
      SLIDEBANK_PATHS_DATA: data,
      SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false',
      ...(mode === 'sequential' ? { SLIDEBANK_INGEST_PARALLEL_SLIDES: '1' } : {}),
    },
  });
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await migrateToLatest(db);
    const service = createIngestService(config, db, log);
    await evict(files);
    const t0 = performance.now();
    const { results } = await service.ingestFolder(inbox, {
      source: 'cli',
      fallback: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'bench' },
    });
    const seconds = (performance.now() - t0) / 1000;
    const refused = results.filter((r) => r.outcome !== 'published');
    if (refused.length > 0 || results.length !== files.length) throw new Error(`the batch was not all published: ${refused.map((r) => `${r.file}: ${r.reason}`).join('; ')}`);
    return seconds;
  } finally {
    await db.close();
    await rm(data, { recursive: true, force: true });
  }
}
