/**
 * Smooth stitching of patch predictions into a probability map of the whole
 * slide, as the known tools do it (docs/references.md, "Tissue masks, patches
 * and stitching"): every patch adds w·p and w to the map pixels it covers, w
 * a window that fades towards the patch's edges, and the map is Σw·p / Σw.
 *
 * The map lies over level 0 like the masks: map pixel (i, j) stands for the
 * level-0 point ((i + ½)·dx, (j + ½)·dy), and a patch covers the map pixels
 * whose centres fall inside it. Its window is evaluated at the same centres:
 * u = (centre − patch start) / patch size ∈ (0, 1), w = f(u)·f(v), never
 * below WINDOW_FLOOR so that a border pixel covered by one patch keeps its
 * value. A patch's value is its score, or its probability image sampled at the
 * centre (nearest pixel).
 *
 * Memory stays bounded whatever the slide: Σw·p and Σw are float32 strips of
 * `stripHeight` map rows, holding only the patches that overlap the strip
 * (their probability images decoded while they do), and each finished strip
 * is written to a 16-bit PNG that is streamed to disk.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { requireNumber, requireWhole, ToolboxError } from './errors.js';
import { writeJson } from './mask.js';
import { GreyPng16Writer, readGreyImage } from './png-stream.js';
import { firstCentreFrom } from './raster.js';

export type StitchWindow = 'uniform' | 'spline' | 'gaussian' | 'hann';
export const STITCH_WINDOWS: readonly StitchWindow[] = ['uniform', 'spline', 'gaussian', 'hann'];

/** The smallest window weight: the spline and Hann windows tend to 0 at a patch's edge. */
export const WINDOW_FLOOR = 1e-3;
/** Default map rows per strip. */
export const DEFAULT_STRIP_HEIGHT = 256;
/** The largest map side (a PNG allows more, the viewer's overlay does not need it). */
export const MAX_MAP_SIDE = 1 << 20;

/** A probability image in memory: `width` × `height` values in [0, 1], row by row. */
export interface ProbabilityImage {
  width: number;
  height: number;
  data: Float32Array | Uint8Array | Uint16Array;
  /** What 1.0 is in `data`: 1 (float), 255 (8-bit) or 65535 (16-bit). */
  scale: number;
}

/** One patch prediction over level 0. */
export interface Prediction {
  /** Where it came from in its file, for error messages ("line 12", "entry 3"). */
  where: string;
  /** Level-0 top-left corner and size. */
  x: number;
  y: number;
  width: number;
  height: number;
  /** The patch's probability; or a probability image (`file`, or `image` in memory). */
  score?: number;
  file?: string;
  image?: ProbabilityImage;
}

export interface StitchGrid {
  level0: { width: number; height: number };
  width: number;
  height: number;
  /** Level-0 pixels per map pixel along each axis. */
  downsample: { x: number; y: number };
}

/** The map over a slide of `level0` at `downsample` (≥ 1): round(side / downsample) pixels, at least 1. */
export function stitchGrid(level0: { width: number; height: number }, downsample: number): StitchGrid {
  requireNumber('downsample', downsample, 1, Math.max(level0.width, level0.height));
  const width = Math.max(1, Math.round(level0.width / downsample));
  const height = Math.max(1, Math.round(level0.height / downsample));
  if (width > MAX_MAP_SIDE || height > MAX_MAP_SIDE) throw new ToolboxError('downsample', `gives a ${width}×${height} map, over ${MAX_MAP_SIDE} on a side; use a larger one`);
  return { level0, width, height, downsample: { x: level0.width / width, y: level0.height / height } };
}

/** The window's weight at u ∈ (0, 1) across a patch (1 at the centre for all but uniform, which is 1 everywhere). */
export function windowAt(window: StitchWindow, u: number): number {
  switch (window) {
    case 'uniform':
      return 1;
    case 'hann':
      return Math.sin(Math.PI * u) ** 2;
    case 'gaussian': {
      // σ = 0.125 · size.
      const d = (u - 0.5) / 0.125;
      return Math.exp(-0.5 * d * d);
    }
    case 'spline': {
      // The smooth-tiling window (power 2): a triangle t = 1 − |2u − 1| bent into two parabolas that meet at t = ½.
      const t = 1 - Math.abs(2 * u - 1);
      return t < 0.5 ? 2 * t * t : 1 - 2 * (1 - t) * (1 - t);
    }
  }
}

