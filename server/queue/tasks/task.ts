import type { DeepZoomGrid } from '../../wsi/index.js';
import type { QueuedJob } from '../model.js';

/** A published slide as a task needs it: its files resolved under the slide store. */
export interface TaskSlide {
  id: number;
  file: string;
  /** The de-identified Aperio XML, when the slide has one. */
  annotationFile: string | null;
  width: number;
  height: number;
}

export interface TaskContext {
  job: QueuedJob;
  slide: TaskSlide;
  /** An empty folder of this attempt's own: what is left in it when the task returns are the job's results. */
  out: string;
  /** Aborted when the job is cancelled, its worker shuts down or loses the lease. */
  signal: AbortSignal;
  /** Report progress (0–1); throws the abort reason once the job must stop, so library loops end at their next report. */
  progress(fraction: number, message?: string): void;
  log(line: string): void;
  /** Where a finished job's results are: `<paths.data>/results/<id>/`. */
  resultsOf(jobId: number): string;
  /**
   * A fresh folder to write overlay `name` of the slide into: the worker
   * publishes it under that name (when the job's owner holds the name) once
   * the task succeeded, and removes it otherwise.
   */
  stageOverlay(name: string): string;
  /** The Deep Zoom grid the tile server uses for this slide's file. */
  gridFor(slideFile: string): Promise<DeepZoomGrid>;
}

/** One job type's work: read the slide, write results into `context.out`. */
export type TaskRunner = (context: TaskContext) => Promise<void>;

/**
 * The job's input or parameters are wrong for this slide: failing again will
 * not help, so the job fails at once with this message instead of retrying.
 */
export class BadInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadInputError';
  }
}
