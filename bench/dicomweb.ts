import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { readSlideFacts } from '../server/catalog/slide-facts.js';
import { SlidesRepository } from '../server/catalog/slides.repository.js';
import { parseDatabaseUrl } from '../server/config/index.js';
import { migrateToLatest, openDatabase } from '../server/db/index.js';
import { mulberry32 } from '../server/wsi/generate/tissue.js';
import { DeepZoom, Slide } from '../server/wsi/index.js';
import { runLoad, type LoadResult, type LoadTarget } from './load.js';
import { processCpuSeconds } from './process-cpu.js';
import { benchSlide } from './slide.js';
import { peakRss, withSlidebank } from './servers.js';
import { viewerHeaders } from './viewer.js';

const FRAMES = Number(process.env.BENCH_FRAMES ?? 3000);
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
/** Frames per WADO-RS request in the batched runs (`BENCH_DICOMWEB_BATCHES=4,16`). */
const BATCHES = (process.env.BENCH_DICOMWEB_BATCHES ?? '4,16').split(',').map(Number);
const ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

/** One kind of request: Deep Zoom tiles, or WADO-RS frames `batch` at a time. */
interface Kind {
  name: string;
  batch: number;
  targets: (base: string) => LoadTarget[];
  headers: Record<string, string>;
}

interface Measured {
  cold: LoadResult;
  warm: LoadResult;
  /** CPU seconds the server process spent on each load. */
  cpu: { cold: number; warm: number };
  peakRssMiB: number;
}

/**
 * WADO-RS frames against Deep Zoom tiles of the same published slide: the
 * benchmarks' 60000×40000 SVS, the same random full-resolution tiles asked
 * for as passthrough Deep Zoom tiles (native grid, highest level) and as
 * frames of the level-0 instance (one frame per request, and several), at
 * the same concurrency. Each kind runs on a new server process: "cold" is
 * its first load (the slide not yet open), "warm" the same requests again
 * (Deep Zoom tiles then come from the encoded-tile cache; frames have none).
 */
