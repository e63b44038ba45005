import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Queryable, Transaction } from '../db/index.js';
import type { StaffRole } from '../access/users.repository.js';
import type { AnnotationFeatureCollection } from '../annotations/index.js';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation } from '../db/dialect.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { writeFileAtomic } from '../lib/files.js';
import type { Logger } from '../logging.js';
import type { OutlineSource, OutlineWork, PreparedOutline } from './outline-work.js';
import { annotationStatistics } from './statistics.js';
import type { AnnotationVersion, PendingComparison, ReviewAction, ReviewedSlide, ReviewRepository, ReviewState, VersionMethod, Workflow } from './review.repository.js';
import type { AnnotationStatistics, Comparison, SlideReview, Worklist } from './views.js';

/** Who acts: a user with their staff roles or, with `actorId` null, the command line. */
export interface Reviewer extends AuditActor {
  roles: readonly StaffRole[];
}

/** Which slides the worklist shows, a page at a time. */
export interface WorklistQuery {
  /** Any of these states; every state when empty. */
  states: readonly ReviewState[];
  limit: number;
  offset: number;
}

/** A new outline: an AI proposal (naming its model) or a manual one. */
export interface Proposal {
  outline: OutlineSource;
  method: 'ai' | 'manual';
  model?: string | null;
  note?: string | null;
}

export interface ReviewSettings {
  /** Where versions are kept: `<dataDir>/annotations/<slide id>/<version id>.xml`. */
  dataDir: string;
  /** The slide store: a released version becomes the slide's `<name>.xml` there. */
  slideStore: string;
  /** Organ code → name, from the vocabulary; a code not in it is shown as itself. */
  organNames?: ReadonlyMap<string, string>;
}

/** The longest texts kept with versions and review events. */
export const REVIEW_TEXT_MAX = { comment: 2000, note: 2000, model: 200 } as const;
/** Stored comparisons filled per database round trip. */
const FILL_BATCH = 20;

/**
 * The annotation review of each slide: versions from manual work,
 * AI proposals and corrections; a workflow per slide (to-annotate →
 * proposed → in-review → cross-check → released, a cross-check may return it
 * to in-review); the released version is written as the slide's annotation
 * file, which is what the catalog, the viewer and downloads serve.
 *
 * Every change names the workflow revision it was made against; a change
 * against an older revision is refused with 409, so two pathologists cannot
 * overwrite each other's work.
 *
 * Reading, checking, writing and comparing outlines is `work` (worker
 * threads in the server), never done on the caller's thread; no transaction
 * waits for it. Each confirmation's agreement with the AI proposal before it
 * is compared once and stored, which is what the statistics add up.
 */
export class ReviewService {
  private filling: Promise<void> | undefined;

