import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { mulberry32 } from '../server/wsi/generate/tissue.js';
import { DeepZoom, OPENSLIDE_GRID, Slide, type TileRequest } from '../server/wsi/index.js';
import { benchNdpi } from './slide.js';
import { servedNdpiBenchmark } from './ndpi-served.js';

const WIDTH = Number(process.env.BENCH_NDPI_WIDTH ?? 40_000);
const HEIGHT = Number(process.env.BENCH_NDPI_HEIGHT ?? 30_000);
const TILES = Number(process.env.BENCH_NDPI_TILES ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const QUALITY = 75;
const PYTHON = '/usr/bin/python3';

/** OpenSlide's side: the same tiles from DeepZoomGenerator (254/1, as its deepzoom_server.py), each encoded as JPEG. */
const OPENSLIDE_SCRIPT = `
import io, json, sys, time
t0 = time.perf_counter()
import openslide
from openslide.deepzoom import DeepZoomGenerator
slide = openslide.OpenSlide(sys.argv[1])
dz = DeepZoomGenerator(slide, 254, 1, False)
tiles = json.loads(open(sys.argv[2]).read())
opened = time.perf_counter()
cpu = time.process_time()
size = 0
for level, col, row in tiles:
    out = io.BytesIO()
    dz.get_tile(level, (col, row)).save(out, 'jpeg', quality=${QUALITY})
    size += out.tell()
print(json.dumps({"open": opened - t0, "tiles": time.perf_counter() - opened, "cpu": time.process_time() - cpu, "bytes": size}))
`;


/**
 * The NDPI benchmark: the slide engine reading a generated NDPI against
 * OpenSlide (readerBenchmark), then published NDPIs served over HTTP against
 * OpenSlide's Deep Zoom server on the originals (bench/ndpi-served.ts).
 * `BENCH_NDPI_PART=reader` or `served` runs one part only.
 */
export async function ndpiBenchmark(): Promise<void> {
  const part = process.env.BENCH_NDPI_PART;
  if (part !== undefined && part !== 'reader' && part !== 'served') throw new Error(`BENCH_NDPI_PART is reader or served, not ${part}`);
  if (part !== 'served') await readerBenchmark(await benchNdpi(WIDTH, HEIGHT, 'bench-ndpi'));
  if (part !== 'reader') await servedNdpiBenchmark();
}

/**
 * Random Deep Zoom tiles (254/1, as OpenSlide's DeepZoomGenerator) of a
 * generated NDPI, read one after the other by the slide engine and by
 * OpenSlide 3.4.1 in the same run, each from a fresh open of the file (its
 * bytes in the page cache for both), every tile encoded as JPEG.
 */
async function readerBenchmark(file: string): Promise<void> {
  await readFile(file); // both readers start with the file in the page cache
  const slide = await Slide.open(file);
  const dz = new DeepZoom(slide, OPENSLIDE_GRID);
  // Tiles drawn uniformly from all the tiles of all levels (so mostly the two finest), the same for both readers.
  const counts = dz.levels.map((l) => l.cols * l.rows);
  const total = counts.reduce((a, b) => a + b, 0);
  const random = mulberry32(7);
  const tiles: [number, number, number][] = [];
  for (let i = 0; i < TILES; i++) {
    let k = Math.floor(random() * total);
    let level = 0;
    while (k >= counts[level]!) k -= counts[level++]!;
    const cols = dz.levels[level]!.cols;
    tiles.push([level, k % cols, Math.floor(k / cols)]);
  }
  await slide.close();

  const list = path.join(os.tmpdir(), `slidebank-bench-ndpi-${process.pid}.json`);
  await writeFile(list, JSON.stringify(tiles));
  // Rounds alternate the two readers, so that a noisy neighbour weighs on both alike; the report takes the medians.
  const rounds: { ours: Timing; theirs: Timing }[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const ours = await slidebankTiles(file, tiles);
      const { stdout } = await promisify(execFile)(PYTHON, ['-c', OPENSLIDE_SCRIPT, file, list], { maxBuffer: 1 << 20 });
      const theirs = JSON.parse(stdout) as Timing;
      rounds.push({ ours, theirs });
      console.log(`round ${round + 1}/${ROUNDS}: Slidebank ${(TILES / ours.tiles).toFixed(0)} tiles/s, OpenSlide ${(TILES / theirs.tiles).toFixed(0)} tiles/s`);
    }
  } finally {
    await rm(list, { force: true });
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[values.length >> 1]!;
  const summary = (pick: (r: { ours: Timing; theirs: Timing }) => Timing): Timing => ({
    open: median(rounds.map((r) => pick(r).open)),
    tiles: median(rounds.map((r) => pick(r).tiles)),
    cpu: median(rounds.map((r) => pick(r).cpu)),
    bytes: pick(rounds[0]!).bytes,
  });
  const ours = summary((r) => r.ours);
  const theirs = summary((r) => r.theirs);
  const rate = (r: { tiles: number }) => TILES / r.tiles;
  console.log(`\nNDPI Deep Zoom tiles: ${WIDTH}×${HEIGHT} generated NDPI, ${TILES} random 254/1 tiles, one at a time, JPEG q${QUALITY}; median of ${ROUNDS} rounds`);
  console.log('| reader | open (ms) | tiles/s | ms per tile | CPU ms per tile | MiB of JPEG |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, r] of [
    ['Slidebank', ours],
    ['OpenSlide 3.4.1 (DeepZoomGenerator)', theirs],
  ] as const) {
    console.log(`| ${name} | ${(r.open * 1000).toFixed(0)} | ${rate(r).toFixed(0)} | ${((r.tiles / TILES) * 1000).toFixed(2)} | ${((r.cpu / TILES) * 1000).toFixed(2)} | ${(r.bytes / 2 ** 20).toFixed(1)} |`);
  }
  console.log(
    `Slidebank / OpenSlide: ${(rate(ours) / rate(theirs)).toFixed(2)}× the tiles per second (rounds: ${rounds.map((r) => (r.theirs.tiles / r.ours.tiles).toFixed(2)).join(', ')}), ` +
      `CPU per tile ${(ours.cpu / theirs.cpu).toFixed(2)}× OpenSlide's`,
  );
}

interface Timing {
  /** Seconds to open the slide, to read every tile, and the JPEG bytes made. */
  open: number;
  tiles: number;
  /** CPU seconds (every thread of the process) spent on the tiles: steadier than wall time on a shared machine. */
  cpu: number;
  bytes: number;
}

/** The tiles from a fresh open of the slide, one after the other. */
async function slidebankTiles(file: string, tiles: [number, number, number][]): Promise<Timing> {
  const t0 = performance.now();
  const slide = await Slide.open(file);
  try {
    const dz = new DeepZoom(slide, OPENSLIDE_GRID);
    const opened = performance.now();
    const cpu = process.cpuUsage();
    let bytes = 0;
    for (const [level, col, row] of tiles) {
      const request: TileRequest = { level, col, row };
      bytes += (await dz.tile(request, 'jpeg', QUALITY)).body.length;
    }
    const used = process.cpuUsage(cpu);
    return { open: (opened - t0) / 1000, tiles: (performance.now() - opened) / 1000, cpu: (used.user + used.system) / 1e6, bytes };
  } finally {
    await slide.close();
  }
}