/** Check a parsed prediction against the slide; a ToolboxError names where it came from. */
function checkPrediction(p: Prediction, level0: { width: number; height: number }): void {
  const refuse = (problem: string) => {
    throw new ToolboxError('predictions', `${p.where}: ${problem}`);
  };
  for (const [name, value] of [['x', p.x], ['y', p.y], ['size', p.width], ['size', p.height]] as const) {
    if (!Number.isFinite(value)) refuse(`${name} is not a number (${String(value)})`);
  }
  if (p.x < 0 || p.y < 0) refuse(`the patch at (${p.x}, ${p.y}) has a negative position`);
  if (p.width <= 0 || p.height <= 0) refuse(`the patch size must be above 0, got ${p.width}×${p.height}`);
  if (p.x + p.width > level0.width || p.y + p.height > level0.height) {
    refuse(`the patch [${p.x}, ${p.x + p.width}) × [${p.y}, ${p.y + p.height}) reaches outside the ${level0.width}×${level0.height} slide`);
  }
  if (p.score !== undefined) {
    if (!Number.isFinite(p.score) || p.score < 0 || p.score > 1) refuse(`the score must be a number from 0 to 1, got ${String(p.score)}`);
  } else if (p.file === undefined && p.image === undefined) {
    refuse('has neither a score nor a probability image');
  }
}

export interface ParseOptions {
  level0: { width: number; height: number };
  /** Level-0 pixels per pixel of each stored level, for rows with a `level` column (the patches index). */
  levelDownsamples?: readonly { x: number; y: number }[];
  /** Folder that image file names are relative to. */
  baseDir?: string;
}

function toPrediction(raw: Record<string, unknown>, where: string, options: ParseOptions): Prediction {
  const num = (key: string): number | undefined => {
    const value = raw[key];
    if (value === undefined || value === null || value === '') return undefined;
    return typeof value === 'number' ? value : Number(value);
  };
  const refuse = (problem: string) => new ToolboxError('predictions', `${where}: ${problem}`);
  const x = num('x');
  const y = num('y');
  const size = num('size');
  if (x === undefined || y === undefined || size === undefined) throw refuse('needs x, y and size');
  const level = num('level') ?? 0;
  let ds = { x: 1, y: 1 };
  if (level !== 0) {
    const known = Number.isInteger(level) ? options.levelDownsamples?.[level] : undefined;
    if (!known) throw refuse(`level ${level} is not a level of the slide (size is in pixels of the level)`);
    ds = known;
  }
  const score = num('score');
  const file = raw.probability ?? raw.file;
  const prediction: Prediction = { where, x, y, width: size * ds.x, height: size * ds.y };
  if (raw.score !== undefined && raw.score !== '') prediction.score = score;
  else if (typeof file === 'string' && file !== '') prediction.file = path.resolve(options.baseDir ?? '.', file);
  checkPrediction(prediction, options.level0);
  return prediction;
}

/**
 * Predictions from CSV (a header line naming x, y, size and score — or a
 * probability image column `probability` or `file` — and optionally level) or
 * JSON (an array of such objects, or the patches index with its `patches`).
 * Positions are level 0; `size` is in pixels of `level` (default 0). A row
 * that does not fit the slide is refused with its line number.
 */
