/** The toolbox job queue's vocabulary, shared by the repository, the service, the worker and the routes. */

export const JOB_TYPES = ['tissue-mask', 'xml-masks', 'patches', 'stitch', 'heatmap'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Statuses a job never leaves. */
export const FINISHED: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export interface ResultFile {
  /** A file name under `<paths.data>/results/<job id>/`. */
  name: string;
  size: number;
}

export interface QueuedJob {
  id: number;
  type: JobType;
  slideId: number;
  /** Null once the slide is no longer published. */
  slideName: string | null;
  parameters: Record<string, unknown>;
  status: JobStatus;
  progress: number;
  message: string | null;
  attempts: number;
  maxAttempts: number;
  runAfter: Date;
  leaseOwner: string | null;
  leaseExpiresAt: Date | null;
  cancelRequested: boolean;
  error: string | null;
  log: string | null;
  results: ResultFile[] | null;
  ownerId: number | null;
  ownerEmail: string | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** Result file names: one path segment, nothing that could leave the job's folder. */
export const RESULT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** The longest log kept per job; older lines are dropped first. */
export const MAX_LOG_CHARS = 8000;

/** Append a line to a bounded log, dropping whole lines from the front when it grows too long. */
export function appendLog(log: string | null, line: string, max = MAX_LOG_CHARS): string {
  let text = `${log ?? ''}${line.replace(/\n+$/, '')}\n`;
  while (text.length > max) {
    const cut = text.indexOf('\n', text.length - max);
    text = cut < 0 ? text.slice(text.length - max) : `…\n${text.slice(cut + 1)}`;
  }
  return text;
}

/** The wait before the retry that follows failed attempt `attempt` (1, 2, …): doubling from `baseSeconds`, at most an hour. */
export function backoffMs(baseSeconds: number, attempt: number): number {
  return Math.min(3_600_000, baseSeconds * 1000 * 2 ** Math.max(0, attempt - 1));
}
