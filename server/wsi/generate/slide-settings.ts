/** makeSlide's options, checked and completed with their defaults, and the pyramid they describe. */
import { STAIN_KINDS, type StainKind } from './tissue.js';

export const MPP = 0.499;
export const OBJECTIVE_POWER = 20;

export interface MakeSlideOptions {
  width: number;
  height: number;
  /** Tile edge in pixels, a multiple of 16 (default 240, as Aperio). */
  tileSize?: number;
  /** Pyramid levels, each 4× smaller (default: until the smallest is ≤ 2048 px on its longer side). */
  levels?: number;
  /** Default 1. */
  seed?: number;
  /** JPEG quality 1–100 (default 75). */
  quality?: number;
  /** Folder for the three files (made if missing). */
  out: string;
  /** Base file name (default `synthetic-<seed>`). */
  name?: string;
  /** Write BigTIFF even when classic TIFF would do. */
  bigtiff?: boolean;
  /** `he` (default): H&E; `ihc`: haematoxylin counterstain with brown DAB in the marker-positive tumour. */
  stain?: StainKind;
  /** `svs` (default): Aperio SVS; `ndpi`: Hamamatsu NDPI, one JPEG strip per level with restart markers. */
  format?: SlideFormatName;
  /**
   * NDPI: MCUs (8 pixels each) between restart markers, at most; each level
   * uses the largest count up to this that divides its row of MCUs (default 32).
   */
  restartInterval?: number;
  /**
   * NDPI: where the first strip starts, after a hole (sparse where the file
   * system allows): a file past 4 GiB, to exercise NDPI's 64-bit offsets,
   * without writing 4 GiB. Default: right after the header.
   */
  ndpiDataOffset?: number;
  onProgress?: (done: number, total: number) => void;
  /** Stops the work; nothing is left behind. */
  signal?: AbortSignal;
}

export interface LevelInfo {
  width: number;
  height: number;
  /** As OpenSlide computes it: the mean of the two axes' ratios to level 0. */
  downsample: number;
}

/** An option a caller got wrong: `option` names it, `problem` says what is wrong (the message is both). */
export class SlideOptionsError extends Error {
  readonly option: keyof MakeSlideOptions;
  readonly problem: string;

  constructor(option: keyof MakeSlideOptions, problem: string) {
    super(`${option} ${problem}`);
    this.name = 'SlideOptionsError';
    this.option = option;
    this.problem = problem;
  }
}

export const LIMITS = { minSize: 256, maxSize: 1_000_000, minTile: 16, maxTile: 4096, maxRestartInterval: 4096 } as const;

export type SlideFormatName = 'svs' | 'ndpi';
export const SLIDE_FORMATS: readonly SlideFormatName[] = ['svs', 'ndpi'];

