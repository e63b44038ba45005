/**
 * Heat maps from a probability map (the stitch output, or a 0/255 mask):
 * colour-mapped (jet or viridis) with transparency by probability (alpha = p,
 * and 0 below the cut-off), written as a static overview PNG and as a Deep
 * Zoom pyramid of RGBA PNG tiles that lies exactly on the slide's own Deep
 * Zoom grid (same size, levels, tile size and overlap), so that a viewer can
 * stack it on the slide as an overlay layer.
 *
 * The map covers the whole slide like the masks do: map pixel (i, j) stands
 * for the level-0 point ((i + ½)·W / width, (j + ½)·H / height). A Deep Zoom
 * pixel is coloured from the map at its own centre, by nearest or bilinear
 * sampling of the 16-bit values, through a 65536-entry colour table.
 *
 * Output: `<out>/<name>_files/<level>/<col>_<row>.png`, `<out>/<name>.png`
 * (overview), `<out>/<name>.json` (sidecar), and `<out>/<name>.dzi` written
 * last — a folder without the .dzi is not a result. The tiles are written
 * under `<name>_files.partial` and renamed when complete.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { deepZoomDescriptor, deepZoomGeometry, deepZoomTileRect, type DeepZoomGrid, type DeepZoomLevel } from '../wsi/index.js';
import { requireNumber, requireWhole, ToolboxError } from './errors.js';
import { MAX_MASK_PIXELS, writeJson } from './mask.js';
import { readGreyImage } from './png-stream.js';

export type Colormap = 'jet' | 'viridis';
export const COLORMAPS: readonly Colormap[] = ['jet', 'viridis'];
export type Sampling = 'nearest' | 'bilinear';

/** Overlay names: what the tile routes accept. */
export const OVERLAY_NAME = /^[a-z0-9-]{1,64}$/;
/** The overview's longer side at most. */
export const OVERVIEW_MAX_SIDE = 2048;
const ENCODES = 8;

/** A probability map over a whole slide: 16-bit samples (65535 = 1), row by row. */
export interface ProbabilityMap {
  width: number;
  height: number;
  data: Uint16Array;
  level0: { width: number; height: number };
}

/** Read an 8- or 16-bit grey PNG (or TIFF) as a probability map over a slide of `level0`; 8-bit 255 is 1. */
export async function loadProbabilityMap(file: string, level0: { width: number; height: number }): Promise<ProbabilityMap> {
  let meta;
  try {
    meta = await sharp(file, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ToolboxError('map', `cannot read ${file}: ${(error as Error).message}`);
  }
  const { width = 0, height = 0 } = meta;
  if (width * height > MAX_MASK_PIXELS) throw new ToolboxError('map', `is ${width}×${height}, over the ${MAX_MASK_PIXELS} pixels kept in memory; stitch at a larger downsample`);
  const channels = (meta.channels ?? 0) - (meta.hasAlpha ? 1 : 0);
  if (channels !== 1) throw new ToolboxError('map', `must be a grey image (one channel), but ${path.basename(file)} has ${channels} colour channels`);
  if (width > level0.width || height > level0.height) throw new ToolboxError('map', `is ${width}×${height}, larger than the ${level0.width}×${level0.height} slide: is it this slide's map?`);
  const image = await readGreyImage(file);
  let samples: Uint16Array;
  if (image.scale === 65535) samples = image.data as Uint16Array;
  else {
    samples = new Uint16Array(image.data.length);
    for (let i = 0; i < samples.length; i++) samples[i] = image.data[i]! * 257;
  }
  return { width, height, data: samples, level0 };
}

const VIRIDIS = ['440154', '482878', '3e4a89', '31688e', '26828e', '1f9e89', '35b779', '6dcd59', 'b4de2c', 'fde725'].map((hex) => [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)));

/** The colour (0–255 each) of probability p ∈ [0, 1]: jet (MATLAB's) or viridis (matplotlib's, from 10 stops). */
export function colourOf(colormap: Colormap, p: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, p));
  if (colormap === 'jet') {
    const c = (x: number) => Math.round(255 * Math.min(1, Math.max(0, x)));
    return [c(1.5 - Math.abs(4 * v - 3)), c(1.5 - Math.abs(4 * v - 2)), c(1.5 - Math.abs(4 * v - 1))];
  }
  const f = v * (VIRIDIS.length - 1);
  const k = Math.min(VIRIDIS.length - 2, Math.floor(f));
  const t = f - k;
  const [a, b] = [VIRIDIS[k]!, VIRIDIS[k + 1]!];
  return [0, 1, 2].map((i) => Math.round(a[i]! + (b[i]! - a[i]!) * t)) as [number, number, number];
}

