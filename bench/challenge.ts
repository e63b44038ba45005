import { spawnSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { ZipArchive } from 'archiver';
import sharp from 'sharp';
import { maskSize, paintTruthBand, polygonRings, type ChallengeSlide, type ScoringSpec, type SlideTruth } from '../server/challenges/submissions/index.js';

const SLIDES = Number(process.env.BENCH_CHALLENGE_SLIDES ?? 100);
const DOWNSAMPLE = 16;
/** WIDTHxHEIGHT of one slide also scored from a level-0 mask (downsample 1), e.g. 100000x80000; none by default. */
const LEVEL0 = process.env.BENCH_CHALLENGE_LEVEL0;

/** An 8-bit grey PNG written band by band (filter 0, deflate level 1), for masks larger than memory. */
async function writeGreyPng(file: string, width: number, height: number, band: (firstRow: number, rows: number, data: Uint8Array) => void): Promise<void> {
  const chunk = (type: string, data: Buffer) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(data, zlib.crc32(head.subarray(4))) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const out = createWriteStream(file);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  out.write(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  out.write(chunk('IHDR', header));
  const deflate = zlib.createDeflate({ level: 1 });
  const copying = (async () => {
    for await (const data of deflate as AsyncIterable<Buffer>) if (!out.write(chunk('IDAT', data))) await once(out, 'drain');
  })();
  const rows = Math.max(1, Math.floor(2 ** 22 / width));
  const data = new Uint8Array(rows * width);
  for (let y = 0; y < height; y += rows) {
    const n = Math.min(rows, height - y);
    band(y, n, data.subarray(0, n * width));
    const filtered = Buffer.alloc(n * (width + 1));
    for (let r = 0; r < n; r++) filtered.set(data.subarray(r * width, (r + 1) * width), r * (width + 1) + 1);
    if (!deflate.write(filtered)) await once(deflate, 'drain');
  }
  deflate.end();
  await copying;
  out.end(chunk('IEND', Buffer.alloc(0)));
  await once(out, 'finish');
}

/** A closed wobbly outline around (cx, cy) of mean radius r: what a pathologist's tumour outline looks like from afar. */
function blob(cx: number, cy: number, r: number, phase: number, vertices = 400): number[][] {
  const ring: number[][] = [];
  for (let k = 0; k < vertices; k++) {
    const a = (2 * Math.PI * k) / vertices;
    const radius = r * (1 + 0.18 * Math.sin(5 * a + phase) + 0.07 * Math.sin(13 * a + 2 * phase));
    ring.push([cx + radius * Math.cos(a), cy + radius * Math.sin(a)]);
  }
  ring.push(ring[0]!);
  return ring;
}

/** Slide i: about 40000×30000, two tumours (the first with a hole), viable tumour inside each. */
function slideAndTruth(i: number): { slide: ChallengeSlide; truth: SlideTruth } {
  const width = 36000 + ((i * 733) % 8000);
  const height = 27000 + ((i * 419) % 6000);
  const r = 4000 + ((i * 97) % 3000);
  const a = { x: width * 0.35, y: height * 0.45 };
  const b = { x: width * 0.72, y: height * 0.6 };
  return {
    slide: { name: `TEST-${String(i + 1).padStart(3, '0')}`, width, height },
    truth: {
      tumour: [[blob(a.x, a.y, r, i), blob(a.x, a.y, r / 4, i + 1, 60)], [blob(b.x, b.y, r / 2, i + 2)]],
      viable: [[blob(a.x + r / 3, a.y, r / 2, i + 3)], [blob(b.x, b.y, r / 3, i + 4)]],
      label: null,
    },
  };
}

/** A participant's mask: the truth drawn a little larger and 200 level-0 pixels off (1 tumour, `viable` on viable tumour). */
function predictedMask(slide: ChallengeSlide, truth: SlideTruth, viable: number): { width: number; height: number; data: Uint8Array } {
  const { width, height } = maskSize(slide, DOWNSAMPLE);
  const move = (polygons: number[][][][]) => polygons.map((p) => p.map((ring) => ring.map(([x, y]) => [x! * 1.02 + 200, y! * 1.02 - 150])));
  const data = new Uint8Array(width * height);
  paintTruthBand(
    [
      { polygons: move(truth.tumour).map(polygonRings), value: 1 },
      { polygons: move(truth.viable).map(polygonRings), value: viable },
    ],
    { width, firstRow: 0, rows: height, data },
    DOWNSAMPLE,
  );
  return { width, height, data };
}

/**
 * Scoring a phase of SLIDES slides of about 40000×30000 at downsample 16
 * (masks of about 2500×1875 as PNG in a ZIP) for the segmentation and the
 * tumour-burden tasks, each in a fresh process (bench/challenge-score.ts)
 * so that its peak RSS is the scorer's own.
 */
export async function challengeBenchmark(): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-challenge-'));
  try {
    let t0 = performance.now();
    const cases = Array.from({ length: SLIDES }, (_, i) => slideAndTruth(i));
    const archives = { segmentation: path.join(work, 'segmentation.zip'), 'tumour-burden': path.join(work, 'tumour-burden.zip') };
    let pixels = 0;
    for (const [task, file] of Object.entries(archives)) {
      const archive = new ZipArchive({ store: true });
      const written = pipeline(archive, createWriteStream(file));
      for (const { slide, truth } of cases) {
        const mask = predictedMask(slide, truth, task === 'segmentation' ? 1 : 2);
        pixels += mask.width * mask.height;
        const png = await sharp(mask.data, { raw: { width: mask.width, height: mask.height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
        archive.append(png, { name: `${slide.name}.png` });
      }
      await archive.finalize();
      await written;
    }
    console.log(`challenge: made ${SLIDES} slides' truths and two submissions of ${SLIDES} PNG masks (${(pixels / 2e6).toFixed(0)} Mpixels each, at 1/${DOWNSAMPLE}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    for (const task of ['segmentation', 'tumour-burden'] as const) {
      const spec: ScoringSpec = { task, slides: cases.map((c) => c.slide), maskDownsample: DOWNSAMPLE, threshold: 0.65 };
      const input = path.join(work, `${task}.json`);
      await writeFile(input, JSON.stringify({ archive: archives[task], spec, truths: Object.fromEntries(cases.map((c) => [c.slide.name, c.truth])) }));
      t0 = performance.now();
      const result = scoreInChild(input);
      console.log(
        `challenge ${task.padEnd(13)} ${SLIDES} slides: scoreSubmission ${result.seconds.toFixed(1)} s (validateSubmission alone ${result.validateSeconds.toFixed(1)} s), ` +
          `peak RSS ${result.peakRssMiB.toFixed(0)} MiB, score ${result.score.toFixed(4)} (goal < 60 s)`,
      );
    }
    if (LEVEL0) await level0(work, LEVEL0);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

interface ScoreRun {
  seconds: number;
  validateSeconds: number;
  peakRssMiB: number;
  score: number;
}

function scoreInChild(input: string): ScoreRun {
  const script = fileURLToPath(new URL('./challenge-score.ts', import.meta.url));
  const run = spawnSync(process.execPath, ['--import', 'tsx', script, input], { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (run.status !== 0) throw new Error(`scoring failed: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split('\n').pop()!) as ScoreRun;
}

/** One slide of `size` (WIDTHxHEIGHT) scored from a level-0 PNG mask, made band by band. */
async function level0(work: string, size: string): Promise<void> {
  const [width, height] = size.split('x').map(Number) as [number, number];
  const { truth } = slideAndTruth(0);
  const scale = (polygons: number[][][][], by: number) => polygons.map((p) => p.map((ring) => ring.map(([x, y]) => [x! * by, y! * by])));
  const slide: ChallengeSlide = { name: 'LEVEL0', width, height };
  const grow = width / 40000;
  const truthHere: SlideTruth = { tumour: scale(truth.tumour, grow), viable: [], label: null };
  const predicted = scale(truth.tumour, grow * 1.02).map(polygonRings);
  let t0 = performance.now();
  const png = path.join(work, 'LEVEL0.png');
  await writeGreyPng(png, width, height, (firstRow, rows, data) => paintTruthBand([{ polygons: predicted, value: 1 }], { width, firstRow, rows, data }, 1));
  const zipFile = path.join(work, 'level0.zip');
  const archive = new ZipArchive({ store: true });
  const written = pipeline(archive, createWriteStream(zipFile));
  archive.file(png, { name: 'LEVEL0.png' });
  await archive.finalize();
  await written;
  await rm(png);
  console.log(`challenge: made a ${width}×${height} level-0 mask in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const input = path.join(work, 'level0.json');
  const spec: ScoringSpec = { task: 'segmentation', slides: [slide], maskDownsample: 1, threshold: 0.65 };
  await writeFile(input, JSON.stringify({ archive: zipFile, spec, truths: { LEVEL0: truthHere } }));
  t0 = performance.now();
  const result = scoreInChild(input);
  console.log(
    `challenge level 0 ${width}×${height}: scoreSubmission ${result.seconds.toFixed(1)} s (validateSubmission alone ${result.validateSeconds.toFixed(1)} s), ` +
      `peak RSS ${result.peakRssMiB.toFixed(0)} MiB, score ${result.score.toFixed(4)}`,
  );
}
