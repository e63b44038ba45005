import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Knex } from 'knex';
import type { StaffRole } from '../access/users.repository.js';
import {
  AnnotationError,
  annotationsFromGeoJson,
  describeProblems,
  isShape,
  parseAperioXml,
  regionArea,
  serializeAperioXml,
  summarizeAnnotations,
  toGeoJson,
  validityProblems,
  type AnnotationFeatureCollection,
  type AperioAnnotations,
} from '../annotations/index.js';
import type { AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation } from '../db/dialect.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { writeFileAtomic } from '../ingest/files.js';
import { compareAnnotations, type AgreementReport } from '../toolbox/agreement.js';
import { annotationStatistics, type AnnotationStatistics } from './statistics.js';
import {
  REVIEW_STATES,
  type AnnotationVersion,
  type ReviewAction,
  type ReviewedSlide,
  type ReviewEvent,
  type ReviewRepository,
  type ReviewState,
  type VersionMethod,
  type Workflow,
  type WorklistRow,
} from './review.repository.js';
import { wholeParam } from '../query-params.js';

/** Who acts: a user (with their staff roles) or, with `id` null, the command line. */
export interface Reviewer {
  id: number | null;
  roles: readonly StaffRole[];
  ip?: string | null;
}

export interface ReviewSettings {
  /** Where versions are kept: `<dataDir>/annotations/<slide id>/<version id>.xml`. */
  dataDir: string;
  /** The slide store: a released version becomes the slide's `<name>.xml` there. */
  slideStore: string;
}

export interface SlideReview {
  slide: { id: number; name: string; width: number; height: number };
  workflow: Workflow;
  versions: AnnotationVersion[];
  events: ReviewEvent[];
  /** Seconds since the current round's review began; null when no review is under way. */
  reviewSeconds: number | null;
}

export interface Comparison {
  a: number;
  b: number;
  agreement: AgreementReport;
  edits: {
    /** Level-0 pixels² outlined in B but not in A, and in A but not in B (measured on the comparison grid). */
    areaAdded: number;
    areaRemoved: number;
    regionsAdded: number;
    regionsRemoved: number;
    /** Seconds from A's creation to B's. */
    secondsBetween: number;
  };
}

const COMMENT_MAX = 2000;
const NOTE_MAX = 2000;
const MODEL_MAX = 200;
/** Comparisons are rasterised on a grid of at most this many cells (the downsample grows with the slide). */
export const COMPARE_CELLS = 4_000_000;

/**
 * The annotation review of each slide (issue 9): versions from manual work,
 * AI proposals and corrections; a workflow per slide (to-annotate →
 * proposed → in-review → cross-check → released, a cross-check may return it
 * to in-review); the released version is written as the slide's annotation
 * file, which is what the catalog, the viewer and downloads serve.
 *
 * Every change names the workflow revision it was made against; a change
 * against an older revision is refused with 409, so two pathologists cannot
 * overwrite each other's work.
 */
