import type { ChallengeSubmission, ChallengeSummary } from '../../types';

export const TASK_NAMES: Record<ChallengeSummary['task'], string> = {
  segmentation: 'Segmentation',
  'tumour-burden': 'Tumour burden',
  classification: 'Classification',
};

export const STATUS_NAMES: Record<ChallengeSubmission['status'], string> = {
  invalid: 'refused by validation (not counted)',
  queued: 'waiting to be scored',
  scoring: 'being scored',
  scored: 'scored',
  failed: 'scoring failed',
};

/** A score as a leaderboard shows it: four decimals. */
export function score(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : value.toFixed(4);
}

/** A time with the date and the minute, in the reader's zone. */
export function moment(iso: string | null | undefined): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}