/** RGBA per 16-bit sample, as 32-bit words over the same byte layout as an RGBA buffer. */
export function colourTable(colormap: Colormap, cutoff: number): Uint32Array {
  const bytes = new Uint8Array(65536 * 4);
  for (let v = 0; v < 65536; v++) {
    const p = v / 65535;
    const [r, g, b] = colourOf(colormap, p);
    bytes.set([r, g, b, p < cutoff ? 0 : Math.round(255 * p)], v * 4);
  }
  return new Uint32Array(bytes.buffer);
}

/**
 * RGBA pixels of the rectangle `rect` of an image of `imageWidth` × `imageHeight`
 * laid over the whole slide (a Deep Zoom level, or the overview).
 */
export function renderRegion(
  map: ProbabilityMap,
  table: Uint32Array,
  imageWidth: number,
  imageHeight: number,
  rect: { x: number; y: number; width: number; height: number },
  sampling: Sampling,
): { data: Buffer; empty: boolean } {
  const out = Buffer.alloc(rect.width * rect.height * 4);
  const words = new Uint32Array(out.buffer, out.byteOffset, rect.width * rect.height);
  const { width: mw, height: mh, data } = map;
  // Map coordinates (in pixel-centre units) of each output column and row.
  const fx = new Float64Array(rect.width);
  for (let i = 0; i < rect.width; i++) fx[i] = ((rect.x + i + 0.5) * mw) / imageWidth - 0.5;
  let empty = true;
  if (sampling === 'nearest') {
    const cols = new Int32Array(rect.width);
    for (let i = 0; i < rect.width; i++) cols[i] = Math.min(mw - 1, Math.max(0, Math.round(fx[i]!)));
    let previous = -1;
    for (let j = 0; j < rect.height; j++) {
      const my = Math.min(mh - 1, Math.max(0, Math.round(((rect.y + j + 0.5) * mh) / imageHeight - 0.5)));
      const o = j * rect.width;
      if (my === previous) {
        words.copyWithin(o, o - rect.width, o); // the same map row as the last: the same pixels
        continue;
      }
      previous = my;
      const base = my * mw;
      for (let i = 0; i < rect.width; i++) words[o + i] = table[data[base + cols[i]!]!]!;
    }
  } else {
    const x0 = new Int32Array(rect.width);
    const tx = new Float64Array(rect.width);
    for (let i = 0; i < rect.width; i++) {
      const f = Math.min(mw - 1, Math.max(0, fx[i]!));
      x0[i] = Math.min(mw - 2, Math.floor(f));
      tx[i] = mw === 1 ? 0 : f - x0[i]!;
      if (mw === 1) x0[i] = 0;
    }
    for (let j = 0; j < rect.height; j++) {
      const f = Math.min(mh - 1, Math.max(0, ((rect.y + j + 0.5) * mh) / imageHeight - 0.5));
      const y0 = mh === 1 ? 0 : Math.min(mh - 2, Math.floor(f));
      const ty = mh === 1 ? 0 : f - y0;
      const r0 = y0 * mw;
      const r1 = mh === 1 ? r0 : r0 + mw;
      const o = j * rect.width;
      for (let i = 0; i < rect.width; i++) {
        const a = x0[i]!;
        const b = mw === 1 ? a : a + 1;
        const t = tx[i]!;
        const top = data[r0 + a]! + (data[r0 + b]! - data[r0 + a]!) * t;
        const bottom = data[r1 + a]! + (data[r1 + b]! - data[r1 + a]!) * t;
        words[o + i] = table[Math.round(top + (bottom - top) * ty)]!;
      }
    }
  }
  for (let k = 0; k < words.length; k++) {
    if (out[4 * k + 3] !== 0) {
      empty = false;
      break;
    }
  }
  return { data: out, empty };
}

