import type { Knex } from 'knex';
import { SLIDE_COLUMNS, SLIDES_TABLE, annotationSummaryOf, factsOf, fileOf, metadataOf, type SlideRow, type StoredFile } from '../catalog/slides-table.js';
import { fromDbJson, fromDbTime, isUniqueViolation, toDbTime } from '../db/index.js';
import type { Dataset, Release, ReleasedSlide, Withdrawal } from './release.js';

/** A catalog slide as a release takes it in. */
export interface MemberSlide extends StoredFile {
  id: number;
  name: string;
  status: string;
  annotationPath: string | null;
  annotationSummary: unknown;
  metadata: ReleasedSlide['metadata'];
  facts: ReleasedSlide['facts'];
}

export class DatasetNameTaken extends Error {}
export class VersionTaken extends Error {}

/** Every query on datasets, their members, releases and withdrawals. */
export class DatasetsRepository {
  constructor(private readonly knex: Knex) {}

  async create(name: string, description: string | null, now = new Date()): Promise<Dataset> {
    try {
      await this.knex('datasets').insert({ name, description, created_at: toDbTime(now) });
    } catch (error) {
      if (isUniqueViolation(error)) throw new DatasetNameTaken(name);
      throw error;
    }
    return (await this.findByName(name))!;
  }

  async findByName(name: string): Promise<Dataset | undefined> {
    const row = await this.knex('datasets').where({ name }).first<{ id: number; name: string; description: string | null; created_at: string } | undefined>();
    return row ? { id: row.id, name: row.name, description: row.description, createdAt: fromDbTime(row.created_at) } : undefined;
  }

  async list(): Promise<(Dataset & { members: number; versions: string[] })[]> {
    const rows = await this.knex('datasets').orderBy('name').select<{ id: number; name: string; description: string | null; created_at: string }[]>();
    const members = (await this.knex('dataset_slides').groupBy('dataset_id').select('dataset_id').count({ n: '*' })) as { dataset_id: number; n: number | string }[];
    const releases = await this.knex('dataset_releases').orderBy('id').select<{ dataset_id: number; version: string }[]>('dataset_id', 'version');
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      description: row.description,
      createdAt: fromDbTime(row.created_at),
      members: Number(members.find((m) => m.dataset_id === row.id)?.n ?? 0),
      versions: releases.filter((r) => r.dataset_id === row.id).map((r) => r.version),
    }));
  }

  /** Slides by id, any status; those not found are simply absent. */
  async slides(ids: readonly number[]): Promise<MemberSlide[]> {
    if (ids.length === 0) return [];
    const rows: SlideRow[] = [];
    for (let i = 0; i < ids.length; i += 500) rows.push(...((await this.knex(SLIDES_TABLE).whereIn('id', ids.slice(i, i + 500)).select(SLIDE_COLUMNS)) as SlideRow[]));
    return rows.map(toMember).sort((a, b) => a.id - b.id);
  }

  async addMembers(datasetId: number, slideIds: readonly number[], now = new Date()): Promise<number> {
    const existing = new Set((await this.memberIds(datasetId)));
    const fresh = [...new Set(slideIds)].filter((id) => !existing.has(id));
    if (fresh.length > 0) {
      await this.knex('dataset_slides').insert(fresh.map((slideId) => ({ dataset_id: datasetId, slide_id: slideId, added_at: toDbTime(now) })));
    }
    return fresh.length;
  }

  async memberIds(datasetId: number): Promise<number[]> {
    return (await this.knex('dataset_slides').where({ dataset_id: datasetId }).orderBy('slide_id').select<{ slide_id: number }[]>('slide_id')).map((r) => r.slide_id);
  }

  async createRelease(datasetId: number, version: string, createdBy: string, slides: ReleasedSlide[], now = new Date()): Promise<void> {
    try {
      await this.knex('dataset_releases').insert({
        dataset_id: datasetId,
        version,
        created_by: createdBy,
        created_at: toDbTime(now),
        snapshot: JSON.stringify({ slides }),
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new VersionTaken(version);
      throw error;
    }
  }

  async findRelease(dataset: Dataset, version: string): Promise<Release | undefined> {
    const row = await this.knex('dataset_releases').where({ dataset_id: dataset.id, version }).first();
    return row ? toRelease(dataset, row) : undefined;
  }

  async releases(dataset: Dataset): Promise<Release[]> {
    return (await this.knex('dataset_releases').where({ dataset_id: dataset.id }).orderBy('id')).map((row) => toRelease(dataset, row));
  }

  /** Record the withdrawal and take the slide out of the working set, together. */
  async withdraw(datasetId: number, slide: { id: number; name: string }, releaseId: number | null, reason: string, now = new Date()): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('dataset_withdrawals').insert({ dataset_id: datasetId, slide_id: slide.id, slide_name: slide.name, release_id: releaseId, reason, created_at: toDbTime(now) });
      await trx('dataset_slides').where({ dataset_id: datasetId, slide_id: slide.id }).delete();
    });
  }

  async withdrawals(datasetId: number): Promise<Withdrawal[]> {
    const rows = await this.knex('dataset_withdrawals as w')
      .leftJoin('dataset_releases as r', 'r.id', 'w.release_id')
      .where('w.dataset_id', datasetId)
      .orderBy('w.id')
      .select<{ id: number; slide_id: number; slide_name: string; version: string | null; reason: string; created_at: string }[]>('w.id', 'w.slide_id', 'w.slide_name', 'r.version', 'w.reason', 'w.created_at');
    return rows.map((r) => ({ id: r.id, slideId: r.slide_id, slideName: r.slide_name, releaseVersion: r.version, reason: r.reason, createdAt: fromDbTime(r.created_at) }));
  }
}

function toRelease(dataset: Dataset, row: { id: number; dataset_id: number; version: string; created_at: string; created_by: string; snapshot: unknown }): Release {
  const snapshot = fromDbJson<{ slides: ReleasedSlide[] }>(row.snapshot);
  return {
    id: row.id,
    datasetId: row.dataset_id,
    dataset: dataset.name,
    version: row.version,
    createdAt: fromDbTime(row.created_at),
    createdBy: row.created_by,
    slides: snapshot.slides,
  };
}

function toMember(row: SlideRow): MemberSlide {
  return {
    id: row.id,
    name: row.name,
    ...fileOf(row),
    status: row.status,
    annotationPath: row.annotation_path,
    annotationSummary: annotationSummaryOf(row),
    // A release names every slide's organ, histology and stain.
    metadata: { ...metadataOf(row), organ: row.organ ?? '', histology: row.histology ?? '', stain: row.stain ?? '' },
    facts: factsOf(row),
  };
}
