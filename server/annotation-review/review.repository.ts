import type { Knex } from 'knex';
import { REVIEWED_COLUMNS, SLIDES_TABLE, summaryColumn, type SlideRowOf } from '../catalog/slides-table.js';
import { fromDbTime, toDbTime } from '../db/dialect.js';

export const VERSION_METHODS = ['manual', 'ai', 'corrected'] as const;
export type VersionMethod = (typeof VERSION_METHODS)[number];

export const REVIEW_STATES = ['to-annotate', 'proposed', 'in-review', 'cross-check', 'released'] as const;
export type ReviewState = (typeof REVIEW_STATES)[number];

export const REVIEW_ACTIONS = ['baseline', 'propose', 'save', 'confirm', 'approve', 'return'] as const;
export type ReviewAction = (typeof REVIEW_ACTIONS)[number];

export interface AnnotationVersion {
  id: number;
  slideId: number;
  parentId: number | null;
  method: VersionMethod;
  model: string | null;
  author: { id: number; email: string; name: string | null } | null;
  note: string | null;
  filePath: string;
  sha256: string;
  regions: number;
  area: number;
  createdAt: Date;
}

export type NewVersion = Omit<AnnotationVersion, 'id' | 'author' | 'createdAt'> & { authorId: number | null };

export interface Workflow {
  slideId: number;
  state: ReviewState;
  currentVersionId: number | null;
  releasedVersionId: number | null;
  annotatorId: number | null;
  checkerId: number | null;
  round: number;
  revision: number;
  reviewStartedAt: Date | null;
  updatedAt: Date;
}

export interface ReviewEvent {
  id: number;
  slideId: number;
  versionId: number | null;
  actor: { id: number; email: string } | null;
  action: ReviewAction;
  round: number;
  comment: string | null;
  createdAt: Date;
}

/** What the review needs to know of a slide. */
export interface ReviewedSlide {
  id: number;
  name: string;
  status: string;
  width: number;
  height: number;
  /** Microns per level-0 pixel, the larger of x and y where both are known. */
  mpp: number | null;
  organ: string | null;
  annotationPath: string | null;
  annotationMethod: string | null;
}

export interface WorklistRow {
  slide: { id: number; name: string; organ: string | null };
  state: ReviewState;
  round: number;
  currentVersionId: number | null;
  releasedVersionId: number | null;
  annotatorId: number | null;
  updatedAt: Date;
}

/** A confirmation to compare with the AI proposal before it (see the 2026-12-07-02 migration). */
export interface PendingComparison {
  id: number;
  slide: { id: number; width: number; height: number };
  proposal: { id: number; filePath: string };
  confirmed: { id: number; filePath: string };
}

/** One row of the statistics query: a count of released outlines by method, or the comparisons of a review round. */
export type StatisticsRow =
  | { kind: 'method'; organ: string | null; method: string | null; slides: number }
  | { kind: 'round'; organ: string | null; round: number; compared: number; miouSum: number; pending: number };

const inserted = (value: unknown) => (typeof value === 'object' ? (value as { id: number }).id : (value as number));

/** Annotation versions, review workflows and their events (see the 10-annotation-versions migration). */
export class ReviewRepository {
  constructor(private readonly knex: Knex) {}

  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  async slide(id: number, trx: Knex = this.knex): Promise<ReviewedSlide | undefined> {
    const row = (await trx(SLIDES_TABLE).where({ id }).first(REVIEWED_COLUMNS)) as SlideRowOf<typeof REVIEWED_COLUMNS> | undefined;
    if (!row) return undefined;
    return {
      id: Number(row.id),
      name: row.name,
      status: row.status,
      width: Number(row.width),
      height: Number(row.height),
      mpp: row.mpp_x ?? row.mpp_y ?? null,
      organ: row.organ,
      annotationPath: row.annotation_path,
      annotationMethod: row.annotation_method,
    };
  }

  async insertVersion(version: NewVersion, now: Date, trx: Knex = this.knex): Promise<number> {
    const [id] = await trx('annotation_versions')
      .insert({
        slide_id: version.slideId,
        parent_id: version.parentId,
        method: version.method,
        model: version.model,
        author_id: version.authorId,
        note: version.note,
        file_path: version.filePath,
        sha256: version.sha256,
        regions: version.regions,
        area: version.area,
        created_at: toDbTime(now),
      })
      .returning('id');
    return inserted(id);
  }