export class ReviewService {
  constructor(
    private readonly repository: ReviewRepository,
    private readonly audit: AuditLog,
    private readonly settings: ReviewSettings,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async review(slideId: number): Promise<SlideReview> {
    const slide = await this.requireSlide(slideId);
    const workflow = await this.ensureWorkflow(slide);
    const [versions, events] = await Promise.all([this.repository.versions(slideId), this.repository.events(slideId)]);
    const inReview = workflow.state !== 'released' && workflow.state !== 'to-annotate' && workflow.reviewStartedAt;
    return {
      slide: { id: slide.id, name: slide.name, width: slide.width, height: slide.height },
      workflow,
      versions,
      events,
      reviewSeconds: inReview ? Math.round((this.clock().getTime() - workflow.reviewStartedAt!.getTime()) / 1000) : null,
    };
  }

  /** An AI proposal or a manual outline brought in from a file (CLI or API): a new round's first version. */
  async propose(slideId: number, input: { doc: AperioAnnotations; method: 'ai' | 'manual'; model?: string | null; note?: string | null }, actor: Reviewer): Promise<SlideReview> {
    const slide = await this.requireSlide(slideId);
    if (input.method === 'ai' && !input.model?.trim()) throw badRequest('model_required', 'an AI proposal names the model that made it (--model / model)');
    const model = checkedText(input.model ?? null, MODEL_MAX, 'model');
    this.checkDocument(input.doc, slide);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow, trx) => {
      if (workflow.state === 'cross-check') throw conflict('under_cross_check', `slide ${slide.id} is being cross-checked; approve or return it before a new proposal`);
      const newRound = workflow.state === 'released' || workflow.state === 'to-annotate';
      const round = newRound ? workflow.round + 1 : workflow.round;
      const versionId = await this.addVersion(slide, input.doc, { parentId: workflow.currentVersionId, method: input.method, model, note: input.note ?? null, authorId: actor.id }, trx);
      return {
        workflow: {
          ...workflow,
          state: input.method === 'ai' ? 'proposed' : 'in-review',
          currentVersionId: versionId,
          annotatorId: null,
          checkerId: null,
          round,
          reviewStartedAt: newRound ? this.clock() : workflow.reviewStartedAt,
        },
        event: { action: 'propose', versionId, comment: input.note ?? null },
      };
    });
    return this.review(slideId);
  }

  /** A pathologist's edit of the current version, saved as a new version. */
  async save(slideId: number, input: { doc: AperioAnnotations; revision: number; note?: string | null }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    this.checkDocument(input.doc, slide);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow, trx) => {
      expectRevision(workflow, input.revision);
      if (workflow.state === 'cross-check') throw conflict('under_cross_check', `slide ${slide.id} is being cross-checked; it can be edited again once it is returned`);
      const newRound = workflow.state === 'released' || workflow.state === 'to-annotate';
      const method = (await this.roundHasProposal(slide.id, workflow, newRound, trx)) ? 'corrected' : 'manual';
      const versionId = await this.addVersion(slide, input.doc, { parentId: workflow.currentVersionId, method, model: null, note: input.note ?? null, authorId: actor.id }, trx);
      return {
        workflow: {
          ...workflow,
          state: 'in-review',
          currentVersionId: versionId,
          round: newRound ? workflow.round + 1 : workflow.round,
          reviewStartedAt: newRound ? this.clock() : workflow.reviewStartedAt,
        },
        event: { action: 'save', versionId, comment: input.note ?? null },
      };
    });
    return this.review(slideId);
  }

  /** The pathologist takes the current version as correct: it goes to a colleague's cross-check. */
  async confirm(slideId: number, input: { revision: number }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow) => {
      expectRevision(workflow, input.revision);
      if (workflow.state !== 'proposed' && workflow.state !== 'in-review') throw conflict('not_in_review', `slide ${slide.id} is ${workflow.state}; only a proposed or in-review outline can be confirmed`);
      return {
        workflow: { ...workflow, state: 'cross-check', annotatorId: actor.id },
        event: { action: 'confirm', versionId: workflow.currentVersionId, comment: null },
      };
    });
    return this.review(slideId);
  }

  /** A second pathologist approves: the version is released and becomes the slide's annotation. */
  async approve(slideId: number, input: { revision: number; comment?: string | null }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow, trx) => {
      expectRevision(workflow, input.revision);
      this.requireCrossChecker(workflow, actor, slide);
      const version = (await this.repository.version(slide.id, workflow.currentVersionId!, trx))!;
      const doc = await this.document(version);
      const aiAssisted = await this.chainHasProposal(slide.id, version, trx);
      const file = path.join(this.settings.slideStore, `${slide.name}.xml`);
      await writeFileAtomic(file, serializeAperioXml(doc));
      await this.repository.setSlideAnnotation(slide.id, { annotationPath: path.basename(file), summary: summarizeAnnotations(doc, doc.micronsPerPixel), method: aiAssisted ? 'A' : 'M' }, trx);
      return {
        workflow: { ...workflow, state: 'released', releasedVersionId: version.id, checkerId: actor.id },
        event: { action: 'approve', versionId: version.id, comment: checkedText(input.comment ?? null, COMMENT_MAX, 'comment') },
      };
    });
    return this.review(slideId);
  }

  /** A second pathologist sends it back with what to correct; a new round begins. */
  async returnForCorrection(slideId: number, input: { revision: number; comment: string }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const comment = checkedText(input.comment, COMMENT_MAX, 'comment');
    if (!comment) throw badRequest('comment_required', 'returning an outline needs a comment that says what to correct');
    const slide = await this.requireSlide(slideId);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow) => {
      expectRevision(workflow, input.revision);
      this.requireCrossChecker(workflow, actor, slide);
      return {
        workflow: { ...workflow, state: 'in-review', annotatorId: null, round: workflow.round + 1 },
        event: { action: 'return', versionId: workflow.currentVersionId, comment },
      };
    });
    return this.review(slideId);
  }

  async versionDocument(slideId: number, versionId: number): Promise<{ version: AnnotationVersion; doc: AperioAnnotations }> {
    const version = await this.repository.version(slideId, versionId);
    if (!version) throw notFound('version_not_found', `Slide ${slideId} has no annotation version ${versionId}`);
    return { version, doc: await this.document(version) };
  }

  async versionGeoJson(slideId: number, versionId: number): Promise<AnnotationFeatureCollection> {
    return toGeoJson((await this.versionDocument(slideId, versionId)).doc);
  }

  /** IoU per layer, mIoU and edit statistics between two versions of one slide. */
  async compare(slideId: number, a: number, b: number, downsample?: number): Promise<Comparison> {
    const slide = await this.requireSlide(slideId);
    const [va, vb] = await Promise.all([this.versionDocument(slideId, a), this.versionDocument(slideId, b)]);
    return compareVersions(slide, va, vb, downsample);
  }

  /** Manual and AI-assisted counts and the proposals' agreement per organ (see statistics.ts). */
  statistics(): Promise<AnnotationStatistics> {
    return annotationStatistics(this.repository, this);
  }

  async worklist(query: Record<string, unknown>): Promise<{ items: WorklistRow[]; total: number; limit: number; offset: number }> {
    const raw = query.state;
    const states = raw === undefined || raw === '' ? [] : String(raw).split(',');
    for (const s of states) if (!REVIEW_STATES.includes(s as ReviewState)) throw badRequest('invalid_query', `state must be among ${REVIEW_STATES.join(', ')}, got "${s}"`);
    const limit = wholeParam(query.limit, 50, 1, 500, 'limit');
    const offset = wholeParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const found = await this.repository.worklist({ states: states as ReviewState[], limit, offset });
    return { ...found, limit, offset };
  }

  private async change(
    slide: ReviewedSlide,
    actor: Reviewer,
    step: (workflow: Workflow, trx: Knex.Transaction) => Promise<{ workflow: Workflow; event: { action: ReviewAction; versionId: number | null; comment: string | null } }>,
  ): Promise<void> {
    await this.repository.transaction(async (trx) => {
      const current = (await this.repository.workflow(slide.id, trx, true))!;
      const { workflow, event } = await step(current, trx);
      const now = this.clock();
      const next = { ...workflow, revision: current.revision + 1, updatedAt: now };
      if (!(await this.repository.updateWorkflow(next, current.revision, trx))) throw staleRevision(slide.id);
      await this.repository.insertEvent({ slideId: slide.id, versionId: event.versionId, actorId: actor.id, action: event.action, round: next.round, comment: event.comment, createdAt: now }, trx);
      await this.audit.record(
        {
          action: `annotation.${event.action}`,
          actorId: actor.id,
          subjectType: 'slide',
          subjectId: slide.id,
          ip: actor.ip ?? null,
          details: { version: event.versionId, state: next.state, round: next.round },
        },
        trx,
      );
    });
  }

  /** A slide's workflow, made on first use: released with its ingested outline as the baseline, or to-annotate. */
  private async ensureWorkflow(slide: ReviewedSlide): Promise<Workflow> {
    const existing = await this.repository.workflow(slide.id);
    if (existing) return existing;
    const now = this.clock();
    let baseline: AperioAnnotations | undefined;
    if (slide.annotationPath) {
      try {
        baseline = parseAperioXml(await readFile(path.resolve(this.settings.slideStore, slide.annotationPath), 'utf8'));
      } catch (error) {
        throw new AppError(500, 'annotation_unreadable', `The annotation of slide ${slide.id} cannot be read to start its review`, { expose: true, cause: error });
      }
    }
    try {
      return await this.repository.transaction(async (trx) => {
        const versionId = baseline
          ? await this.addVersion(slide, baseline, { parentId: null, method: slide.annotationMethod === 'A' ? 'corrected' : 'manual', model: null, note: 'the outline published at ingest', authorId: null }, trx)
          : null;
        const workflow: Workflow = {
          slideId: slide.id,
          state: versionId ? 'released' : 'to-annotate',
          currentVersionId: versionId,
          releasedVersionId: versionId,
          annotatorId: null,
          checkerId: null,
          round: 0,
          revision: 0,
          reviewStartedAt: null,
          updatedAt: now,
        };
        await this.repository.insertWorkflow(workflow, trx);
        if (versionId) await this.repository.insertEvent({ slideId: slide.id, versionId, actorId: null, action: 'baseline', round: 0, comment: null, createdAt: now }, trx);
        return workflow;
      });
    } catch (error) {
      // Another request started it at the same moment: theirs stands.
      if (isUniqueViolation(error)) return (await this.repository.workflow(slide.id))!;
      throw error;
    }
  }

  private async addVersion(
    slide: ReviewedSlide,
    doc: AperioAnnotations,
    meta: { parentId: number | null; method: VersionMethod; model: string | null; note: string | null; authorId: number | null },
    trx: Knex.Transaction,
  ): Promise<number> {
    const xml = serializeAperioXml(doc);
    const folder = path.join(this.settings.dataDir, 'annotations', String(slide.id));
    await mkdir(folder, { recursive: true });
    const partial = path.join(folder, `.incoming-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.xml`);
    await writeFile(partial, xml);
    try {
      const id = await this.repository.insertVersion(
        {
          slideId: slide.id,
          parentId: meta.parentId,
          method: meta.method,
          model: meta.model,
          authorId: meta.authorId,
          note: checkedText(meta.note, NOTE_MAX, 'note'),
          filePath: '',
          sha256: createHash('sha256').update(xml).digest('hex'),
          regions: doc.layers.reduce((n, l) => n + l.regions.filter((r) => isShape(r.type)).length, 0),
          area: outlinedArea(doc),
        },
        this.clock(),
        trx,
      );
      const relative = path.join('annotations', String(slide.id), `${id}.xml`);
      await this.repository.setVersionFile(id, relative, trx);
      await rename(partial, path.join(this.settings.dataDir, relative));
      return id;
    } finally {
      await rm(partial, { force: true });
    }
  }

  private async document(version: AnnotationVersion): Promise<AperioAnnotations> {
    try {
      return parseAperioXml(await readFile(path.join(this.settings.dataDir, version.filePath), 'utf8'));
    } catch (error) {
      throw new AppError(500, 'version_unreadable', `Annotation version ${version.id} of slide ${version.slideId} cannot be read`, { expose: true, cause: error });
    }
  }

  private checkDocument(doc: AperioAnnotations, slide: ReviewedSlide): void {
    const problems = validityProblems(doc, { width: slide.width, height: slide.height });
    if (problems.length > 0) throw badRequest('invalid_annotation', `The outline cannot be taken: ${describeProblems(problems)}`, { problems });
  }

  private requireCrossChecker(workflow: Workflow, actor: Reviewer, slide: ReviewedSlide): void {
    if (workflow.state !== 'cross-check') throw conflict('not_in_cross_check', `slide ${slide.id} is ${workflow.state}; only a confirmed outline is cross-checked`);
    if (actor.id !== null && actor.id === workflow.annotatorId) throw new AppError(403, 'own_confirmation', 'The cross-check must be done by another pathologist than the one who confirmed');
  }

  /** Whether an AI proposal started this round (or, for a new round, nothing has yet). */
  private async roundHasProposal(slideId: number, workflow: Workflow, newRound: boolean, trx: Knex): Promise<boolean> {
    if (newRound || workflow.currentVersionId === null) return false;
    const current = await this.repository.version(slideId, workflow.currentVersionId, trx);
    return current ? this.chainHasProposal(slideId, current, trx) : false;
  }

  /** Whether `version` descends from an AI proposal made since the last release before it. */
  private async chainHasProposal(slideId: number, version: AnnotationVersion, trx: Knex): Promise<boolean> {
    const versions = new Map((await this.repository.versions(slideId, trx)).map((v) => [v.id, v]));
    const workflow = await this.repository.workflow(slideId, trx);
    for (let v: AnnotationVersion | undefined = version; v; v = v.parentId === null ? undefined : versions.get(v.parentId)) {
      if (v !== version && v.id === workflow?.releasedVersionId) return false;
      if (v.method === 'ai' || v.method === 'corrected') return true;
    }
    return false;
  }

  private async requireSlide(slideId: number): Promise<ReviewedSlide> {
    const slide = await this.repository.slide(slideId);
    if (!slide || slide.status !== 'published') throw notFound('slide_not_found', `No slide ${slideId}`);
    return slide;
  }
}