export async function dicomwebBenchmark(): Promise<void> {
  const load = [os.loadavg()[0]!];
  const slideFile = await benchSlide();
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-dicomweb-'));
  try {
    const databaseUrl = `sqlite:${path.join(work, 'bench.sqlite')}`;
    const { slideId, headers } = await register(databaseUrl, slideFile);
    const slide = await Slide.open(slideFile);
    const deepZoom = new DeepZoom(slide, DeepZoom.nativeGrid(slide)!);
    await slide.close();
    const top = deepZoom.levels.length - 1;
    const { cols, rows } = deepZoom.levels[top]!;
    const random = mulberry32(11);
    const chosen = new Set<number>();
    while (chosen.size < Math.min(FRAMES, cols * rows)) chosen.add(Math.floor(random() * cols * rows));
    const tiles = [...chosen]; // tile index row * cols + col, which is frame index + 1 of the level-0 instance (TILED_FULL)

    await readFile(slideFile); // every server starts with the file in the page cache
    const instance = await withSlidebank('native', databaseUrl, work, (base) => levelZeroInstance(base, headers));
    if (instance.columns !== deepZoom.grid.tileSize || instance.across !== cols || instance.frames !== cols * rows) {
      throw new Error(`the level-0 instance (${instance.across} frames of ${instance.columns} across, ${instance.frames} in all) is not the Deep Zoom top level (${cols}×${rows} tiles of ${deepZoom.grid.tileSize})`);
    }
    const kinds: Kind[] = [
      {
        name: 'Deep Zoom tile (passthrough)',
        batch: 1,
        targets: (base) => tiles.map((t) => ({ url: `${base}/tiles/${slideId}_files/${top}/${t % cols}_${Math.floor(t / cols)}.jpeg`, group: 'tile' })),
        headers,
      },
      ...[1, ...BATCHES].map((batch) => ({
        name: batch === 1 ? 'WADO-RS, 1 frame per request' : `WADO-RS, ${batch} frames per request`,
        batch,
        targets: (base: string) => {
          const out: LoadTarget[] = [];
          for (let i = 0; i < tiles.length; i += batch) out.push({ url: `${base}${instance.path}/frames/${tiles.slice(i, i + batch).map((t) => t + 1).join(',')}`, group: 'frames' });
          return out;
        },
        headers: { ...headers, accept: ACCEPT },
      })),
    ];
    const rounds: Measured[][] = [];
    // Rounds interleave the kinds, so that a noisy neighbour weighs on all alike; figures are the medians of the rounds.
    for (let round = 0; round < ROUNDS; round++) {
      const measured: Measured[] = [];
      for (const kind of kinds) {
        measured.push(
          await withSlidebank('native', databaseUrl, work, async (base, server) => {
            let before = processCpuSeconds(server.pid!);
            const cold = await runLoad(kind.targets(base), CONCURRENCY, kind.headers);
            const coldCpu = processCpuSeconds(server.pid!) - before;
            before = processCpuSeconds(server.pid!);
            const warm = await runLoad(kind.targets(base), CONCURRENCY, kind.headers);
            const warmCpu = processCpuSeconds(server.pid!) - before;
            if (cold.errors + warm.errors > 0) throw new Error(`${kind.name}: ${cold.errors + warm.errors} requests failed; the figures would be wrong`);
            return { cold, warm, cpu: { cold: coldCpu, warm: warmCpu }, peakRssMiB: peakRss(server) };
          }),
        );
      }
      rounds.push(measured);
      console.log(`round ${round + 1}/${ROUNDS}: ${kinds.map((k, i) => `${k.name} ${(measured[i]!.cold.perSecond * k.batch).toFixed(0)}/s`).join(', ')}`);
    }
    load.push(os.loadavg()[0]!);
    report(kinds, rounds, tiles.length, `${path.basename(slideFile)}, level 0 ${slide.width}×${slide.height}, ${cols}×${rows} tiles of ${deepZoom.grid.tileSize}`, load);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The slide in a fresh catalog, published, and a viewer's headers. */
async function register(databaseUrl: string, file: string): Promise<{ slideId: number; headers: Record<string, string> }> {
  const db = openDatabase(parseDatabaseUrl(databaseUrl, process.cwd()));
  try {
    await migrateToLatest(db);
    const record = await new SlidesRepository(db.knex).create({ name: path.basename(file), filePath: file, sha256: null, ...(await readSlideFacts(file)) });
    return { slideId: record.id, headers: await viewerHeaders(db.knex) };
  } finally {
    await db.close();
  }
}

/** The level-0 instance through QIDO-RS, as a viewer finds it: its path, frame size, frames across and frame count. */
async function levelZeroInstance(base: string, headers: Record<string, string>): Promise<{ path: string; columns: number; across: number; frames: number }> {
  type Json = Record<string, { Value?: unknown[] }>;
  const get = async (url: string): Promise<Json[]> => {
    const response = await fetch(`${base}${url}`, { headers });
    if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
    return (await response.json()) as Json[];
  };
  const value = (json: Json, tag: string) => json[tag]?.Value?.[0];
  const [study] = await get('/dicomweb/studies');
  const studyUid = String(value(study!, '0020000D'));
  const [series] = await get(`/dicomweb/studies/${studyUid}/series`);
  const seriesUid = String(value(series!, '0020000E'));
  const instances = await get(`/dicomweb/studies/${studyUid}/series/${seriesUid}/instances`);
  const first = instances.find((i) => Number(value(i, '00200013')) === 1);
  if (!first) throw new Error('the series has no instance number 1');
  const columns = Number(value(first, '00280011'));
  return {
    path: `/dicomweb/studies/${studyUid}/series/${seriesUid}/instances/${String(value(first, '00080018'))}`,
    columns,
    across: Math.ceil(Number(value(first, '00480006')) / columns),
    frames: Number(value(first, '00280008')),
  };
}

function report(kinds: Kind[], rounds: Measured[][], frames: number, what: string, load: number[]): void {
  const mid = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  console.log(
    `\nDICOMweb frames against Deep Zoom tiles: ${what}; ${frames} distinct random full-resolution tiles, concurrency ${CONCURRENCY}; median of ${ROUNDS} rounds; load average ${load.map((l) => l.toFixed(1)).join(' → ')}, ${os.cpus().length} cores`,
  );
  console.log('| request | run | requests | tiles or frames/s | vs tiles | CPU ms per tile or frame | p50 ms | p99 ms | MiB | peak RSS MiB |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const run of ['cold', 'warm'] as const) {
    const tileRate = mid(rounds.map((r) => r[0]![run].perSecond));
    for (const [i, kind] of kinds.entries()) {
      const these = rounds.map((r) => r[i]![run]);
      const rate = mid(these.map((r) => r.perSecond * kind.batch));
      console.log(
        `| ${kind.name} | ${run} | ${these[0]!.requests} | ${rate.toFixed(0)} | ${(rate / tileRate).toFixed(2)}× | ${((mid(rounds.map((r) => r[i]!.cpu[run])) / frames) * 1000).toFixed(2)} | ${mid(these.map((r) => r.latency.p50)).toFixed(1)} | ${mid(these.map((r) => r.latency.p99)).toFixed(1)} | ${(these[0]!.bytes / 2 ** 20).toFixed(1)} | ${mid(rounds.map((r) => r[i]!.peakRssMiB)).toFixed(0)} |`,
      );
    }
  }
  for (const [i, kind] of kinds.entries()) {
    if (i === 0) continue;
    for (const run of ['cold', 'warm'] as const) {
      const each = rounds.map((r) => (r[i]![run].perSecond * kind.batch) / r[0]![run].perSecond);
      console.log(`ratio ${kind.name} / Deep Zoom tiles, ${run}: ${mid(each).toFixed(2)}× (rounds: ${each.map((x) => x.toFixed(2)).join(', ')})`);
    }
  }
  console.log('(p50 and p99 are per request: one tile, or one multipart answer of that many frames)');
}