  async setVersionFile(id: number, filePath: string, trx: Knex = this.knex): Promise<void> {
    await trx('annotation_versions').where({ id }).update({ file_path: filePath });
  }

  async versions(slideId: number, trx: Knex = this.knex): Promise<AnnotationVersion[]> {
    const rows = await this.versionQuery(trx).where('v.slide_id', slideId).orderBy('v.id', 'desc');
    return rows.map(toVersion);
  }

  async version(slideId: number, id: number, trx: Knex = this.knex): Promise<AnnotationVersion | undefined> {
    const row = await this.versionQuery(trx).where({ 'v.slide_id': slideId, 'v.id': id }).first();
    return row ? toVersion(row) : undefined;
  }

  async workflow(slideId: number, trx: Knex = this.knex, lock = false): Promise<Workflow | undefined> {
    let query = trx('annotation_workflows').where({ slide_id: slideId });
    if (lock) query = query.forUpdate();
    const row = await query.first<Record<string, unknown> | undefined>();
    return row ? toWorkflow(row) : undefined;
  }

  async insertWorkflow(workflow: Workflow, trx: Knex = this.knex): Promise<void> {
    await trx('annotation_workflows').insert(workflowColumns(workflow));
  }

  /** Write the workflow if its revision is still `expected`; false when somebody changed it first. */
  async updateWorkflow(workflow: Workflow, expected: number, trx: Knex = this.knex): Promise<boolean> {
    const changed = await trx('annotation_workflows').where({ slide_id: workflow.slideId, revision: expected }).update(workflowColumns(workflow));
    return Number(changed) === 1;
  }

  async insertEvent(event: Omit<ReviewEvent, 'id' | 'actor'> & { actorId: number | null }, trx: Knex = this.knex): Promise<number> {
    const [id] = await trx('annotation_events').insert({
      slide_id: event.slideId,
      version_id: event.versionId,
      actor_id: event.actorId,
      action: event.action,
      round: event.round,
      comment: event.comment,
      created_at: toDbTime(event.createdAt),
    }).returning('id');
    return inserted(id);
  }

  async events(slideId: number, trx: Knex = this.knex): Promise<ReviewEvent[]> {
    const rows = await trx('annotation_events as e')
      .leftJoin('users as u', 'u.id', 'e.actor_id')
      .where('e.slide_id', slideId)
      .orderBy('e.id', 'asc')
      .select<Record<string, unknown>[]>('e.*', 'u.email as actor_email');
    return rows.map(toEvent);
  }

  /** Every event of the given actions, oldest first, for the statistics. */
  async eventsOf(actions: ReviewAction[]): Promise<ReviewEvent[]> {
    const rows = await this.knex('annotation_events as e')
      .leftJoin('users as u', 'u.id', 'e.actor_id')
      .whereIn('e.action', actions)
      .orderBy('e.id', 'asc')
      .select<Record<string, unknown>[]>('e.*', 'u.email as actor_email');
    return rows.map(toEvent);
  }

  /**
   * Every published slide with its review state. A slide whose review has not
   * started has no workflow row yet; its state is what starting it would
   * give (released when it has an outline, else to-annotate), so listing
   * reads no files and writes nothing.
   */
  async worklist(filter: { states?: ReviewState[]; limit: number; offset: number }): Promise<{ items: WorklistRow[]; total: number }> {
    const state = "COALESCE(w.state, CASE WHEN s.annotation_path IS NULL THEN 'to-annotate' ELSE 'released' END)";
    const base = () => {
      let query = this.knex(`${SLIDES_TABLE} as s`).leftJoin('annotation_workflows as w', 'w.slide_id', 's.id').where('s.status', 'published');
      if (filter.states && filter.states.length > 0) query = query.whereRaw(`${state} IN (${filter.states.map(() => '?').join(', ')})`, filter.states);
      return query;
    };
    const [{ count }] = (await base().count<{ count: number | string }[]>({ count: '*' })) as [{ count: number | string }];
    const rows = await base()
      .orderByRaw('COALESCE(w.updated_at, s.created_at) DESC')
      .orderBy('s.id', 'asc')
      .limit(filter.limit)
      .offset(filter.offset)
      .select<Record<string, unknown>[]>(
        's.id as slide_id',
        's.name as slide_name',
        's.organ as slide_organ',
        this.knex.raw(`${state} as state`),
        'w.round',
        'w.current_version_id',
        'w.released_version_id',
        'w.annotator_id',
        this.knex.raw('COALESCE(w.updated_at, s.created_at) as updated_at'),
      );
    const id = (value: unknown) => (value === null || value === undefined ? null : Number(value));
    return {
      total: Number(count),
      items: rows.map((row) => ({
        slide: { id: Number(row.slide_id), name: String(row.slide_name), organ: (row.slide_organ as string | null) ?? null },
        state: row.state as ReviewState,
        round: Number(row.round ?? 0),
        currentVersionId: id(row.current_version_id),
        releasedVersionId: id(row.released_version_id),
        annotatorId: id(row.annotator_id),
        updatedAt: fromDbTime(row.updated_at as string),
      })),
    };
  }

