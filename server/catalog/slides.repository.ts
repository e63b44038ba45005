import type { Knex } from 'knex';
import { toDbTime } from '../db/index.js';
import type { SlideMetadata } from '../ingest/types.js';

export interface SlideRecord {
  id: number;
  name: string;
  filePath: string;
  fileSize: number;
  sha256: string | null;
  vendor: string;
  width: number;
  height: number;
  levelCount: number;
  mppX: number | null;
  mppY: number | null;
  objectivePower: number | null;
  status: string;
}

export type NewSlide = Omit<SlideRecord, 'id' | 'status'> & { status?: string };

/** What ingest adds to a slide: its diagnostic metadata, where its annotation is, and the original's hash. */
export interface IngestedSlideFields {
  metadata: SlideMetadata;
  originalSha256: string;
  annotationPath: string | null;
  annotationSummary: unknown;
}

interface SlideRow {
  id: number;
  name: string;
  file_path: string;
  file_size: number | string;
  sha256: string | null;
  vendor: string;
  width: number;
  height: number;
  level_count: number;
  mpp_x: number | null;
  mpp_y: number | null;
  objective_power: number | null;
  status: string;
}

/** Every query on the slides table. */
export class SlidesRepository {
  constructor(private readonly knex: Knex) {}

  async create(slide: NewSlide, now = new Date(), ingested?: IngestedSlideFields): Promise<SlideRecord> {
    const [inserted] = await this.knex('slides')
      .insert({
        ...(ingested ? ingestColumns(ingested) : {}),
        name: slide.name,
        file_path: slide.filePath,
        file_size: slide.fileSize,
        sha256: slide.sha256,
        vendor: slide.vendor,
        width: slide.width,
        height: slide.height,
        level_count: slide.levelCount,
        mpp_x: slide.mppX,
        mpp_y: slide.mppY,
        objective_power: slide.objectivePower,
        status: slide.status ?? 'published',
        created_at: toDbTime(now),
        updated_at: toDbTime(now),
      })
      .returning('id');
    const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
    const created = await this.findById(id);
    if (!created) throw new Error(`slide ${id} vanished after insert`);
    return created;
  }

  async findByOriginalSha256(sha256: string): Promise<{ id: number; name: string } | undefined> {
    return this.knex('slides').where('original_sha256', sha256).first<{ id: number; name: string } | undefined>('id', 'name');
  }

  async nameExists(name: string): Promise<boolean> {
    return (await this.knex('slides').where({ name }).first('id')) !== undefined;
  }

  async count(): Promise<number> {
    const [row] = (await this.knex('slides').count({ n: '*' })) as { n: number | string }[];
    return Number(row?.n ?? 0);
  }

  async findById(id: number): Promise<SlideRecord | undefined> {
    const row = await this.knex<SlideRow>('slides').where({ id }).first();
    return row ? toRecord(row) : undefined;
  }

  /** A published slide's stored annotation path (null when it has none); undefined when there is no such published slide. */
  async findPublishedAnnotationPath(id: number): Promise<{ annotationPath: string | null } | undefined> {
    const row = await this.knex('slides').where({ id, status: 'published' }).first<{ annotation_path: string | null } | undefined>('annotation_path');
    return row ? { annotationPath: row.annotation_path } : undefined;
  }
}

function toRecord(row: SlideRow): SlideRecord {
  return {
    id: row.id,
    name: row.name,
    filePath: row.file_path,
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    vendor: row.vendor,
    width: row.width,
    height: row.height,
    levelCount: row.level_count,
    mppX: row.mpp_x,
    mppY: row.mpp_y,
    objectivePower: row.objective_power,
    status: row.status,
  };
}

function ingestColumns({ metadata, originalSha256, annotationPath, annotationSummary }: IngestedSlideFields): Record<string, unknown> {
  return {
    organ: metadata.organ,
    histology: metadata.histology,
    stain: metadata.stain,
    marker: metadata.marker,
    differentiation: metadata.differentiation,
    pathology_info: metadata.pathologyInfo,
    annotation_method: metadata.annotationMethod,
    dataset: metadata.dataset,
    original_sha256: originalSha256,
    annotation_path: annotationPath,
    annotation_summary: annotationSummary === null || annotationSummary === undefined ? null : JSON.stringify(annotationSummary),
  };
}