export function parsePredictions(text: string, kind: 'csv' | 'json', options: ParseOptions): Prediction[] {
  if (kind === 'json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw new ToolboxError('predictions', `is not valid JSON: ${(error as Error).message}`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { patches?: unknown } | null)?.patches;
    if (!Array.isArray(list)) throw new ToolboxError('predictions', 'must be a JSON array of {x, y, size, score} or an object with "patches"');
    return list.map((item, i) => {
      if (typeof item !== 'object' || item === null) throw new ToolboxError('predictions', `entry ${i + 1}: is not an object`);
      return toPrediction(item as Record<string, unknown>, `entry ${i + 1}`, options);
    });
  }
  const lines = text.split(/\r?\n/);
  const header = (lines[0] ?? '').split(',').map((h) => h.trim().toLowerCase());
  for (const needed of ['x', 'y', 'size']) {
    if (!header.includes(needed)) throw new ToolboxError('predictions', `line 1: the CSV header must name x, y and size (and score, or probability/file), got "${lines[0] ?? ''}"`);
  }
  if (!header.includes('score') && !header.includes('probability') && !header.includes('file')) {
    throw new ToolboxError('predictions', 'line 1: the CSV header names no score and no probability image column (probability or file)');
  }
  const out: Prediction[] = [];
  for (let n = 1; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim() === '') continue;
    const cells = line.split(',');
    if (cells.length !== header.length) throw new ToolboxError('predictions', `line ${n + 1}: ${cells.length} fields where the header has ${header.length}`);
    const raw: Record<string, unknown> = {};
    header.forEach((h, i) => (raw[h] = cells[i]!.trim()));
    out.push(toPrediction(raw, `line ${n + 1}`, options));
  }
  return out;
}

/** Read and parse a predictions file (.csv or .json); image names are relative to its folder. */
export async function loadPredictions(file: string, options: Omit<ParseOptions, 'baseDir'>): Promise<Prediction[]> {
  const kind = file.toLowerCase().endsWith('.json') ? 'json' : 'csv';
  return parsePredictions(await readFile(file, 'utf8'), kind, { ...options, baseDir: path.dirname(file) });
}

/** Decode a probability image: one channel (grey, 8 or 16 bits), optionally with alpha, which is ignored. */
export async function readProbabilityImage(file: string, where = file): Promise<ProbabilityImage> {
  let image;
  try {
    image = await readGreyImage(file);
  } catch (error) {
    throw new ToolboxError('predictions', `${where}: cannot read the probability image ${file}: ${(error as Error).message}`);
  }
  if (image.colourChannels !== 1) throw new ToolboxError('predictions', `${where}: ${path.basename(file)} is not a grey probability image (${image.colourChannels} colour channels)`);
  return { width: image.width, height: image.height, data: image.data, scale: image.scale };
}

/** A prediction placed on the map: the map rows and columns it covers and its window along each. */
interface Placed {
  prediction: Prediction;
  col0: number;
  col1: number;
  row0: number;
  row1: number;
  weightX: Float64Array;
  weightY: Float64Array;
  /** Image pixel per covered column and row (nearest), for image predictions. */
  imageX?: Int32Array;
  imageY?: Int32Array;
  image?: ProbabilityImage;
}

function place(p: Prediction, grid: StitchGrid, window: StitchWindow): Placed | undefined {
  const { x: dx, y: dy } = grid.downsample;
  const col0 = Math.max(0, firstCentreFrom(p.x, dx));
  const col1 = Math.min(grid.width, firstCentreFrom(p.x + p.width, dx));
  const row0 = Math.max(0, firstCentreFrom(p.y, dy));
  const row1 = Math.min(grid.height, firstCentreFrom(p.y + p.height, dy));
  if (col1 <= col0 || row1 <= row0) return undefined; // smaller than a map pixel and between centres
  const axis = (from: number, to: number, start: number, size: number, d: number) => {
    const w = new Float64Array(to - from);
    for (let k = from; k < to; k++) w[k - from] = Math.max(WINDOW_FLOOR, windowAt(window, ((k + 0.5) * d - start) / size));
    return w;
  };
  return { prediction: p, col0, col1, row0, row1, weightX: axis(col0, col1, p.x, p.width, dx), weightY: axis(row0, row1, p.y, p.height, dy) };
}

function attachImage(placed: Placed, image: ProbabilityImage, grid: StitchGrid): void {
  const p = placed.prediction;
  const index = (from: number, to: number, start: number, size: number, d: number, n: number) => {
    const out = new Int32Array(to - from);
    for (let k = from; k < to; k++) out[k - from] = Math.min(n - 1, Math.max(0, Math.floor((((k + 0.5) * d - start) / size) * n)));
    return out;
  };
  placed.image = image;
  placed.imageX = index(placed.col0, placed.col1, p.x, p.width, grid.downsample.x, image.width);
  placed.imageY = index(placed.row0, placed.row1, p.y, p.height, grid.downsample.y, image.height);
}