export function compareVersions(
  slide: Pick<ReviewedSlide, 'width' | 'height'>,
  a: { version: AnnotationVersion; doc: AperioAnnotations },
  b: { version: AnnotationVersion; doc: AperioAnnotations },
  downsample?: number,
): Comparison {
  const step = downsample ?? Math.max(1, Math.ceil(Math.sqrt((slide.width * slide.height) / COMPARE_CELLS)));
  const agreement = compareAnnotations(a.doc, b.doc, { width: slide.width, height: slide.height, downsample: step });
  const cell = agreement.downsample * agreement.downsample;
  const keys = (doc: AperioAnnotations) =>
    new Set(doc.layers.flatMap((l) => l.regions.filter((r) => isShape(r.type)).map((r) => JSON.stringify([l.id, r.type, r.negative, r.vertices]))));
  const [ka, kb] = [keys(a.doc), keys(b.doc)];
  return {
    a: a.version.id,
    b: b.version.id,
    agreement,
    edits: {
      areaAdded: (agreement.tumour.b - agreement.tumour.intersection) * cell,
      areaRemoved: (agreement.tumour.a - agreement.tumour.intersection) * cell,
      regionsAdded: [...kb].filter((k) => !ka.has(k)).length,
      regionsRemoved: [...ka].filter((k) => !kb.has(k)).length,
      secondsBetween: Math.round((b.version.createdAt.getTime() - a.version.createdAt.getTime()) / 1000),
    },
  };
}

