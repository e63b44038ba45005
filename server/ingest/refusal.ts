import type { IngestReport } from './ingest-settings.js';

/** Why a slide is not published: the outcome it is recorded under, the reason, and what was found so far. */
export class Refusal extends Error {
  constructor(
    readonly outcome: 'refused' | 'quarantined' | 'duplicate' | 'failed',
    message: string,
    readonly report: IngestReport = {},
  ) {
    super(message);
  }
}

/** A failed write as a Refusal: a full disk or a read-only store fails the ingest; anything else quarantines the slide. */
export function writeFailure(error: unknown, what: string): Refusal {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new Refusal('failed', `the disk is full (${code}) while ${what}; nothing was published and the original is untouched; free space and ingest again`);
  }
  if (code === 'EACCES' || code === 'EROFS') {
    return new Refusal('failed', `cannot write to the slide store (${code}) while ${what}; nothing was published`);
  }
  return new Refusal('quarantined', `${what} failed: ${(error as Error).message}`);
}