  constructor(
    private readonly repository: ReviewRepository,
    private readonly audit: AuditLog,
    private readonly work: OutlineWork,
    private readonly settings: ReviewSettings,
    private readonly log?: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async review(slideId: number): Promise<SlideReview> {
    const slide = await this.requireSlide(slideId);
    const workflow = await this.ensureWorkflow(slide);
    const [versions, events] = await Promise.all([this.repository.versions(slideId), this.repository.events(slideId)]);
    const inReview = workflow.state !== 'released' && workflow.state !== 'to-annotate' && workflow.reviewStartedAt;
    return {
      slide: { id: slide.id, name: slide.name, width: slide.width, height: slide.height, mpp: slide.mpp },
      workflow,
      versions: numbered(versions),
      events,
      reviewSeconds: inReview ? Math.round((this.clock().getTime() - workflow.reviewStartedAt!.getTime()) / 1000) : null,
    };
  }

  /** An AI proposal or a manual outline brought in from a file (CLI or API): a new round's first version. */
  async propose(slideId: number, input: Proposal, actor: Reviewer): Promise<SlideReview> {
    const slide = await this.requireSlide(slideId);
    if (input.method === 'ai' && !input.model?.trim()) throw badRequest('model_required', 'an AI proposal names the model that made it (--model / model)');
    const model = checkedText(input.model ?? null, REVIEW_TEXT_MAX.model, 'model');
    const outline = await this.work.prepare(input.outline, slide, true);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow, trx) => {
      if (workflow.state === 'cross-check') throw conflict('under_cross_check', `slide ${slide.id} is being cross-checked; approve or return it before a new proposal`);
      const newRound = workflow.state === 'released' || workflow.state === 'to-annotate';
      const round = newRound ? workflow.round + 1 : workflow.round;
      const versionId = await this.addVersion(slide, outline, { parentId: workflow.currentVersionId, method: input.method, model, note: input.note ?? null, authorId: actor.actorId }, trx);
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
  async save(slideId: number, input: { outline: OutlineSource; revision: number; note?: string | null }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    const outline = await this.work.prepare(input.outline, slide, true);
    await this.ensureWorkflow(slide);
    await this.change(slide, actor, async (workflow, trx) => {
      expectRevision(workflow, input.revision);
      if (workflow.state === 'cross-check') throw conflict('under_cross_check', `slide ${slide.id} is being cross-checked; it can be edited again once it is returned`);
      const newRound = workflow.state === 'released' || workflow.state === 'to-annotate';
      const method = (await this.roundHasProposal(slide.id, workflow, newRound, trx)) ? 'corrected' : 'manual';
      const versionId = await this.addVersion(slide, outline, { parentId: workflow.currentVersionId, method, model: null, note: input.note ?? null, authorId: actor.actorId }, trx);
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

  /**
   * The pathologist takes the current version as correct: it goes to a
   * colleague's cross-check. Its agreement with the newest AI proposal
   * before it is recorded with it, and compared before the answer.
   */
  async confirm(slideId: number, input: { revision: number }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    await this.ensureWorkflow(slide);
    const eventId = await this.change(slide, actor, async (workflow) => {
      expectRevision(workflow, input.revision);
      if (workflow.state !== 'proposed' && workflow.state !== 'in-review') throw conflict('not_in_review', `slide ${slide.id} is ${workflow.state}; only a proposed or in-review outline can be confirmed`);
      return {
        workflow: { ...workflow, state: 'cross-check', annotatorId: actor.actorId },
        event: { action: 'confirm', versionId: workflow.currentVersionId, comment: null },
        afterEvent: async (id, trx, next) => {
          const proposal = workflow.currentVersionId === null ? undefined : await this.repository.latestAiProposal(slide.id, id, trx);
          if (proposal !== undefined) {
            await this.repository.insertComparison({ slideId: slide.id, confirmEventId: id, proposalVersionId: proposal, confirmedVersionId: workflow.currentVersionId!, round: next.round }, trx);
          }
        },
      };
    });
    for (const pending of await this.repository.pendingComparisons(1, eventId)) await this.compareAndStore(pending).catch((error: unknown) => this.comparisonFailed(pending, error));
    return this.review(slideId);
  }

  /** A second pathologist approves: the version is released and becomes the slide's annotation. */
  async approve(slideId: number, input: { revision: number; comment?: string | null }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const slide = await this.requireSlide(slideId);
    const current = await this.ensureWorkflow(slide);
    // Written out before the transaction, which then checks that the version is still the one under cross-check.
    const releasing = current.state === 'cross-check' && current.currentVersionId !== null ? await this.repository.version(slide.id, current.currentVersionId) : undefined;
    const released = releasing ? await this.readVersion(releasing, (file) => this.work.release(file)) : undefined;
    await this.change(slide, actor, async (workflow, trx) => {
      expectRevision(workflow, input.revision);
      this.requireCrossChecker(workflow, actor, slide);
      if (!releasing || !released || workflow.currentVersionId !== releasing.id) throw staleRevision(slide.id);
      const version = releasing;
      const aiAssisted = await this.chainHasProposal(slide.id, version, trx);
      const file = path.join(this.settings.slideStore, `${slide.name}.xml`);
      await writeFileAtomic(file, released.xml);
      await this.repository.setSlideAnnotation(slide.id, { annotationPath: path.basename(file), summary: released.summary, method: aiAssisted ? 'A' : 'M' }, trx);
      return {
        workflow: { ...workflow, state: 'released', releasedVersionId: version.id, checkerId: actor.actorId },
        event: { action: 'approve', versionId: version.id, comment: checkedText(input.comment ?? null, REVIEW_TEXT_MAX.comment, 'comment') },
      };
    });
    return this.review(slideId);
  }

  /** A second pathologist sends it back with what to correct; a new round begins. */
  async returnForCorrection(slideId: number, input: { revision: number; comment: string }, actor: Reviewer): Promise<SlideReview> {
    requirePathologist(actor);
    const comment = checkedText(input.comment, REVIEW_TEXT_MAX.comment, 'comment');
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

  /** A version as Aperio XML, written on the outline threads. */
  async versionXml(slideId: number, versionId: number): Promise<string> {
    const version = await this.requireVersion(slideId, versionId);
    return (await this.readVersion(version, (file) => this.work.release(file))).xml;
  }

  async versionGeoJson(slideId: number, versionId: number): Promise<AnnotationFeatureCollection> {
    const version = await this.requireVersion(slideId, versionId);
    return this.readVersion(version, (file) => this.work.geoJson(file));
  }

  /**
   * IoU per layer, mIoU and edit statistics between two versions of one
   * slide (see comparison.ts for the downsample and its bounds).
   */
  async compare(slideId: number, a: number, b: number, downsample?: number): Promise<Comparison> {
    const slide = await this.requireSlide(slideId);
    const [va, vb] = await Promise.all([this.requireVersion(slideId, a), this.requireVersion(slideId, b)]);
    const compared = await this.readVersion(va, () => this.readVersion(vb, () => this.work.compare(this.versionFile(va), this.versionFile(vb), slide, downsample)));
    const { agreement } = compared;
    const numbers = new Map(numbered(await this.repository.versions(slideId)).map((v) => [v.id, v.number]));
    return {
      a: va.id,
      b: vb.id,
      aNumber: numbers.get(va.id)!,
      bNumber: numbers.get(vb.id)!,
      agreement,
      edits: {
        areaAdded: compared.areaAdded,
        areaRemoved: compared.areaRemoved,
        regionsAdded: compared.regionsAdded,
        regionsRemoved: compared.regionsRemoved,
        secondsBetween: Math.round((vb.createdAt.getTime() - va.createdAt.getTime()) / 1000),
      },
    };
  }

  /**
   * Manual and AI-assisted counts and the proposals' agreement per organ
   * (see statistics.ts): one query over the stored figures. Confirmations
   * whose figures are missing (made before they were stored) are counted as
   * pending and compared in the background, once.
   */
  async statistics(): Promise<AnnotationStatistics> {
    const rows = await this.repository.statistics();
    if (rows.some((row) => row.kind === 'round' && row.pending > 0)) void this.fillComparisons();
    const statistics = annotationStatistics(rows);
    return { ...statistics, organs: statistics.organs.map((o) => ({ ...o, organName: this.organName(o.organ) })) };
  }

  /** Compare every confirmation still without figures, one at a time on the outline threads; one run at a time. */
  fillComparisons(): Promise<void> {
    this.filling ??= (async () => {
      try {
        for (;;) {
          const batch = await this.repository.pendingComparisons(FILL_BATCH);
          if (batch.length === 0) return;
          for (const pending of batch) await this.compareAndStore(pending);
        }
      } catch (error) {
        // Left pending: the next request for the statistics tries again.
        this.log?.warn({ err: error }, 'annotation statistics: filling in stored comparisons stopped');
      } finally {
        this.filling = undefined;
      }
    })();
    return this.filling;
  }

  close(): Promise<void> {
    return this.work.close();
  }

  /** Each published slide's review state, most recently changed first. */
  async worklist({ states, limit, offset }: WorklistQuery): Promise<Worklist> {
    const found = await this.repository.worklist({ states: [...states], limit, offset });
    return { ...found, items: found.items.map((item) => ({ ...item, slide: { ...item.slide, organName: this.organName(item.slide.organ) } })), limit, offset };
  }

  private organName(organ: string | null): string | null {
    return organ === null ? null : (this.settings.organNames?.get(organ) ?? organ);
  }

  /** One step of the workflow in a transaction: the new workflow, its event and audit record; returns the event's id. */
  private async change(
    slide: ReviewedSlide,
    actor: Reviewer,
    step: (workflow: Workflow, trx: Transaction) => Promise<{
      workflow: Workflow;
      event: { action: ReviewAction; versionId: number | null; comment: string | null };
      afterEvent?: (eventId: number, trx: Transaction, next: Workflow) => Promise<void>;
    }>,
  ): Promise<number> {
    return this.repository.transaction(async (trx) => {
      const current = (await this.repository.workflow(slide.id, trx, true))!;
      const { workflow, event, afterEvent } = await step(current, trx);
      const now = this.clock();
      const next = { ...workflow, revision: current.revision + 1, updatedAt: now };
      if (!(await this.repository.updateWorkflow(next, current.revision, trx))) throw staleRevision(slide.id);
      const eventId = await this.repository.insertEvent({ slideId: slide.id, versionId: event.versionId, actorId: actor.actorId, action: event.action, round: next.round, comment: event.comment, createdAt: now }, trx);
      await afterEvent?.(eventId, trx, next);
      await this.audit.record(
        {
          action: `annotation.${event.action}`,
          actorId: actor.actorId,
          subjectType: 'slide',
          subjectId: slide.id,
          ip: actor.ip ?? null,
          details: { version: event.versionId, state: next.state, round: next.round },
        },
        trx,
      );
      return eventId;
    });
  }

  private async compareAndStore(pending: PendingComparison): Promise<void> {
    try {
      const { agreement } = await this.work.compare(this.versionFile(pending.proposal), this.versionFile(pending.confirmed), pending.slide);
      await this.repository.storeComparison(pending.id, { miou: agreement.miou, tumourIou: agreement.tumour.iou, downsample: agreement.downsample }, this.clock());
    } catch (error) {
      if (!(error instanceof AppError && error.code === 'annotation_unreadable')) throw error;
      // A version file that cannot be read will not be readable next time either: recorded, not retried.
      this.log?.error({ slide: pending.slide.id, versions: [pending.proposal.id, pending.confirmed.id], err: error }, 'annotation statistics: a confirmation cannot be compared');
      await this.repository.failComparison(pending.id, `version ${pending.proposal.id} or ${pending.confirmed.id} cannot be read`, this.clock());
    }
  }

  /** The confirmation stands; its figures stay pending and are filled in with the others later. */
  private comparisonFailed(pending: PendingComparison, error: unknown): void {
    this.log?.warn({ slide: pending.slide.id, err: error }, 'annotation statistics: comparing a confirmation failed; it stays pending');
  }

  /** A slide's workflow, made on first use: released with its ingested outline as the baseline, or to-annotate. */
  private async ensureWorkflow(slide: ReviewedSlide): Promise<Workflow> {
    const existing = await this.repository.workflow(slide.id);
    if (existing) return existing;
    const now = this.clock();
    let baseline: PreparedOutline | undefined;
    if (slide.annotationPath) {
      try {
        baseline = await this.work.prepare({ file: path.resolve(this.settings.slideStore, slide.annotationPath) }, slide, false);
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
    outline: PreparedOutline,
    meta: { parentId: number | null; method: VersionMethod; model: string | null; note: string | null; authorId: number | null },
    trx: Transaction,
  ): Promise<number> {
    const { xml } = outline;
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
          note: checkedText(meta.note, REVIEW_TEXT_MAX.note, 'note'),
          filePath: '',
          sha256: outline.sha256,
          regions: outline.regions,
          area: outline.area,
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

  private async requireVersion(slideId: number, versionId: number): Promise<AnnotationVersion> {
    const version = await this.repository.version(slideId, versionId);
    if (!version) throw notFound('version_not_found', `Slide ${slideId} has no annotation version ${versionId}`);
    return version;
  }

  private versionFile(version: Pick<AnnotationVersion, 'filePath'>): string {
    return path.join(this.settings.dataDir, version.filePath);
  }

  /** `use` on the version's file, with an unreadable file named as this version's. */
  private async readVersion<T>(version: AnnotationVersion, use: (file: string) => Promise<T>): Promise<T> {
    try {
      return await use(this.versionFile(version));
    } catch (error) {
      if (error instanceof AppError && error.code === 'annotation_unreadable') {
        throw new AppError(500, 'version_unreadable', `Annotation version ${version.id} of slide ${version.slideId} cannot be read`, { expose: true, cause: error });
      }
      throw error;
    }
  }

  private requireCrossChecker(workflow: Workflow, actor: Reviewer, slide: ReviewedSlide): void {
    if (workflow.state !== 'cross-check') throw conflict('not_in_cross_check', `slide ${slide.id} is ${workflow.state}; only a confirmed outline is cross-checked`);
    if (actor.actorId !== null && actor.actorId === workflow.annotatorId) throw new AppError(403, 'own_confirmation', 'The cross-check must be done by another pathologist than the one who confirmed');
  }

  /** Whether an AI proposal started this round (or, for a new round, nothing has yet). */
  private async roundHasProposal(slideId: number, workflow: Workflow, newRound: boolean, trx: Queryable): Promise<boolean> {
    if (newRound || workflow.currentVersionId === null) return false;
    const current = await this.repository.version(slideId, workflow.currentVersionId, trx);
    return current ? this.chainHasProposal(slideId, current, trx) : false;
  }

  /** Whether `version` descends from an AI proposal made since the last release before it. */
  private async chainHasProposal(slideId: number, version: AnnotationVersion, trx: Queryable): Promise<boolean> {
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

/** Versions with their number on the slide: 1 for the first made, in order of creation (ids grow with it). */
function numbered<V extends { id: number }>(versions: readonly V[]): (V & { number: number })[] {
  const order = new Map([...versions].sort((x, y) => x.id - y.id).map((v, i) => [v.id, i + 1]));
  return versions.map((v) => ({ ...v, number: order.get(v.id)! }));
}

function requirePathologist(actor: Reviewer): void {
  if (actor.actorId !== null && !actor.roles.includes('pathologist')) {
    throw new AppError(403, 'pathologist_only', 'Only pathologists edit, confirm and cross-check annotations');
  }
}

function expectRevision(workflow: Workflow, revision: number): void {
  if (revision !== workflow.revision) throw staleRevision(workflow.slideId);
}

function staleRevision(slideId: number): AppError {
  return conflict('stale_revision', `The annotation of slide ${slideId} was changed by somebody else since you loaded it; reload it and make your change again`);
}

function conflict(code: string, message: string): AppError {
  return new AppError(409, code, message);
}

/** Trimmed, empty as null; the command line's texts are bounded here, the API's by its schemas as well. */
function checkedText(value: string | null, max: number, name: string): string | null {
  if (value === null) return null;
  const text = value.trim();
  if (text.length > max) throw badRequest('invalid_request', `${name} is longer than ${max} characters`);
  return text === '' ? null : text;
}


