/** The shapes shared by the submission reader, the validator and the scorer (re-exported by index.ts). */

export type ChallengeTask = 'segmentation' | 'tumour-burden' | 'classification';

/** A test slide of a phase: its published name and level-0 size. */
export interface ChallengeSlide {
  name: string;
  width: number;
  height: number;
}

export interface ScoringSpec {
  task: ChallengeTask;
  /** The phase's test slides. */
  slides: ChallengeSlide[];
  /** Level-0 pixels per mask pixel (default 16; 1 allowed). */
  maskDownsample: number;
  /** Jaccard threshold below which a slide's Jaccard counts 0 (default 0.65). */
  threshold: number;
  /** Classification: the labels a prediction may use; when absent, any non-empty label is accepted. */
  labels?: string[];
}

/** The hidden truth of one slide: polygons in level-0 pixels (GeoJSON Polygon coordinates: outer ring then holes). */
export interface SlideTruth {
  /** Whole tumour; for segmentation the tumour class. */
  tumour: number[][][][];
  /** Viable tumour, for tumour burden. */
  viable: number[][][][];
  /** Classification truth. */
  label: string | null;
}

/** One thing wrong with a submission; `message` is a sentence for people. */
export interface FileProblem {
  file: string | null;
  slide: string | null;
  code: string;
  message: string;
}

export interface ValidationReport {
  ok: boolean;
  problems: FileProblem[];
  /** The files that will be scored and the slide each belongs to (for classification, predictions.csv and every slide it covers). */
  files: { file: string; slide: string }[];
}

export interface SlideScore {
  slide: string;
  score: number;
  /** e.g. jaccard, jaccardRaw, dice. */
  metrics: Record<string, number>;
}

export interface SubmissionScore {
  /** The challenge score. */
  score: number;
  /** Compared in order after the score (segmentation: median, then mean without threshold). */
  tieBreakers: number[];
  /** Totals, e.g. meanDice. */
  metrics: Record<string, number>;
  perSlide: SlideScore[];
}

/** Thrown by scoreSubmission when the submission does not pass validation; `report` says why. */
export class SubmissionInvalid extends Error {
  report: ValidationReport;

  constructor(report: ValidationReport) {
    const count = report.problems.length;
    super(`The submission cannot be scored: ${count} problem${count === 1 ? '' : 's'} found${count > 0 ? `; the first: ${report.problems[0]!.message}` : '.'}`);
    this.name = 'SubmissionInvalid';
    this.report = report;
  }
}

export const DEFAULT_MASK_DOWNSAMPLE = 16;
export const DEFAULT_THRESHOLD = 0.65;
