import { AppError } from '../errors.js';
import type { IngestOutcome, IngestRecord, IngestRepository } from './ingest.repository.js';
import type { IngestRecordList, IngestRecordView, IngestReportView } from './views.js';

export const INGEST_RECORDS_PAGE = { default: 50, max: 500 } as const;

/** What curators read about ingests: every outcome with its reason, and each published slide's de-identification report. */
export class IngestRecordsService {
  constructor(private readonly repository: IngestRepository) {}

  /** Newest first; `outcome` keeps one kind. */
  async list(query: { outcome?: IngestOutcome; limit: number; offset: number }): Promise<IngestRecordList> {
    const records = await this.repository.list(query);
    return { items: records.map(view), limit: query.limit, offset: query.offset };
  }

  async forSlide(slideId: number): Promise<IngestRecordView> {
    const record = await this.repository.forSlide(slideId);
    if (!record) throw new AppError(404, 'report_not_found', `slide ${slideId} has no ingest report`);
    return view(record);
  }
}

function view({ quarantinePath, originalSha256: _hidden, report, ...rest }: IngestRecord): IngestRecordView {
  // The report is the JSON ingest stored; it is passed on as it is.
  return { ...rest, slideName: rest.slideName ?? null, report: report as IngestReportView | null, quarantined: quarantinePath !== null };
}
