import type { Knex } from 'knex';
import type { DialectName } from '../dialect.js';
import * as accounts from './2026-11-29-01-accounts.js';
import * as slides from './2026-11-29-02-slides.js';
import * as catalog from './2026-11-29-03-catalog.js';
import * as jobs from './2026-11-29-04-jobs.js';
import * as sessions from './2026-11-29-05-sessions.js';
import * as audit from './2026-11-29-06-audit.js';
import * as agreements from './2026-11-29-07-agreements.js';
import * as queue from './2026-11-29-08-queue.js';
import * as datasets from './2026-11-29-09-datasets.js';
import * as annotationVersions from './2026-11-29-10-annotation-versions.js';
import * as comparisonFigures from './2026-12-07-02-comparison-figures.js';
import * as overlayNames from './2026-12-07-04-overlay-names.js';
import * as agreementDrafts from './2026-12-07-10-agreement-drafts.js';
import * as mustChangePassword from './2026-12-07-11-must-change-password.js';
import * as jobRunsRecent from './2026-12-07-20-job-runs-recent.js';
import * as challenges from './2026-12-07-30-challenges.js';
import * as accountSources from './2026-12-07-40-account-sources.js';
import * as challengeUploads from './2026-12-07-50-challenge-uploads.js';
import * as slideOrigin from './2026-12-07-60-slide-origin.js';
import * as catalogCounts from './2026-12-07-72-catalog-counts.js';
import * as catalogWords from './2026-12-07-80-catalog-words.js';
import * as catalogCountChanges from './2026-12-07-90-catalog-count-changes.js';

export interface Migration {
  name: string;
  up(knex: Knex, dialect: DialectName): Promise<void>;
  down(knex: Knex, dialect: DialectName): Promise<void>;
}

/**
 * Every migration, oldest first. Listed here rather than discovered on disk so
 * that the same list runs under tsx and from compiled JavaScript. Names are
 * dated and never change once released.
 */
export const migrations: readonly Migration[] = [
  { name: '2026-11-29-01-accounts', ...accounts },
  { name: '2026-11-29-02-slides', ...slides },
  { name: '2026-11-29-03-catalog', ...catalog },
  { name: '2026-11-29-04-jobs', ...jobs },
  { name: '2026-11-29-05-sessions', ...sessions },
  { name: '2026-11-29-06-audit', ...audit },
  { name: '2026-11-29-07-agreements', ...agreements },
  { name: '2026-11-29-08-queue', ...queue },
  { name: '2026-11-29-09-datasets', ...datasets },
  { name: '2026-11-29-10-annotation-versions', ...annotationVersions },
  { name: '2026-12-07-02-comparison-figures', ...comparisonFigures },
  { name: '2026-12-07-04-overlay-names', ...overlayNames },
  { name: '2026-12-07-10-agreement-drafts', ...agreementDrafts },
  { name: '2026-12-07-11-must-change-password', ...mustChangePassword },
  { name: '2026-12-07-20-job-runs-recent', ...jobRunsRecent },
  { name: '2026-12-07-30-challenges', ...challenges },
  { name: '2026-12-07-40-account-sources', ...accountSources },
  { name: '2026-12-07-50-challenge-uploads', ...challengeUploads },
  { name: '2026-12-07-60-slide-origin', ...slideOrigin },
  { name: '2026-12-07-72-catalog-counts', ...catalogCounts },
  { name: '2026-12-07-80-catalog-words', ...catalogWords },
  { name: '2026-12-07-90-catalog-count-changes', ...catalogCountChanges },
];