export interface HeatmapOptions {
  /** Folder for `<name>.dzi`, `<name>_files/`, `<name>.png` and `<name>.json`. */
  out: string;
  /** Overlay name, [a-z0-9-]{1,64} (default "heatmap"). */
  name?: string;
  colormap?: Colormap;
  /** Probabilities below this are transparent (default 0: alpha = p everywhere). */
  cutoff?: number;
  /** The slide's Deep Zoom grid, as the tile server serves it. */
  grid: DeepZoomGrid;
  sampling?: Sampling;
  /** Facts recorded in the sidecar (e.g. the slide and map files). */
  extra?: Record<string, unknown>;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface HeatmapResult {
  dzi: string;
  tilesDir: string;
  overview: string;
  json: string;
  levels: DeepZoomLevel[];
  tiles: number;
  /** Tiles with no visible pixel (written as fully transparent PNGs). */
  emptyTiles: number;
}

/** Check the options before any work; a ToolboxError names the first wrong one. */
export function planHeatmap(options: Omit<HeatmapOptions, 'out'>) {
  const name = options.name ?? 'heatmap';
  if (!OVERLAY_NAME.test(name)) throw new ToolboxError('name', `must be 1 to 64 of a-z, 0-9 and '-', got "${name}"`);
  const colormap = options.colormap ?? 'jet';
  if (!COLORMAPS.includes(colormap)) throw new ToolboxError('colormap', `must be jet or viridis, got ${String(colormap)}`);
  const cutoff = requireNumber('cutoff', options.cutoff ?? 0, 0, 1);
  const sampling = options.sampling ?? 'nearest';
  if (sampling !== 'nearest' && sampling !== 'bilinear') throw new ToolboxError('sampling', `must be nearest or bilinear, got ${String(sampling)}`);
  requireWhole('tileSize', options.grid.tileSize, 1, 8192);
  requireWhole('overlap', options.grid.overlap, 0, Math.floor(options.grid.tileSize / 2));
  return { name, colormap, cutoff, sampling, grid: options.grid };
}

/** Write the overview, the sidecar and the overlay pyramid of `map`. */
export async function heatmap(map: ProbabilityMap, options: HeatmapOptions): Promise<HeatmapResult> {
  const { name, colormap, cutoff, sampling, grid } = planHeatmap(options);
  const { width: W, height: H } = map.level0;
  const geometry = deepZoomGeometry(W, H, grid);
  const table = colourTable(colormap, cutoff);
  await mkdir(options.out, { recursive: true });
  const dzi = path.join(options.out, `${name}.dzi`);
  const tilesDir = path.join(options.out, `${name}_files`);
  const partial = `${tilesDir}.partial`;
  const overview = path.join(options.out, `${name}.png`);
  const json = path.join(options.out, `${name}.json`);
  // A republished overlay is not a result until it is complete again.
  await rm(dzi, { force: true });
  await rm(partial, { recursive: true, force: true });

  const total = geometry.levels.reduce((n, l) => n + l.cols * l.rows, 0);
  const limit = pLimit(ENCODES);
  const blanks = new Map<string, Promise<Buffer>>();
  const blank = (w: number, h: number) => {
    const key = `${w}x${h}`;
    if (!blanks.has(key)) blanks.set(key, sharp(Buffer.alloc(w * h * 4), { raw: { width: w, height: h, channels: 4 } }).png().toBuffer());
    return blanks.get(key)!;
  };
  let done = 0;
  let emptyTiles = 0;
  const inFlight = new Set<Promise<void>>();
  try {
    for (const [level, dz] of geometry.levels.entries()) {
      await mkdir(path.join(partial, String(level)), { recursive: true });
      for (let row = 0; row < dz.rows; row++) {
        for (let col = 0; col < dz.cols; col++) {
          if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
          const rect = deepZoomTileRect(geometry.levels, grid, { level, col, row });
          const pixels = renderRegion(map, table, dz.width, dz.height, rect, sampling);
          if (pixels.empty) emptyTiles++;
          const file = path.join(partial, String(level), `${col}_${row}.png`);
          const task = limit(async () => {
            const body = pixels.empty
              ? await blank(rect.width, rect.height)
              : await sharp(pixels.data, { raw: { width: rect.width, height: rect.height, channels: 4 } }).png({ compressionLevel: 2 }).toBuffer();
            await writeFile(file, body);
            options.onProgress?.(++done, total);
          });
          inFlight.add(task);
          void task.then(
            () => inFlight.delete(task),
            () => inFlight.delete(task),
          );
          // Bounded memory: a few tiles per encoder in flight.
          if (inFlight.size >= 4 * ENCODES) await Promise.race(inFlight);
        }
      }
    }
    await Promise.all(inFlight);
  } catch (error) {
    await Promise.allSettled(inFlight);
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
  await rm(tilesDir, { recursive: true, force: true });
  await rename(partial, tilesDir);

  const scale = Math.min(1, OVERVIEW_MAX_SIDE / Math.max(map.width, map.height));
  const ow = Math.max(1, Math.round(map.width * scale));
  const oh = Math.max(1, Math.round(map.height * scale));
  const view = renderRegion(map, table, ow, oh, { x: 0, y: 0, width: ow, height: oh }, sampling);
  await sharp(view.data, { raw: { width: ow, height: oh, channels: 4 } }).png().toFile(`${overview}.partial`);
  await rename(`${overview}.partial`, overview);
  await writeJson(json, {
    tool: 'heatmap',
    ...options.extra,
    name,
    level0: map.level0,
    map: { width: map.width, height: map.height },
    overview: { file: path.basename(overview), width: ow, height: oh },
    colormap,
    cutoff,
    alpha: cutoff > 0 ? `probability, 0 below ${cutoff}` : 'probability',
    sampling,
    deepZoom: { tileSize: grid.tileSize, overlap: grid.overlap, format: 'png', levels: geometry.levels.length, tiles: total, emptyTiles },
  });
  await writeFile(`${dzi}.partial`, deepZoomDescriptor(W, H, grid, 'png'));
  await rename(`${dzi}.partial`, dzi);
  return { dzi, tilesDir, overview, json, levels: geometry.levels, tiles: total, emptyTiles };
}
