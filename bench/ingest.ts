import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
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
import { evict } from './page-cache.js';
import { benchSlide, HEIGHT, WIDTH } from './slide.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NDPI_WIDTH = 24_576;
const NDPI_HEIGHT = 18_432;

interface Round {
  cache: 'cold' | 'warm';
  copyFileMBps: number;
  streamCopyMBps: number;
  ingestMBps: number;
  ingestSeconds: number;
  stages: Partial<Record<IngestStage, number>>;
}

/**
 * The ingest benchmark: the whole way in for a 60000×40000 generated slide
 * (hash of the original, reading it, XML check and scrub, de-identified copy,
 * independent verification, thumbnails, catalog row), against copying the
 * same file in the same run: with copyFile (in-kernel) and with a stream
 * (read and write through Node, as the rewriter does). Cold rounds (the
 * original's pages dropped from the page cache before each step) and warm
 * ones; medians of each.
 */
export async function ingestBenchmark(): Promise<void> {
  // BENCH_INGEST=ndpi measures the NDPI alone.
  if (process.env.BENCH_INGEST !== 'ndpi') {
    const source = await benchSlide();
    const bytes = (await stat(source)).size;
    const rounds = await measure(source, 'case.svs');
    report(`${WIDTH}×${HEIGHT} generated slide, ${(bytes / 2 ** 20).toFixed(0)} MiB with its XML`, rounds);
  }

  // NDPI: re-tiled from its restart intervals into a tiled TIFF (not a rewrite of the same layout).
  const ndpi = await benchNdpiForIngest();
  const ndpiBytes = (await stat(ndpi)).size;
  const ndpiRounds = await measure(ndpi, 'case.ndpi');
  report(`${NDPI_WIDTH}×${NDPI_HEIGHT} generated NDPI (restart intervals of 256×8 pixels, re-tiled into 256×256 tiles), ${(ndpiBytes / 2 ** 20).toFixed(0)} MiB with its XML`, ndpiRounds);
  console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
}

/** A generated NDPI whose widths are whole numbers of 256-pixel restart intervals at every level, made once and kept in var/bench. */
async function benchNdpiForIngest(): Promise<string> {
  const dir = path.join(packageRoot, 'var', 'bench');
  const name = `bench-ndpi-ingest-${NDPI_WIDTH}x${NDPI_HEIGHT}-seed1`;
  const file = path.join(dir, `${name}.ndpi`);
  if (existsSync(file)) return file;
  await mkdir(dir, { recursive: true });
  process.stdout.write(`generating a ${NDPI_WIDTH}×${NDPI_HEIGHT} NDPI (once; kept in ${dir}) … `);
  const t0 = performance.now();
  await makeSlide({ width: NDPI_WIDTH, height: NDPI_HEIGHT, seed: 1, out: dir, name, format: 'ndpi' });
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(1)} s, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB\n`);
  return file;
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
        if (results[0]?.outcome !== 'published') throw new Error(`the bench slide was not published: ${results[0]?.reason}`);
        rounds.push({
          cache,
          copyFileMBps: bytes / 1e6 / copySeconds,
          streamCopyMBps: bytes / 1e6 / streamSeconds,
          ingestMBps: bytes / 1e6 / ingestSeconds,
          ingestSeconds,
          stages,
        });
        console.log(`${cache} round ${(round % ROUNDS) + 1}/${ROUNDS}: ingest ${(bytes / 1e6 / ingestSeconds).toFixed(0)} MB/s, copyFile ${(bytes / 1e6 / copySeconds).toFixed(0)} MB/s`);
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
  console.log(`| cache | what | MB/s | vs copyFile | vs stream copy |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const cache of ['cold', 'warm'] as const) {
    const these = rounds.filter((r) => r.cache === cache);
    const mid = (pick: (r: Round) => number) => these.map(pick).sort((a, b) => a - b)[Math.floor(these.length / 2)]!;
    const copyFileMBps = mid((r) => r.copyFileMBps);
    const streamCopyMBps = mid((r) => r.streamCopyMBps);
    const median = [...these].sort((a, b) => a.ingestMBps - b.ingestMBps)[Math.floor(these.length / 2)]!;
    console.log(`| ${cache} | copyFile (in-kernel copy) | ${copyFileMBps.toFixed(0)} | 1.00× | |`);
    console.log(`| ${cache} | stream copy (read + write through Node) | ${streamCopyMBps.toFixed(0)} | ${(streamCopyMBps / copyFileMBps).toFixed(2)}× | 1.00× |`);
    console.log(`| ${cache} | slidebank ingest (all stages) | ${median.ingestMBps.toFixed(0)} | ${(median.ingestMBps / copyFileMBps).toFixed(2)}× | ${(median.ingestMBps / streamCopyMBps).toFixed(2)}× |`);
    console.log(
      `|  | stages of the median ${cache} run (s): ${Object.entries(median.stages)
        .map(([name, seconds]) => `${name} ${seconds.toFixed(2)}`)
        .join(', ')}; total ${median.ingestSeconds.toFixed(2)} | | | |`,
    );
  }
}
