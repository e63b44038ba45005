/**
 * Checking a submission before it is scored: the archive (archive.ts), one
 * file per test slide named after it, and every mask's size, pixel format
 * and labels read in full. Every problem found is reported, not only the
 * first.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { extractArchive, type ArchiveFile, type ArchiveLimits } from './archive.js';
import { MaskError, openMask } from './mask-reader.js';
import { PREDICTIONS_FILE, readPredictions, type Prediction } from './predictions.js';
import type { ChallengeSlide, FileProblem, ScoringSpec, ValidationReport } from './types.js';

/** Problems that stop the reading of the archive: the slides after them are not said to be missing. */
const STOPS = new Set(['unreadable_archive', 'too_many_entries', 'too_large', 'compression_ratio']);

export const MASK_EXTENSIONS = ['.png', '.tif', '.tiff'] as const;

/** The labels a mask may hold, per task, and what each stands for. */
export const MASK_LABELS: Record<'segmentation' | 'tumour-burden', Readonly<Record<number, string>>> = {
  segmentation: { 0: 'background', 1: 'tumour', 255: 'tumour, as the toolbox writes it' },
  'tumour-burden': { 0: 'background', 1: 'tumour that is not viable', 2: 'viable tumour' },
};

/** The mask size of a slide: ⌈width / downsample⌉ × ⌈height / downsample⌉. */
export function maskSize(slide: Pick<ChallengeSlide, 'width' | 'height'>, downsample: number): { width: number; height: number } {
  return { width: Math.ceil(slide.width / downsample), height: Math.ceil(slide.height / downsample) };
}

/** A checked submission, its files still on disk in `dir` until `cleanup`. */
export interface Inspection {
  report: ValidationReport;
  masks: Map<string, ArchiveFile>;
  predictions: Map<string, Prediction>;
  cleanup(): Promise<void>;
}

export interface InspectOptions {
  limits?: ArchiveLimits;
  /** Where to make the scratch folder (default the system's temporary folder). */
  scratch?: string;
  /**
   * Read every pixel of every mask to check its labels (default true); the
   * scorer turns it off and checks the labels while it counts, in one pass.
   */
  checkLabels?: boolean;
}

export function checkSpec(spec: ScoringSpec): void {
  if (!['segmentation', 'tumour-burden', 'classification'].includes(spec.task)) throw new TypeError(`unknown challenge task "${String(spec.task)}"`);
  if (!(Number.isFinite(spec.maskDownsample) && spec.maskDownsample >= 1)) throw new TypeError(`maskDownsample must be at least 1, got ${spec.maskDownsample}`);
  if (!(spec.threshold >= 0 && spec.threshold <= 1)) throw new TypeError(`threshold must lie between 0 and 1, got ${spec.threshold}`);
  const names = new Set<string>();
  for (const slide of spec.slides) {
    if (names.has(slide.name)) throw new TypeError(`slide ${slide.name} is listed twice`);
    names.add(slide.name);
    if (!(Number.isInteger(slide.width) && slide.width >= 1 && Number.isInteger(slide.height) && slide.height >= 1)) {
      throw new TypeError(`slide ${slide.name} has the size ${slide.width}×${slide.height}`);
    }
  }
}

