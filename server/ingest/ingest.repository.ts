import type { Knex } from 'knex';
import { SlidesRepository, type IngestedSlideFields, type NewSlide, type SlideRecord } from '../catalog/slides.repository.js';
import { SLIDES_TABLE } from '../catalog/slides-table.js';
import { fromDbJson, fromDbTime, toDbTime } from '../db/index.js';

export type IngestOutcome = 'published' | 'quarantined' | 'duplicate' | 'refused' | 'failed';
export type IngestSource = 'cli' | 'inbox' | 'demo';

export interface IngestRecord {
  id: number;
  outcome: IngestOutcome;
  reason: string | null;
  slideId: number | null;
  /** The slide's name while it is published. */
  slideName?: string | null;
  originalSha256: string | null;
  quarantinePath: string | null;
  report: unknown;
  source: IngestSource;
  createdAt: Date;
}

export type NewIngestRecord = Omit<IngestRecord, 'id' | 'createdAt'>;

interface Row {
  id: number;
  outcome: IngestOutcome;
  reason: string | null;
  slide_id: number | null;
  slide_name?: string | null;
  original_sha256: string | null;
  quarantine_path: string | null;
  report: unknown;
  source: IngestSource;
  created_at: unknown;
}

/** Every query ingest makes: the catalog rows it publishes, and ingest_records (what each ingest did and why, for curators). */
export class IngestRepository {
  constructor(private readonly knex: Knex) {}

  findPublishedOriginal(sha256: string): Promise<{ id: number; name: string } | undefined> {
    return new SlidesRepository(this.knex).findByOriginalSha256(sha256);
  }

  nameTaken(name: string): Promise<boolean> {
    return new SlidesRepository(this.knex).nameExists(name);
  }

  slideCount(): Promise<number> {
    return new SlidesRepository(this.knex).count();
  }

  /** The slide row, its ingest record and (when configured) the sealed linkage, all or nothing. */
  async publish(
    slide: NewSlide,
    ingested: IngestedSlideFields,
    record: Omit<NewIngestRecord, 'slideId' | 'outcome'>,
    sealedOriginalName: string | null,
    now = new Date(),
  ): Promise<{ slide: SlideRecord; recordId: number }> {
    return this.knex.transaction(async (trx) => {
      const created = await new SlidesRepository(trx).create(slide, now, ingested);
      const recordId = await new IngestRepository(trx).create({ ...record, outcome: 'published', slideId: created.id }, now);
      if (sealedOriginalName !== null) {
        await trx('slide_linkage').insert({ slide_id: created.id, original_name_sealed: sealedOriginalName, created_at: toDbTime(now) });
      }
      return { slide: created, recordId };
    });
  }

  async create(record: NewIngestRecord, now = new Date()): Promise<number> {
    const [inserted] = await this.knex('ingest_records')
      .insert({
        outcome: record.outcome,
        reason: record.reason,
        slide_id: record.slideId,
        original_sha256: record.originalSha256,
        quarantine_path: record.quarantinePath,
        report: record.report === null || record.report === undefined ? null : JSON.stringify(record.report),
        source: record.source,
        created_at: toDbTime(now),
      })
      .returning('id');
    return typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
  }

  /**
   * A page, newest first: its ids first, from the key or the outcome's index,
   * so that the records an offset skips are neither read nor joined; then
   * those records with their slides' names.
   */
  async list({ outcome, limit = 100, offset = 0 }: { outcome?: IngestOutcome; limit?: number; offset?: number } = {}): Promise<IngestRecord[]> {
    const page = this.knex('ingest_records').select('id').orderBy('id', 'desc').limit(limit).offset(offset);
    if (outcome) page.where('outcome', outcome);
    const ids = ((await page) as { id: number }[]).map((row) => Number(row.id));
    if (ids.length === 0) return [];
    const rows = new Map(((await this.withSlideName().whereIn('r.id', ids)) as Row[]).map((row) => [Number(row.id), row]));
    return ids.flatMap((id) => {
      const row = rows.get(id);
      return row ? [toRecord(row)] : [];
    });
  }

  async forSlide(slideId: number): Promise<IngestRecord | undefined> {
    const row = await this.withSlideName().where({ 'r.slide_id': slideId, 'r.outcome': 'published' }).orderBy('r.id', 'desc').first<Row | undefined>();
    return row ? toRecord(row) : undefined;
  }

  /** A withdrawn slide is shown by its id alone. */
  private withSlideName() {
    return this.knex('ingest_records as r')
      .leftJoin(`${SLIDES_TABLE} as s`, (on) => {
        on.on('s.id', '=', 'r.slide_id').andOnVal('s.status', '=', 'published');
      })
      .select('r.*', 's.name as slide_name');
  }
}

function toRecord(row: Row): IngestRecord {
  return {
    id: row.id,
    outcome: row.outcome,
    reason: row.reason,
    slideId: row.slide_id,
    slideName: row.slide_name ?? null,
    originalSha256: row.original_sha256,
    quarantinePath: row.quarantine_path,
    report: row.report === null ? null : fromDbJson(row.report),
    source: row.source,
    createdAt: fromDbTime(row.created_at as string),
  };
}
