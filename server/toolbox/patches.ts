/**
 * Patch generation and classification: a grid of size × size patches with a
 * stride over one stored level; a patch is kept when the tissue mask covers
 * at least `tissueThreshold` of it, and labelled tumour / non-tumour from an
 * annotation layer's mask. Fractions are taken over the mask pixels whose
 * centres fall inside the patch (the nearest one when none does), through a
 * summed-area table, so each costs O(1).
 *
 * Memory stays bounded whatever the slide: pixels are read one row of patches
 * at a time (split where a row would exceed 16 Mpx or has a long gap), and the
 * masks are at low resolution. The index (patches.json, patches.csv) is
 * written last, through temporary names: a folder without it is not a result.
 */
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import type { AperioAnnotations } from '../annotations/index.js';
import { csvText } from '../lib/csv.js';
import type { RgbImage, Slide } from '../wsi/index.js';
import { requireNumber, requireWhole, ToolboxError } from './errors.js';
import { writeJson, type Mask } from './mask.js';
import { firstCentreFrom } from './raster.js';
import { tissueMask, tissueMaskGeometry, type TissueMask, type TissueMaskOptions } from './tissue-mask.js';
import { DEFAULT_XML_DOWNSAMPLE, LAYER_PRESETS, layerMask, selectLayers, xmlMaskGrid, type LayerName } from './xml-masks.js';

export type PatchFormat = 'png' | 'jpeg';
export type PatchLabel = 'tumour' | 'non-tumour';

export interface PatchesOptions {
  /** Folder for `patches/`, `patches.json` and `patches.csv`; `patches/` must be absent or empty. */
  out: string;
  /** Stored level (default 0). */
  level?: number;
  /** Objective magnification instead of a level (e.g. 5 on a 20× slide): must match a stored level within 2%. */
  magnification?: number;
  /** Patch edge in pixels of the level (default 256). */
  size?: number;
  /** Step between patches in pixels of the level (default: the size). */
  stride?: number;
  /** Keep a patch whose tissue fraction is at least this (default 0.5; 0 keeps every patch). */
  tissueThreshold?: number;
  /** A tissue mask made earlier; computed with `tissueOptions` when absent. */
  tissueMask?: TissueMask;
  tissueOptions?: Omit<TissueMaskOptions, 'onProgress'>;
  /** The slide's annotations: labels come from them. */
  annotations?: AperioAnnotations;
  /** Label the patches (default: when annotations are given; true without them is an error). */
  labels?: boolean;
  /** The tumour layer: an Annotation Id, or a name from `layers` (default "viable"). */
  tumourLayer?: number | string;
  /** Layer names per cancer type (default the paip2019 preset: 1 whole, 2 viable). */
  layers?: readonly LayerName[];
  /** Label tumour when the tumour fraction is at least this (default 0.5). */
  tumourThreshold?: number;
  /** Downsample of the tumour mask (default 16). */
  maskDownsample?: number;
  format?: PatchFormat;
  /** JPEG quality 1–100 (default 90). */
  quality?: number;
  /** Stop after this many kept patches (in row order). */
  limit?: number;
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

export interface PatchRecord {
  file: string;
  /** Level-0 position of the top-left corner. */
  x: number;
  y: number;
  level: number;
  /** Edge in pixels of the level. */
  size: number;
  /** Position in pixels of the level. */
  levelX: number;
  levelY: number;
  tissueFraction: number;
  tumourFraction: number | null;
  label: PatchLabel | null;
}

export interface PatchesParameters {
  level: number;
  levelDownsample: { x: number; y: number };
  magnification: number | null;
  size: number;
  stride: number;
  tissueThreshold: number;
  labels: boolean;
  tumourLayer: { id: number; name: string } | null;
  tumourThreshold: number | null;
  maskDownsample: number | null;
  format: PatchFormat;
  quality: number | null;
  limit: number | null;
}

export interface PatchesResult {
  patches: PatchRecord[];
  /** Grid positions examined. */
  candidates: number;
  parameters: PatchesParameters;
  index: { json: string; csv: string };
  tissue: { downsample: { x: number; y: number }; threshold: number; rule: string };
}

/** Longest row segment read at once, in pixels of the level. */
const MAX_SEGMENT_PIXELS = 16 * 1024 * 1024;
/** Largest patch edge: one patch is read in a single region of at most 64 Mpx. */
export const MAX_PATCH_SIZE = 8192;
/** Encodes in flight (sharp runs them on libuv's pool). */
const ENCODES = 8;

/** Counts of set pixels in every rectangle of a mask in O(1): a summed-area table. */
class MaskSums {
  private readonly sums: Uint32Array;
  private readonly stride: number;