/** Positive shapes minus holes, summed over every layer, in level-0 pixels². */
function outlinedArea(doc: AperioAnnotations): number {
  let area = 0;
  for (const layer of doc.layers) for (const region of layer.regions) if (isShape(region.type)) area += (region.negative ? -1 : 1) * regionArea(region);
  return Math.max(0, area);
}

function requirePathologist(actor: Reviewer): void {
  if (actor.id !== null && !actor.roles.includes('pathologist')) {
    throw new AppError(403, 'pathologist_only', 'Only pathologists edit, confirm and cross-check annotations');
  }
}

function expectRevision(workflow: Workflow, revision: number): void {
  if (!Number.isInteger(revision) || revision < 0) throw badRequest('invalid_revision', 'revision must be the whole number the outline was loaded at');
  if (revision !== workflow.revision) throw staleRevision(workflow.slideId);
}

function staleRevision(slideId: number): AppError {
  return conflict('stale_revision', `The annotation of slide ${slideId} was changed by somebody else since you loaded it; reload it and make your change again`);
}

function conflict(code: string, message: string): AppError {
  return new AppError(409, code, message);
}

function checkedText(value: string | null, max: number, name: string): string | null {
  if (value === null) return null;
  if (typeof value !== 'string') throw badRequest('invalid_body', `${name} must be text`);
  const text = value.trim();
  if (text.length > max) throw badRequest('invalid_body', `${name} is longer than ${max} characters`);
  return text === '' ? null : text;
}


/** The annotation text as a document, whatever it was written in: Aperio XML or GeoJSON. */
export function parseOutline(text: string): AperioAnnotations {
  const start = text.trimStart()[0];
  try {
    return start === '{' ? annotationsFromGeoJson(text) : parseAperioXml(text);
  } catch (error) {
    if (error instanceof AnnotationError) throw badRequest('invalid_annotation', `The outline cannot be read: ${error.message}`);
    throw error;
  }
}
