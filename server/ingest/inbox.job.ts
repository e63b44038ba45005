import { mkdir } from 'node:fs/promises';
import type { Config } from '../config/index.js';
import type { ScheduledJob } from '../jobs/job.js';
import type { IngestService } from './ingest.service.js';

/** Files younger than this may still be being copied in by a scanner or a curator. */
const SETTLE_MS = 60_000;

/**
 * The watched inbox: on its schedule (ingest.inboxSchedule; off when empty),
 * ingest what was dropped into paths.inbox. Originals leave the inbox:
 * published ones to paths.originals (or deleted, per ingest.keepOriginals),
 * quarantined ones to paths.quarantine with their reason, duplicates deleted.
 * Refused ones stay until their metadata row is fixed.
 */
export function inboxJob(config: Config, service: IngestService): ScheduledJob {
  return {
    name: 'inbox-ingest',
    description: `ingest slides dropped into ${config.paths.inbox}`,
    schedule: config.ingest.inboxSchedule,
    async run({ log }) {
      await mkdir(config.paths.inbox, { recursive: true });
      const outcome = await service.ingestFolder(config.paths.inbox, { source: 'inbox', takeOriginals: true, minAgeMs: SETTLE_MS });
      const counts: Record<string, number> = {};
      for (const r of outcome.results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
      if (outcome.unsettled.length) log.info({ unsettled: outcome.unsettled.length }, 'inbox: some files are still being copied in; next run');
      return { slides: outcome.results.length, ...counts, unsettled: outcome.unsettled.length, sheetProblems: outcome.sheetProblems.length };
    },
  };
}