  constructor(private readonly mask: Mask) {
    const { width, height, data } = mask;
    this.stride = width + 1;
    this.sums = new Uint32Array((width + 1) * (height + 1));
    for (let y = 0; y < height; y++) {
      let row = 0;
      for (let x = 0; x < width; x++) {
        row += data[y * width + x] ? 1 : 0;
        this.sums[(y + 1) * this.stride + x + 1] = this.sums[y * this.stride + x + 1]! + row;
      }
    }
  }

  /** Fraction of the mask pixels with centres in the level-0 rectangle [x0, x1) × [y0, y1); the nearest pixel when none. */
  fraction(x0: number, y0: number, x1: number, y1: number): number {
    const { width, height, downsample, data } = this.mask;
    const i0 = Math.max(0, firstCentreFrom(x0, downsample.x));
    const i1 = Math.min(width, firstCentreFrom(x1, downsample.x));
    const j0 = Math.max(0, firstCentreFrom(y0, downsample.y));
    const j1 = Math.min(height, firstCentreFrom(y1, downsample.y));
    if (i1 <= i0 || j1 <= j0) {
      const i = Math.min(width - 1, Math.max(0, Math.floor((x0 + x1) / 2 / downsample.x)));
      const j = Math.min(height - 1, Math.max(0, Math.floor((y0 + y1) / 2 / downsample.y)));
      return data[j * width + i] ? 1 : 0;
    }
    const s = this.sums;
    const w = this.stride;
    const count = s[j1 * w + i1]! - s[j0 * w + i1]! - s[j1 * w + i0]! + s[j0 * w + i0]!;
    return count / ((i1 - i0) * (j1 - j0));
  }
}

/** The stored level for `magnification` on a slide of `objectivePower` (within 2%), or a ToolboxError. */
function levelForMagnification(slide: Slide, magnification: number): number {
  requireNumber('magnification', magnification, Number.MIN_VALUE);
  const power = slide.objectivePower;
  if (!power) throw new ToolboxError('magnification', 'needs a slide that records its objective power; give a level instead');
  const wanted = power / magnification;
  const level = slide.levels.findIndex((l) => Math.abs(l.downsample - wanted) <= 0.02 * wanted);
  if (level < 0) {
    const available = slide.levels.map((l) => `${+(power / l.downsample).toFixed(3)}×`).join(', ');
    throw new ToolboxError('magnification', `${magnification}× is not a stored level of this ${power}× slide (stored: ${available})`);
  }
  return level;
}

interface Plan {
  level: number;
  levelWidth: number;
  levelHeight: number;
  ds: { x: number; y: number };
  size: number;
  stride: number;
  tissueThreshold: number;
  labels: boolean;
  tumourLayer: { id: number; name: string } | null;
  tumourThreshold: number;
  maskDownsample: number;
  format: PatchFormat;
  quality: number;
  limit: number | null;
}

/** Check every option against the slide before any work; a ToolboxError names the first one that is wrong. */
export function planPatches(slide: Slide, options: Omit<PatchesOptions, 'out'>): Plan {
  if (options.level !== undefined && options.magnification !== undefined) throw new ToolboxError('level', 'and magnification exclude each other; give one');
  const level =
    options.magnification !== undefined ? levelForMagnification(slide, options.magnification) : requireWhole('level', options.level ?? 0, 0, slide.levels.length - 1);
  const info = slide.levels[level]!;
  const size = requireWhole('size', options.size ?? 256, 1, MAX_PATCH_SIZE);
  if (size > info.width || size > info.height) throw new ToolboxError('size', `${size} is larger than level ${level} (${info.width}×${info.height})`);
  const stride = requireWhole('stride', options.stride ?? size, 1);
  if (stride > info.width || stride > info.height) throw new ToolboxError('stride', `${stride} is larger than level ${level} (${info.width}×${info.height})`);
  const tissueThreshold = requireNumber('tissueThreshold', options.tissueThreshold ?? 0.5, 0, 1);
  const tumourThreshold = requireNumber('tumourThreshold', options.tumourThreshold ?? 0.5, 0, 1);
  const format = options.format ?? 'png';
  if (format !== 'png' && format !== 'jpeg') throw new ToolboxError('format', `must be png or jpeg, got ${String(format)}`);
  const quality = requireWhole('quality', options.quality ?? 90, 1, 100);
  const limit = options.limit === undefined ? null : requireWhole('limit', options.limit, 1);
  const labels = options.labels ?? options.annotations !== undefined;
  if (labels && !options.annotations) throw new ToolboxError('labels', 'need the slide\'s annotation XML; give one, or ask for no labels');
  const maskDownsample = options.maskDownsample ?? DEFAULT_XML_DOWNSAMPLE;
  if (!options.tissueMask) {
    const tissue = options.tissueOptions ?? {};
    renamed('tissue.', () => tissueMaskGeometry(slide, tissue));
    if (tissue.method !== undefined && tissue.method !== 'grey' && tissue.method !== 'saturation') {
      throw new ToolboxError('tissue.method', `must be grey or saturation, got ${String(tissue.method)}`);
    }
  }
  let tumourLayer: Plan['tumourLayer'] = null;
  if (labels) {
    renamed('maskDownsample', () => xmlMaskGrid(slide.width, slide.height, maskDownsample));
    const mapping = options.layers ?? LAYER_PRESETS.paip2019!;
    const wanted = options.tumourLayer ?? 'viable';
    const named = typeof wanted === 'number' ? mapping.find((l) => l.id === wanted) ?? { id: wanted, name: `layer-${wanted}` } : mapping.find((l) => l.name === wanted);
    if (!named) throw new ToolboxError('tumourLayer', `"${wanted}" is not a layer name of the mapping (${mapping.map((l) => `${l.id}=${l.name}`).join(', ')})`);
    renamed('tumourLayer', () => selectLayers(options.annotations!, [named]));
    tumourLayer = named;
  }
  return {
    level,
    levelWidth: info.width,
    levelHeight: info.height,
    ds: { x: slide.width / info.width, y: slide.height / info.height },
    size,
    stride,
    tissueThreshold,
    labels,
    tumourLayer,
    tumourThreshold,
    maskDownsample,
    format,
    quality,
    limit,
  };
}

/** Run a check whose ToolboxError should name `parameter` (or, ending in '.', the prefixed parameter it names). */
function renamed(parameter: string, check: () => unknown): void {
  try {
    check();
  } catch (error) {
    if (error instanceof ToolboxError) throw new ToolboxError(parameter.endsWith('.') ? `${parameter}${error.parameter}` : parameter, error.problem);
    throw error;
  }
}

/** Generate, classify and write patches. Options are checked before anything is read or written. */
export async function generatePatches(slide: Slide, options: PatchesOptions): Promise<PatchesResult> {
  const plan = planPatches(slide, options);
  const patchDir = path.join(options.out, 'patches');
  await requireEmptyFolder(patchDir);
  const stopIfAborted = () => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
  };
  const tissue = options.tissueMask ?? (await tissueMask(slide, { ...options.tissueOptions, onProgress: stopIfAborted }));
  const grid = choosePatches(plan, new MaskSums(tissue), tumourSums(slide, plan, options.annotations));
  await mkdir(patchDir, { recursive: true });
  try {
    await writePatchImages(slide, plan, grid, options, stopIfAborted);
  } catch (error) {
    // No half-written folder of patches is left to pass for a result.
    await rm(patchDir, { recursive: true, force: true });
    throw error;
  }
  const patches = grid.rows.flat();
  const parameters = parametersOf(slide, plan);
  const tissueFacts = { downsample: tissue.downsample, threshold: tissue.threshold, rule: tissue.rule };
  const index = { json: path.join(options.out, 'patches.json'), csv: path.join(options.out, 'patches.csv') };
  await writeCsv(index.csv, patches);
  await writeJson(index.json, {
    tool: 'patches',
    slide: path.basename(slide.path),
    level0: { width: slide.width, height: slide.height },
    parameters,
    tissueMask: { ...tissueFacts, parameters: tissue.parameters },
    candidates: grid.candidates,
    count: patches.length,
    patches,
  });
  return { patches, candidates: grid.candidates, parameters, index, tissue: tissueFacts };
}