/** Unpack and check a submission; the caller scores from `masks`/`predictions` and then calls `cleanup`. */
export async function inspectSubmission(archivePath: string, spec: ScoringSpec, options: InspectOptions = {}): Promise<Inspection> {
  checkSpec(spec);
  const dir = await mkdtemp(path.join(options.scratch ?? os.tmpdir(), 'slidebank-submission-'));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const inspection = await inspect(archivePath, spec, dir, options.limits, options.checkLabels ?? true);
    return { ...inspection, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Check a submission against a phase: every problem, and which file stands for which slide. */
export async function validateSubmission(archivePath: string, spec: ScoringSpec, options: InspectOptions = {}): Promise<ValidationReport> {
  const inspection = await inspectSubmission(archivePath, spec, options);
  await inspection.cleanup();
  return inspection.report;
}

async function inspect(archivePath: string, spec: ScoringSpec, dir: string, limits: ArchiveLimits | undefined, checkLabels: boolean): Promise<Omit<Inspection, 'cleanup'>> {
  const problems: FileProblem[] = [];
  const masks = new Map<string, ArchiveFile>();
  let predictions = new Map<string, Prediction>();
  const files: { file: string; slide: string }[] = [];
  const classification = spec.task === 'classification';

  // Which slide a file name stands for: "<name>.png|.tif|.tiff" (any case of the extension), or predictions.csv.
  const slideOf = new Map<string, string>();
  if (!classification) for (const slide of spec.slides) for (const ext of MASK_EXTENSIONS) slideOf.set(`${slide.name}${ext}`, slide.name);
  const claimed = new Map<string, string>();
  const duplicates = new Set<string>();
  const fileKey = (base: string) => {
    const dot = base.lastIndexOf('.');
    return dot < 0 ? base : base.slice(0, dot) + base.slice(dot).toLowerCase();
  };
  const want = (entry: string, base: string): boolean => {
    const key = classification ? (base === PREDICTIONS_FILE ? PREDICTIONS_FILE : undefined) : slideOf.get(fileKey(base));
    if (key === undefined) return false;
    const first = claimed.get(key);
    if (first !== undefined) {
      const what = classification ? 'the predictions' : `slide ${key}`;
      problems.push({ file: entry, slide: classification ? null : key, code: 'duplicate', message: `"${entry}" is a second file for ${what} (the first is "${first}"); keep one.` });
      duplicates.add(entry); // not copied, and not an extra file either
      return false;
    }
    claimed.set(key, entry);
    return true;
  };

  const contents = await extractArchive(archivePath, dir, want, limits);
  problems.push(...contents.problems);
  for (const entry of contents.unwanted) {
    if (duplicates.has(entry)) continue;
    const example = classification ? PREDICTIONS_FILE : `"${spec.slides[0]?.name ?? 'slide'}.png"`;
    const rule = classification ? `a classification submission is one file, ${example}` : `masks are named after the test slides, such as ${example}`;
    problems.push({ file: entry, slide: null, code: 'extra_file', message: `"${entry}" is not a file this phase expects (${rule}); remove it.` });
  }

  if (classification) {
    const csv = contents.files[0];
    if (!csv) {
      if (contents.format !== null) problems.push({ file: null, slide: null, code: 'missing_predictions', message: `The archive has no ${PREDICTIONS_FILE}, the file that holds a classification submission.` });
    } else {
      const read = await readPredictions(csv.path, csv.entry, csv.size, spec.slides, spec.labels);
      problems.push(...read.problems);
      predictions = read.predictions;
      for (const slide of spec.slides) {
        if (predictions.has(slide.name)) files.push({ file: csv.entry, slide: slide.name });
        else if (!read.problems.some((p) => p.slide === slide.name) && read.problems.every((p) => p.code !== 'csv_header' && p.code !== 'unreadable_csv' && p.code !== 'too_large')) {
          problems.push({ file: csv.entry, slide: slide.name, code: 'missing_slide', message: `${csv.entry} has no row for slide ${slide.name}.` });
        }
      }
    }
    return { report: { ok: problems.length === 0, problems, files }, masks, predictions };
  }

  const bySlide = new Map<string, ArchiveFile>();
  for (const file of contents.files) bySlide.set(slideOf.get(fileKey(file.base))!, file);
  for (const slide of spec.slides) {
    const file = bySlide.get(slide.name);
    if (!file) {
      // A slide whose file was refused already has its problem; an archive that could not be read says so once.
      const accounted = problems.some((p) => p.slide === slide.name || (p.file !== null && slideOf.get(fileKey(p.file.slice(p.file.lastIndexOf('/') + 1))) === slide.name));
      if (!accounted && contents.format !== null && !problems.some((p) => p.file === null && STOPS.has(p.code))) {
        problems.push({
          file: null,
          slide: slide.name,
          code: 'missing_slide',
          message: `No mask was found for slide ${slide.name}; name it ${slide.name}.png, ${slide.name}.tif or ${slide.name}.tiff.`,
        });
      }
      continue;
    }
    const found = await checkMask(file, slide, spec, { checkLabels });
    if (found.length > 0) problems.push(...found);
    else {
      masks.set(slide.name, file);
      files.push({ file: file.entry, slide: slide.name });
    }
  }
  return { report: { ok: problems.length === 0, problems, files }, masks, predictions };
}

/** The problems of one mask: unreadable, wrong pixel format, wrong size, or labels beyond the task's. */
async function checkMask(file: ArchiveFile, slide: ChallengeSlide, spec: ScoringSpec, options: { checkLabels: boolean }): Promise<FileProblem[]> {
  const say = (code: string, message: string): FileProblem[] => [{ file: file.entry, slide: slide.name, code, message }];
  const name = `The mask "${file.entry}"`;
  let reader;
  try {
    reader = await openMask(file.path, name);
  } catch (error) {
    if (error instanceof MaskError) return say(error.code, error.message);
    throw error;
  }
  try {
    const expected = maskSize(slide, spec.maskDownsample);
    if (reader.width !== expected.width || reader.height !== expected.height) {
      return say(
        'wrong_size',
        `${name} is ${reader.width}×${reader.height} pixels, but slide ${slide.name} (${slide.width}×${slide.height} at full resolution) ` +
          `needs ${expected.width}×${expected.height} at downsample ${spec.maskDownsample}.`,
      );
    }
    if (!options.checkLabels) return [];
    const allowed = allowedLabels(spec.task);
    const outside = new Float64Array(256);
    for await (const band of reader.bands()) countOutside(band.data, allowed, outside);
    const problem = labelProblem(file.entry, slide.name, outside, spec.task);
    if (problem) return [problem];
    return [];
  } catch (error) {
    if (error instanceof MaskError) return say(error.code, error.message);
    throw error;
  } finally {
    await reader.close();
  }
}

/** A lookup of the labels a task's masks may hold: 1 for allowed values. */
export function allowedLabels(task: ScoringSpec['task']): Uint8Array {
  const allowed = new Uint8Array(256);
  const labels = MASK_LABELS[task as 'segmentation' | 'tumour-burden'] ?? {};
  for (const value of Object.keys(labels)) allowed[Number(value)] = 1;
  return allowed;
}

/** Add to `outside` the pixels of `data` whose values `allowed` does not allow. */
export function countOutside(data: Uint8Array, allowed: Uint8Array, outside: Float64Array): void {
  // Background (0) is always allowed: four pixels of it are passed over at once.
  const words = data.byteOffset % 4 === 0 ? data.length >> 2 : 0;
  const data32 = new Uint32Array(data.buffer, data.byteOffset, words);
  for (let w = 0; w <= words; w++) {
    if (w < words && data32[w] === 0) continue;
    const end = w < words ? (w + 1) << 2 : data.length;
    for (let i = w << 2; i < end; i++) {
      const v = data[i]!;
      if (allowed[v] === 0) outside[v]! += 1;
    }
  }
}

/** The problem of a mask with pixels outside the task's labels (`outside` counts them per value), or null. */
export function labelProblem(entry: string, slide: string, outside: Float64Array, task: ScoringSpec['task']): FileProblem | null {
  const found: string[] = [];
  outside.forEach((count, value) => {
    if (count > 0) found.push(`${value} (${count} pixel${count === 1 ? '' : 's'})`);
  });
  if (found.length === 0) return null;
  const legend = Object.entries(MASK_LABELS[task as 'segmentation' | 'tumour-burden']).map(([value, meaning]) => `${value} (${meaning})`);
  const shown = found.length > 5 ? [...found.slice(0, 5), `${found.length - 5} other values`] : found;
  return { file: entry, slide, code: 'label_out_of_range', message: `The mask "${entry}" has pixels of value ${list(shown)}; a ${task} mask may only hold ${list(legend)}.` };
}

function list(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]!}`;
}