  /**
   * Everything the annotation statistics show, in one query: published
   * slides per organ and method of their released outline (catalog codes: M
   * manual, A AI-assisted), and per organ and review round the stored
   * comparisons of confirmations with the AI proposal before them (their
   * count, the sum of their mIoU, and how many still wait for figures).
   */
  async statistics(): Promise<StatisticsRow[]> {
    const methods = this.knex(SLIDES_TABLE)
      .where({ status: 'published' })
      .whereNotNull('annotation_path')
      .groupBy('organ', 'annotation_method')
      .select(this.knex.raw("'method' as kind"), 'organ', this.knex.raw('annotation_method as bucket'), this.knex.raw('COUNT(*) as n'), this.knex.raw('NULL as total'), this.knex.raw('0 as pending'));
    const rounds = this.knex('annotation_comparisons as c')
      .join(`${SLIDES_TABLE} as s`, 's.id', 'c.slide_id')
      .where('s.status', 'published')
      .whereNull('c.failure')
      .groupBy('s.organ', 'c.round')
      .select(
        this.knex.raw("'round' as kind"),
        's.organ',
        this.knex.raw('c.round as bucket'),
        this.knex.raw('COUNT(c.miou) as n'),
        this.knex.raw('SUM(c.miou) as total'),
        this.knex.raw('COUNT(*) - COUNT(c.miou) as pending'),
      );
    // Each part grouped on its own, as a derived table: knex would otherwise place the union before the first GROUP BY.
    const rows = (await this.knex.select('*').from(methods.as('methods')).unionAll(this.knex.select('*').from(rounds.as('rounds')))) as Record<string, unknown>[];
    return rows.map((r): StatisticsRow => {
      const organ = (r.organ as string | null) ?? null;
      if (r.kind === 'method') return { kind: 'method', organ, method: (r.bucket as string | null) ?? null, slides: Number(r.n) };
      return { kind: 'round', organ, round: Number(r.bucket), compared: Number(r.n), miouSum: Number(r.total ?? 0), pending: Number(r.pending) };
    });
  }

  /** The newest AI proposal of the slide made before the event `beforeEventId`. */
  async latestAiProposal(slideId: number, beforeEventId: number, trx: Knex = this.knex): Promise<number | undefined> {
    const row = (await trx('annotation_events as e')
      .join('annotation_versions as v', 'v.id', 'e.version_id')
      .where({ 'e.slide_id': slideId, 'e.action': 'propose', 'v.method': 'ai' })
      .where('e.id', '<', beforeEventId)
      .orderBy('e.id', 'desc')
      .first('e.version_id')) as { version_id: number } | undefined;
    return row ? Number(row.version_id) : undefined;
  }

  async insertComparison(row: { slideId: number; confirmEventId: number; proposalVersionId: number; confirmedVersionId: number; round: number }, trx: Knex = this.knex): Promise<void> {
    await trx('annotation_comparisons').insert({
      slide_id: row.slideId,
      confirm_event_id: row.confirmEventId,
      proposal_version_id: row.proposalVersionId,
      confirmed_version_id: row.confirmedVersionId,
      round: row.round,
    });
  }