async function requireEmptyFolder(patchDir: string): Promise<void> {
  const existing = await readdir(patchDir).catch(() => [] as string[]);
  if (existing.length > 0) throw new ToolboxError('out', `${patchDir} already holds ${existing.length} file(s); choose an empty folder`);
}

/** The tumour layer's mask, for labels; undefined when the patches are not labelled. */
function tumourSums(slide: Slide, plan: Plan, annotations: AperioAnnotations | undefined): MaskSums | undefined {
  if (!plan.tumourLayer) return undefined;
  const { layer } = selectLayers(annotations!, [plan.tumourLayer])[0]!;
  return new MaskSums(layerMask(layer, plan.tumourLayer.name, xmlMaskGrid(slide.width, slide.height, plan.maskDownsample)));
}

/** The patches kept, grid row by grid row (rows without one left out), and the grid positions examined. */
interface ChosenPatches {
  rows: PatchRecord[][];
  count: number;
  candidates: number;
}

/** Every grid position with enough tissue, labelled from the tumour mask when there is one, up to the limit. */
function choosePatches(plan: Plan, tissue: MaskSums, tumour: MaskSums | undefined): ChosenPatches {
  const { size, stride } = plan;
  const columns = Math.floor((plan.levelWidth - size) / stride) + 1;
  const gridRows = Math.floor((plan.levelHeight - size) / stride) + 1;
  const rows: PatchRecord[][] = [];
  let count = 0;
  const full = () => plan.limit !== null && count >= plan.limit;
  for (let r = 0; r < gridRows && !full(); r++) {
    const row: PatchRecord[] = [];
    for (let c = 0; c < columns && !full(); c++) {
      const patch = patchAt(plan, c * stride, r * stride, tissue, tumour);
      if (!patch) continue;
      row.push(patch);
      count++;
    }
    if (row.length > 0) rows.push(row);
  }
  return { rows, count, candidates: gridRows * columns };
}