export interface StitchStripOptions {
  window?: StitchWindow;
  /** Map rows per strip (default 256). */
  stripHeight?: number;
  /** How probability images named by `file` are read (default readProbabilityImage). */
  readImage?: (file: string, where: string) => Promise<ProbabilityImage>;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** One finished strip: Σw·p / Σw (0 where Σw = 0) and Σw for map rows [row, row + rows). */
export interface Strip {
  row: number;
  rows: number;
  probability: Float32Array;
  weight: Float32Array;
}

/**
 * The stitching itself, strip by strip: for each strip of map rows, the
 * patches that overlap it add w·p and w in float32, then the strip is divided
 * and handed to `onStrip` before the next is begun.
 */
export async function stitchStrips(predictions: readonly Prediction[], grid: StitchGrid, options: StitchStripOptions, onStrip: (strip: Strip) => Promise<void> | void): Promise<void> {
  const window = options.window ?? 'gaussian';
  if (!STITCH_WINDOWS.includes(window)) throw new ToolboxError('window', `must be one of ${STITCH_WINDOWS.join(', ')}, got ${String(window)}`);
  const stripHeight = requireWhole('stripHeight', options.stripHeight ?? DEFAULT_STRIP_HEIGHT, 1);
  for (const p of predictions) checkPrediction(p, grid.level0);
  const readImage = options.readImage ?? readProbabilityImage;

  const placed = predictions.map((p) => place(p, grid, window)).filter((p): p is Placed => p !== undefined);
  placed.sort((a, b) => a.row0 - b.row0);
  const width = grid.width;
  const rowsInStrip = Math.min(stripHeight, grid.height);
  const sum = new Float32Array(width * rowsInStrip);
  const weight = new Float32Array(width * rowsInStrip);
  let active: Placed[] = [];
  let next = 0;
  const strips = Math.ceil(grid.height / stripHeight);
  for (let s = 0; s < strips; s++) {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    const r0 = s * stripHeight;
    const r1 = Math.min(grid.height, r0 + stripHeight);
    // Patches enter when the strip reaches their first row and leave (with their image) after their last.
    active = active.filter((p) => {
      if (p.row1 > r0) return true;
      p.image = p.imageX = p.imageY = undefined;
      return false;
    });
    while (next < placed.length && placed[next]!.row0 < r1) {
      const p = placed[next++]!;
      if (p.row1 <= r0) continue;
      active.push(p);
    }
    await Promise.all(
      active.map(async (p) => {
        if (p.prediction.score !== undefined || p.image) return;
        const image = p.prediction.image ?? (await readImage(p.prediction.file!, p.prediction.where));
        attachImage(p, image, grid);
      }),
    );
    const rows = r1 - r0;
    sum.fill(0, 0, rows * width);
    weight.fill(0, 0, rows * width);
    for (const p of active) accumulate(p, r0, r1, width, sum, weight);
    const probability = sum.subarray(0, rows * width); // divided in place
    const w = weight.subarray(0, rows * width);
    for (let i = 0; i < probability.length; i++) probability[i] = w[i]! > 0 ? probability[i]! / w[i]! : 0;
    await onStrip({ row: r0, rows, probability, weight: w });
    options.onProgress?.(s + 1, strips);
  }
}

/** Add one patch's w·p and w to the rows of [r0, r1) it covers. */
function accumulate(p: Placed, r0: number, r1: number, width: number, sum: Float32Array, weight: Float32Array): void {
  const from = Math.max(r0, p.row0);
  const to = Math.min(r1, p.row1);
  const { weightX, weightY, col0, col1 } = p;
  const score = p.prediction.score;
  const image = p.image;
  for (let r = from; r < to; r++) {
    const wy = weightY[r - p.row0]!;
    const offset = (r - r0) * width;
    if (score !== undefined) {
      for (let c = col0; c < col1; c++) {
        const w = wy * weightX[c - col0]!;
        sum[offset + c]! += w * score;
        weight[offset + c]! += w;
      }
    } else {
      const data = image!.data;
      const scale = image!.scale;
      const rowStart = p.imageY![r - p.row0]! * image!.width;
      const imageX = p.imageX!;
      for (let c = col0; c < col1; c++) {
        const w = wy * weightX[c - col0]!;
        sum[offset + c]! += (w * data[rowStart + imageX[c - col0]!]!) / scale;
        weight[offset + c]! += w;
      }
    }
  }
}

/** The whole map in float32 (for small maps and tests): Σw·p / Σw, 0 where no patch reaches. */
export async function stitchToFloat(predictions: readonly Prediction[], grid: StitchGrid, options: StitchStripOptions = {}): Promise<{ probability: Float32Array; weight: Float32Array }> {
  const probability = new Float32Array(grid.width * grid.height);
  const weight = new Float32Array(grid.width * grid.height);
  await stitchStrips(predictions, grid, options, (strip) => {
    probability.set(strip.probability, strip.row * grid.width);
    weight.set(strip.weight, strip.row * grid.width);
  });
  return { probability, weight };
}

/** A probability in [0, 1] as a 16-bit sample. */
export function quantise16(p: number): number {
  return Math.round(Math.min(1, Math.max(0, p)) * 65535);
}

export interface StitchOptions extends StitchStripOptions {
  /** Level-0 pixels per map pixel (≥ 1; default 16). */
  downsample?: number;
  /** Folder for `<name>.png` and `<name>.json`. */
  out: string;
  name?: string;
  /** Facts recorded in the sidecar (e.g. the slide and predictions files). */
  extra?: Record<string, unknown>;
}

export interface StitchResult {
  png: string;
  json: string;
  grid: StitchGrid;
  patches: number;
  coveredPixels: number;
  /** Over the covered pixels (Σw > 0); null when none is. */
  min: number | null;
  max: number | null;
  mean: number | null;
}

export const DEFAULT_STITCH_DOWNSAMPLE = 16;

/** Stitch predictions over a slide of `level0` into `<out>/<name>.png` (16-bit grey, 65535 = 1) and `<out>/<name>.json`. */
export async function stitch(predictions: readonly Prediction[], level0: { width: number; height: number }, options: StitchOptions): Promise<StitchResult> {
  const grid = stitchGrid(level0, options.downsample ?? DEFAULT_STITCH_DOWNSAMPLE);
  const name = options.name ?? 'probability';
  const png = path.join(options.out, `${name}.png`);
  const json = path.join(options.out, `${name}.json`);
  const window = options.window ?? 'gaussian';
  if (!STITCH_WINDOWS.includes(window)) throw new ToolboxError('window', `must be one of ${STITCH_WINDOWS.join(', ')}, got ${String(window)}`);
  const stripHeight = requireWhole('stripHeight', options.stripHeight ?? DEFAULT_STRIP_HEIGHT, 1);
  for (const p of predictions) checkPrediction(p, level0);
  const writer = GreyPng16Writer.open(png, grid.width, grid.height);
  let covered = 0;
  let min = Infinity;
  let max = -Infinity;
  let total = 0;
  try {
    await stitchStrips(predictions, grid, { ...options, window, stripHeight }, async ({ probability, weight }) => {
      const samples = new Uint16Array(probability.length);
      for (let i = 0; i < probability.length; i++) {
        const p = probability[i]!;
        samples[i] = quantise16(p);
        if (weight[i]! > 0) {
          covered++;
          total += p;
          if (p < min) min = p;
          if (p > max) max = p;
        }
      }
      await writer.writeRows(samples);
    });
    await writer.finish();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  const stats = covered > 0 ? { min, max, mean: total / covered } : { min: null, max: null, mean: null };
  await writeJson(json, {
    tool: 'stitch',
    ...options.extra,
    level0,
    map: { width: grid.width, height: grid.height, file: path.basename(png), encoding: '16-bit grey: value / 65535 is the probability; pixels no patch covers are 0' },
    downsample: grid.downsample,
    window,
    windowFloor: WINDOW_FLOOR,
    stripHeight,
    patches: predictions.length,
    coveredPixels: covered,
    coveredFraction: covered / (grid.width * grid.height),
    ...stats,
  });
  return { png, json, grid, patches: predictions.length, coveredPixels: covered, ...stats };
}
