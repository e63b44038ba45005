import type { ScheduledJob } from '../jobs/job.js';
import { UPLOAD_TTL_MS, type ChallengeUploads } from './uploads.js';

/** With the nightly clean-up: resumable uploads abandoned for a day, with their bytes, and stray files of the uploads folder. */
export function challengeUploadsJob(uploads: Pick<ChallengeUploads, 'removeExpired'>, schedule: string): ScheduledJob {
  return {
    name: 'challenge-uploads',
    description: `remove challenge submission uploads that received nothing for ${UPLOAD_TTL_MS / 3_600_000} hours, with their files`,
    schedule,
    run: ({ now }) => uploads.removeExpired(now),
  };
}