/** The patch at a position of the level, or undefined when it has too little tissue. */
function patchAt(plan: Plan, levelX: number, levelY: number, tissue: MaskSums, tumour: MaskSums | undefined): PatchRecord | undefined {
  const { level, size, ds } = plan;
  const x0 = levelX * ds.x;
  const x1 = (levelX + size) * ds.x;
  const y0 = levelY * ds.y;
  const y1 = (levelY + size) * ds.y;
  const tissueFraction = tissue.fraction(x0, y0, x1, y1);
  if (tissueFraction < plan.tissueThreshold) return undefined;
  const tumourFraction = tumour ? tumour.fraction(x0, y0, x1, y1) : null;
  const x = Math.round(x0);
  const y = Math.round(y0);
  return {
    file: `patches/L${level}_x${x}_y${y}.${plan.format === 'jpeg' ? 'jpg' : 'png'}`,
    x,
    y,
    level,
    size,
    levelX,
    levelY,
    tissueFraction,
    tumourFraction,
    label: tumourFraction === null ? null : tumourFraction >= plan.tumourThreshold ? 'tumour' : 'non-tumour',
  };
}

/** A run of patches' pixels: `width` pixels of the level from `sx`, `size` rows high. */
interface RunPixels {
  sx: number;
  width: number;
  pixels: RgbImage;
}