/** Every option checked, with its default filled in. */
export interface SlideSettings {
  width: number;
  height: number;
  tileSize: number;
  levels: number;
  seed: number;
  quality: number;
  out: string;
  name: string;
  bigtiff: boolean;
  stain: StainKind;
  format: SlideFormatName;
  restartInterval: number;
  ndpiDataOffset: number;
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** Level count by default: 4× steps until the longer side is ≤ 2048. */
export function defaultLevelCount(width: number, height: number): number {
  let levels = 1;
  let longer = Math.max(width, height);
  while (longer > 2048) {
    longer = Math.floor(longer / 4);
    levels++;
  }
  return levels;
}

export function levelSizes(width: number, height: number, levels: number): LevelInfo[] {
  return Array.from({ length: levels }, (_, k) => {
    const w = Math.max(1, Math.floor(width / 4 ** k));
    const h = Math.max(1, Math.floor(height / 4 ** k));
    return { width: w, height: h, downsample: (width / w + height / h) / 2 };
  });
}

/** The options checked in order; the first one that is wrong throws a SlideOptionsError. */
export function slideSettings(options: MakeSlideOptions): SlideSettings {
  const { width, height } = checkSize(options);
  const tileSize = options.tileSize ?? 240;
  if (!isWhole(tileSize) || tileSize < LIMITS.minTile || tileSize > LIMITS.maxTile || tileSize % 16 !== 0) {
    throw new SlideOptionsError('tileSize', `must be a multiple of 16 from ${LIMITS.minTile} to ${LIMITS.maxTile}, got ${String(tileSize)}`);
  }
  const levels = checkLevels(options.levels, width, height);
  const seed = options.seed ?? 1;
  if (!isWhole(seed) || seed < 0 || seed > 0xffffffff) {
    throw new SlideOptionsError('seed', `must be a whole number from 0 to 4294967295, got ${String(seed)}`);
  }
  const quality = options.quality ?? 75;
  if (!isWhole(quality) || quality < 1 || quality > 100) {
    throw new SlideOptionsError('quality', `must be a whole number from 1 to 100, got ${String(quality)}`);
  }
  if (typeof options.out !== 'string' || options.out === '') throw new SlideOptionsError('out', 'is required: the folder to write the slide into');
  const name = options.name ?? `synthetic-${seed}`;
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name)) {
    throw new SlideOptionsError('name', `must be 1–100 letters, digits, '.', '_' or '-', starting with a letter or digit, got "${name}"`);
  }
  const stain = options.stain ?? 'he';
  if (!STAIN_KINDS.includes(stain)) throw new SlideOptionsError('stain', `must be one of ${STAIN_KINDS.join(', ')}, got ${String(stain)}`);
  const format = options.format ?? 'svs';
  if (!SLIDE_FORMATS.includes(format)) throw new SlideOptionsError('format', `must be one of ${SLIDE_FORMATS.join(', ')}, got ${String(format)}`);
  const restartInterval = options.restartInterval ?? 32;
  if (!isWhole(restartInterval) || restartInterval < 1 || restartInterval > LIMITS.maxRestartInterval) {
    throw new SlideOptionsError('restartInterval', `must be a whole number from 1 to ${LIMITS.maxRestartInterval} MCUs, got ${String(restartInterval)}`);
  }
  if (format === 'ndpi' && options.bigtiff === true) throw new SlideOptionsError('bigtiff', 'does not apply to NDPI, which is classic TIFF with 64-bit offsets of its own');
  const ndpiDataOffset = options.ndpiDataOffset ?? 16;
  if (!isWhole(ndpiDataOffset) || ndpiDataOffset < 16 || ndpiDataOffset > 2 ** 40) {
    throw new SlideOptionsError('ndpiDataOffset', `must be a whole number of bytes from 16 to 2^40, got ${String(ndpiDataOffset)}`);
  }
  return { width, height, tileSize, levels, seed, quality, out: options.out, name, bigtiff: options.bigtiff === true, stain, format, restartInterval, ndpiDataOffset };
}

function checkSize({ width, height }: MakeSlideOptions): { width: number; height: number } {
  for (const [name, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!isWhole(value) || value < LIMITS.minSize || value > LIMITS.maxSize) {
      throw new SlideOptionsError(name, `must be a whole number from ${LIMITS.minSize} to ${LIMITS.maxSize}, got ${String(value)}`);
    }
  }
  return { width, height };
}

/** The level count asked for (or the default), at most as many as 4× steps leave at least a pixel. */
function checkLevels(asked: number | undefined, width: number, height: number): number {
  let maxLevels = 1;
  while (Math.floor(Math.min(width, height) / 4 ** maxLevels) >= 1) maxLevels++;
  const levels = asked ?? defaultLevelCount(width, height);
  if (!isWhole(levels) || levels < 1 || levels > maxLevels) {
    throw new SlideOptionsError('levels', `must be a whole number from 1 to ${maxLevels} for a ${width}x${height} slide, got ${String(levels)}`);
  }
  return levels;
}
