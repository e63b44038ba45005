/**
 * predictions.csv of a classification submission: a header with `slide` and
 * `label` (and optionally `probability`, the submitter's probability that
 * the label is right, 0–1), then one row per test slide.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import type { ChallengeSlide, FileProblem } from './types.js';

export const PREDICTIONS_FILE = 'predictions.csv';
/** Far more than one row per slide of any phase needs. */
const MAX_PREDICTIONS_BYTES = 64 * 2 ** 20;

export interface Prediction {
  slide: string;
  label: string;
  probability: number | null;
}

export interface PredictionsRead {
  predictions: Map<string, Prediction>;
  problems: FileProblem[];
}

/** Read and check predictions.csv against the phase's slides (and allowed labels, when given). */
export async function readPredictions(file: string, entry: string, size: number, slides: readonly ChallengeSlide[], labels?: readonly string[]): Promise<PredictionsRead> {
  const problems: FileProblem[] = [];
  const predictions = new Map<string, Prediction>();
  const say = (code: string, message: string, slide: string | null = null) => problems.push({ file: entry, slide, code, message });
  if (size > MAX_PREDICTIONS_BYTES) {
    say('too_large', `${entry} is ${(size / 2 ** 20).toFixed(1)} MiB, more than the ${MAX_PREDICTIONS_BYTES / 2 ** 20} MiB a predictions file may have.`);
    return { predictions, problems };
  }
  let rows: string[][];
  try {
    rows = parse(await readFile(file), { bom: true, skip_empty_lines: true, trim: true, relax_column_count: true }) as string[][];
  } catch (error) {
    say('unreadable_csv', `${entry} is not a readable CSV file (${(error as Error).message}).`);
    return { predictions, problems };
  }
  const header = (rows[0] ?? []).map((h) => h.toLowerCase());
  const column = { slide: header.indexOf('slide'), label: header.indexOf('label'), probability: header.indexOf('probability') };
  if (column.slide < 0 || column.label < 0) {
    say('csv_header', `${entry} must start with a header row naming the columns slide and label (and optionally probability); its first row is "${(rows[0] ?? []).join(',')}".`);
    return { predictions, problems };
  }
  const known = new Set(slides.map((s) => s.name));
  const allowed = labels && labels.length > 0 ? new Set(labels) : null;
  rows.slice(1).forEach((row, i) => {
    const line = i + 2;
    const slide = row[column.slide] ?? '';
    const label = row[column.label] ?? '';
    const rawProbability = column.probability >= 0 ? (row[column.probability] ?? '') : '';
    if (!known.has(slide)) {
      say('unknown_slide', `Line ${line} of ${entry} names the slide "${slide}", which is not a test slide of this phase.`);
      return;
    }
    if (predictions.has(slide)) {
      say('duplicate', `Line ${line} of ${entry} predicts slide ${slide} a second time; give one row per slide.`, slide);
      return;
    }
    if (label === '') {
      say('missing_label', `Line ${line} of ${entry} gives no label for slide ${slide}.`, slide);
      return;
    }
    if (allowed && !allowed.has(label)) {
      say('label_out_of_range', `Line ${line} of ${entry} gives slide ${slide} the label "${label}", which is not one of ${[...allowed].map((l) => `"${l}"`).join(', ')}.`, slide);
      return;
    }
    let probability: number | null = null;
    if (rawProbability !== '') {
      probability = Number(rawProbability);
      if (!Number.isFinite(probability) || probability < 0 || probability > 1) {
        say('probability_out_of_range', `Line ${line} of ${entry} gives slide ${slide} the probability "${rawProbability}"; a probability is a number from 0 to 1.`, slide);
        return;
      }
    }
    predictions.set(slide, { slide, label, probability });
  });
  return { predictions, problems };
}