  /** Comparisons still without figures (and not failed), oldest first; or only the one of a confirm event. */
  async pendingComparisons(limit: number, confirmEventId?: number): Promise<PendingComparison[]> {
    let query = this.knex('annotation_comparisons as c');
    if (confirmEventId !== undefined) query = query.where('c.confirm_event_id', confirmEventId);
    const rows = (await query
      .join(`${SLIDES_TABLE} as s`, 's.id', 'c.slide_id')
      .join('annotation_versions as p', 'p.id', 'c.proposal_version_id')
      .join('annotation_versions as v', 'v.id', 'c.confirmed_version_id')
      .whereNull('c.miou')
      .whereNull('c.failure')
      .orderBy('c.id', 'asc')
      .limit(limit)
      .select('c.id', 'c.slide_id', 's.width', 's.height', 'c.proposal_version_id', 'p.file_path as proposal_file', 'c.confirmed_version_id', 'v.file_path as confirmed_file')) as Record<string, unknown>[];
    return rows.map((r) => ({
      id: Number(r.id),
      slide: { id: Number(r.slide_id), width: Number(r.width), height: Number(r.height) },
      proposal: { id: Number(r.proposal_version_id), filePath: String(r.proposal_file) },
      confirmed: { id: Number(r.confirmed_version_id), filePath: String(r.confirmed_file) },
    }));
  }

  async storeComparison(id: number, figures: { miou: number; tumourIou: number; downsample: number }, now: Date): Promise<void> {
    await this.knex('annotation_comparisons')
      .where({ id })
      .update({ miou: figures.miou, tumour_iou: figures.tumourIou, downsample: figures.downsample, compared_at: toDbTime(now) });
  }

  async failComparison(id: number, reason: string, now: Date): Promise<void> {
    await this.knex('annotation_comparisons').where({ id }).update({ failure: reason.slice(0, 500), compared_at: toDbTime(now) });
  }

  async setSlideAnnotation(slideId: number, fields: { annotationPath: string; summary: unknown; method: string }, trx: Knex = this.knex): Promise<void> {
    await trx(SLIDES_TABLE)
      .where({ id: slideId })
      .update({ annotation_path: fields.annotationPath, annotation_summary: summaryColumn(fields.summary), annotation_method: fields.method });
  }

  private versionQuery(trx: Knex) {
    return trx('annotation_versions as v')
      .leftJoin('users as u', 'u.id', 'v.author_id')
      .select<Record<string, unknown>[]>('v.*', 'u.email as author_email', 'u.name as author_name');
  }
}

function toVersion(row: Record<string, unknown>): AnnotationVersion {
  return {
    id: Number(row.id),
    slideId: Number(row.slide_id),
    parentId: row.parent_id === null ? null : Number(row.parent_id),
    method: row.method as VersionMethod,
    model: (row.model as string | null) ?? null,
    author: row.author_id === null || row.author_email === null ? null : { id: Number(row.author_id), email: String(row.author_email), name: (row.author_name as string | null) ?? null },
    note: (row.note as string | null) ?? null,
    filePath: String(row.file_path),
    sha256: String(row.sha256),
    regions: Number(row.regions),
    area: Number(row.area),
    createdAt: fromDbTime(row.created_at as string),
  };
}

function toWorkflow(row: Record<string, unknown>): Workflow {
  const id = (value: unknown) => (value === null || value === undefined ? null : Number(value));
  return {
    slideId: Number(row.slide_id),
    state: row.state as ReviewState,
    currentVersionId: id(row.current_version_id),
    releasedVersionId: id(row.released_version_id),
    annotatorId: id(row.annotator_id),
    checkerId: id(row.checker_id),
    round: Number(row.round),
    revision: Number(row.revision),
    reviewStartedAt: row.review_started_at ? fromDbTime(row.review_started_at as string) : null,
    updatedAt: fromDbTime(row.updated_at as string),
  };
}

function workflowColumns(w: Workflow): Record<string, unknown> {
  return {
    slide_id: w.slideId,
    state: w.state,
    current_version_id: w.currentVersionId,
    released_version_id: w.releasedVersionId,
    annotator_id: w.annotatorId,
    checker_id: w.checkerId,
    round: w.round,
    revision: w.revision,
    review_started_at: w.reviewStartedAt ? toDbTime(w.reviewStartedAt) : null,
    updated_at: toDbTime(w.updatedAt),
  };
}

function toEvent(row: Record<string, unknown>): ReviewEvent {
  return {
    id: Number(row.id),
    slideId: Number(row.slide_id),
    versionId: row.version_id === null ? null : Number(row.version_id),
    actor: row.actor_id === null || row.actor_email === null ? null : { id: Number(row.actor_id), email: String(row.actor_email) },
    action: row.action as ReviewAction,
    round: Number(row.round),
    comment: (row.comment as string | null) ?? null,
    createdAt: fromDbTime(row.created_at as string),
  };
}
