import { AppError } from '../errors.js';
import type { IngestOutcome, IngestRecord, IngestRepository } from './ingest.repository.js';
import { wholeParam } from '../query-params.js';

const OUTCOMES: readonly IngestOutcome[] = ['published', 'quarantined', 'duplicate', 'refused', 'failed'];

/** An ingest record as curators see it: the quarantine folder is named by the original's file name, so it stays on the server. */
export type IngestRecordView = Omit<IngestRecord, 'quarantinePath' | 'originalSha256'> & { quarantined: boolean };

/** What curators read about ingests: every outcome with its reason, and each published slide's de-identification report. */
export class IngestRecordsService {
  constructor(private readonly repository: IngestRepository) {}

  async list(query: Record<string, unknown>): Promise<{ items: IngestRecordView[]; limit: number; offset: number }> {
    const outcome = query.outcome;
    if (outcome !== undefined && !OUTCOMES.includes(outcome as IngestOutcome)) {
      throw new AppError(400, 'invalid_query', `outcome must be one of ${OUTCOMES.join(', ')}`);
    }
    const limit = wholeParam(query.limit, 50, 1, 500, 'limit');
    const offset = wholeParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const records = await this.repository.list({ ...(outcome ? { outcome: outcome as IngestOutcome } : {}), limit, offset });
    return { items: records.map(view), limit, offset };
  }

  async forSlide(slideId: number): Promise<IngestRecordView> {
    const record = await this.repository.forSlide(slideId);
    if (!record) throw new AppError(404, 'report_not_found', `slide ${slideId} has no ingest report`);
    return view(record);
  }
}

function view({ quarantinePath, originalSha256: _hidden, ...rest }: IngestRecord): IngestRecordView {
  return { ...rest, quarantined: quarantinePath !== null };
}

