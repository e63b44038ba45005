import type { Knex } from 'knex';
import { toDbTime } from '../db/index.js';
import type { SlideMetadata } from '../ingest/types.js';
import { writeCatalogWords } from './catalog-words.repository.js';
import {
  SLIDE_COLUMNS,
  SLIDES_TABLE,
  factsColumns,
  factsOf,
  fileColumns,
  fileOf,
  metadataColumns,
  originColumns,
  summaryColumn,
  type SlideOrigin,
  type SlideRow,
  type StoredFacts,
  type StoredFile,
} from './slides-table.js';

export interface SlideRecord extends StoredFile, StoredFacts {
  id: number;
  name: string;
  status: string;
}

export type NewSlide = Omit<SlideRecord, 'id' | 'status'> & { status?: string };

/** What ingest adds to a slide: its diagnostic metadata, where its annotation is, and the original's hash. */
export interface IngestedSlideFields {
  metadata: SlideMetadata;
  originalSha256: string;
  annotationPath: string | null;
  annotationSummary: unknown;
  /** What the slide came from: every ingest path fills it in (a DICOM series: scanner vendor and format `dicom`). */
  origin?: SlideOrigin;
}

/** Every query on the slides table. */
export class SlidesRepository {
  constructor(private readonly knex: Knex) {}

  async create(slide: NewSlide, now = new Date(), ingested?: IngestedSlideFields): Promise<SlideRecord> {
    const id = await this.knex.transaction(async (trx) => {
      const [inserted] = await trx(SLIDES_TABLE)
        .insert({
          ...(ingested ? ingestColumns(ingested) : {}),
          name: slide.name,
          ...fileColumns(slide),
          ...factsColumns(slide),
          status: slide.status ?? 'published',
          created_at: toDbTime(now),
          updated_at: toDbTime(now),
        })
        .returning('id');
      const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
      await writeCatalogWords(trx, [{ id, name: slide.name, pathologyInfo: ingested?.metadata.pathologyInfo ?? null }]);
      return id;
    });
    const created = await this.findById(id);
    if (!created) throw new Error(`slide ${id} vanished after insert`);
    return created;
  }

  async findByOriginalSha256(sha256: string): Promise<{ id: number; name: string } | undefined> {
    return this.knex(SLIDES_TABLE).where('original_sha256', sha256).first<Pick<SlideRow, 'id' | 'name'> | undefined>('id', 'name');
  }

  async nameExists(name: string): Promise<boolean> {
    return (await this.knex(SLIDES_TABLE).where({ name }).first('id')) !== undefined;
  }

  async count(): Promise<number> {
    const [row] = (await this.knex(SLIDES_TABLE).count({ n: '*' })) as { n: number | string }[];
    return Number(row?.n ?? 0);
  }

  async findById(id: number): Promise<SlideRecord | undefined> {
    const row = (await this.knex(SLIDES_TABLE).where({ id }).first(SLIDE_COLUMNS)) as SlideRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** A published slide's stored annotation path (null when it has none); undefined when there is no such published slide. */
  async findPublishedAnnotationPath(id: number): Promise<{ annotationPath: string | null } | undefined> {
    const row = await this.knex(SLIDES_TABLE).where({ id, status: 'published' }).first<Pick<SlideRow, 'annotation_path'> | undefined>('annotation_path');
    return row ? { annotationPath: row.annotation_path } : undefined;
  }
}

function toRecord(row: SlideRow): SlideRecord {
  return { id: row.id, name: row.name, ...fileOf(row), ...factsOf(row), status: row.status };
}

function ingestColumns({ metadata, originalSha256, annotationPath, annotationSummary, origin }: IngestedSlideFields): Partial<SlideRow> {
  return {
    ...(origin ? originColumns(origin) : {}),
    ...metadataColumns(metadata),
    original_sha256: originalSha256,
    annotation_path: annotationPath,
    annotation_summary: summaryColumn(annotationSummary),
  };
}