/** Each patch read, encoded and written; the next run is read while the current one is encoded. */
async function writePatchImages(slide: Slide, plan: Plan, grid: ChosenPatches, options: PatchesOptions, stopIfAborted: () => void): Promise<void> {
  const limitEncodes = pLimit(ENCODES);
  let done = 0;
  options.onProgress?.(0, grid.count);
  const runs = grid.rows.flatMap((row) => segments(row, plan.size));
  const read = (run: PatchRecord[]): Promise<RunPixels> => {
    const sx = run[0]!.levelX;
    const width = run[run.length - 1]!.levelX + plan.size - sx;
    return slide.readRegion(plan.level, sx, run[0]!.levelY, width, plan.size).then((pixels) => ({ sx, width, pixels }));
  };
  let next = runs.length > 0 ? read(runs[0]!) : undefined;
  for (const [k, run] of runs.entries()) {
    stopIfAborted();
    const pixels = await next!;
    next = k + 1 < runs.length ? read(runs[k + 1]!) : undefined;
    next?.catch(() => undefined); // a failure is thrown when it is awaited
    // Every write of the run settles before a failure is thrown, so that the clean-up never races a write.
    const settled = await Promise.allSettled(
      run.map((patch) =>
        limitEncodes(async () => {
          await writeFile(path.join(options.out, patch.file), await encodePatch(pixels, patch, plan));
          done++;
          options.onProgress?.(done, grid.count);
        }),
      ),
    );
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
}

/** One patch cut out of its run's pixels and encoded as PNG or JPEG. */
function encodePatch({ sx, width, pixels }: RunPixels, patch: PatchRecord, plan: Plan): Promise<Buffer> {
  const { size } = plan;
  const crop = Buffer.allocUnsafe(size * size * 3);
  const left = (patch.levelX - sx) * 3;
  for (let y = 0; y < size; y++) pixels.data.copy(crop, y * size * 3, y * width * 3 + left, y * width * 3 + left + size * 3);
  const image = sharp(crop, { raw: { width: size, height: size, channels: 3 } });
  return (plan.format === 'png' ? image.png({ compressionLevel: 1 }) : image.jpeg({ quality: plan.quality })).toBuffer();
}

/** The parameters as run, for the index: those that did not apply are null. */
function parametersOf(slide: Slide, plan: Plan): PatchesParameters {
  return {
    level: plan.level,
    levelDownsample: plan.ds,
    magnification: slide.objectivePower ? slide.objectivePower / slide.levels[plan.level]!.downsample : null,
    size: plan.size,
    stride: plan.stride,
    tissueThreshold: plan.tissueThreshold,
    labels: plan.labels,
    tumourLayer: plan.tumourLayer,
    tumourThreshold: plan.labels ? plan.tumourThreshold : null,
    maskDownsample: plan.labels ? plan.maskDownsample : null,
    format: plan.format,
    quality: plan.format === 'jpeg' ? plan.quality : null,
    limit: plan.limit,
  };
}

/** Runs of patches of one grid row read together: split at gaps wider than a patch and where a run would exceed MAX_SEGMENT_PIXELS. */
function segments(row: PatchRecord[], size: number): PatchRecord[][] {
  const out: PatchRecord[][] = [];
  let current: PatchRecord[] = [];
  for (const patch of row) {
    const first = current[0];
    const last = current[current.length - 1];
    if (first && last && (patch.levelX - (last.levelX + size) > size || (patch.levelX + size - first.levelX) * size > MAX_SEGMENT_PIXELS)) {
      out.push(current);
      current = [];
    }
    current.push(patch);
  }
  if (current.length > 0) out.push(current);
  return out;
}

const CSV_COLUMNS = ['file', 'x', 'y', 'level', 'size', 'level_x', 'level_y', 'tissue_fraction', 'tumour_fraction', 'label'] as const;

async function writeCsv(file: string, patches: readonly PatchRecord[]): Promise<void> {
  const rows = patches.map((p) => [p.file, p.x, p.y, p.level, p.size, p.levelX, p.levelY, round(p.tissueFraction), p.tumourFraction === null ? '' : round(p.tumourFraction), p.label ?? '']);
  const partial = `${file}.partial`;
  await writeFile(partial, csvText(rows, { columns: CSV_COLUMNS }));
  await rename(partial, file);
}

function round(value: number): number {
  return Math.round(value * 1e6) / 1e6;
}
