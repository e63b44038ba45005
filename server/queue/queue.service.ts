import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { hasLevel, isStaff, type Requester } from '../access/levels.js';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import type { SlideRelease } from '../catalog/slide-release.js';
import type { Settle } from '../downloads/downloads.service.js';
import { limitKey, type DownloadLimits } from '../downloads/limits.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { ToolboxError } from '../toolbox/index.js';
import { WsiError } from '../wsi/index.js';
import { overBudget, type JobEstimate, type OutputLimits } from './budget.js';
import { FINISHED, type JobStatus, type JobType, type QueuedJob } from './model.js';
import { randomOverlayName, type OverlayPublisher } from './overlay-publisher.js';
import type { QueueRepository } from './queue.repository.js';
import type { JobParameters } from './tasks/index.js';
import type { HeatmapParameters } from './tasks/parameters.js';
import type { JobList, JobView } from './views.js';
import { resultsDir } from './worker.js';

/** A job as it is submitted: a type, a slide and the type's parameters, already checked against its schema (tasks/parameters.ts). */
export type JobSubmission = { [T in JobType]: { type: T; slideId: number; parameters: JobParameters[T] } }[JobType];

/** Which jobs a listing shows. */
export interface JobFilter {
  slide?: number;
  status?: JobStatus;
}

/** A result file to send; `settle` once the response has ended, so that the download limits count what was sent. */
export interface ResultDelivery {
  name: string;
  size: number;
  body: Readable;
  settle: Settle;
}

export interface QueueServiceOptions {
  repository: QueueRepository;
  /** Whether a slide is published in the catalog. */
  slideExists(slideId: number): Promise<boolean>;
  audit: AuditLog;
  /** A result is made from its slide's pixels: it is sent only while the slide may leave (published, not withdrawn). */
  release: Pick<SlideRelease, 'assertMayLeave'>;
  /** The per-user download limits every download path shares. */
  downloadLimits: Pick<DownloadLimits, 'admit'>;
  resultsRoot: string;
  /** The heat-map overlays and who holds their names. */
  overlays: OverlayPublisher;
  /**
   * What a job would make on the slide (see budget.ts); undefined when the
   * slide is not published. Throws the toolbox's ToolboxError for parameters
   * the slide cannot take.
   */
  estimate(slideId: number, type: JobType, parameters: Record<string, unknown>): Promise<JobEstimate | undefined>;
  maxAttempts: number;
  quotas: OutputLimits & {
    /** Queued jobs per user (429 beyond); 0 = no bound. */
    maxQueuedPerUser: number;
  };
}

/**
 * Toolbox jobs for the API: submit (parameters validated at once, against the
 * slide and the output budget too, within the user's quota of queued jobs),
 * list, get, cancel and result files. A job is visible to its owner and to
 * administrators; to anybody else it does not exist (404).
 */
export class QueueService {
  constructor(private readonly options: QueueServiceOptions) {}

  /**
   * Queues a job once its parameters fit its slide, its output fits the
   * budget and the user is within their quota; a heat map's overlay name is
   * claimed for its owner at the same time.
   */
  async submit(requester: Requester, submission: JobSubmission): Promise<JobView> {
    const user = assertToolboxUser(requester);
    const { type, slideId } = submission;
    // A copy: a heat map without a name is given one below.
    const parameters: Record<string, unknown> = { ...submission.parameters };
    if (!(await this.options.slideExists(slideId))) throw notFound('slide_not_found', `No slide ${slideId}`);
    if (type === 'heatmap') await this.checkHeatmapSource(requester, slideId, parameters as HeatmapParameters);
    await this.checkBudget(type, slideId, parameters);
    const overlay = type === 'heatmap' ? await this.overlayName(requester, slideId, parameters as HeatmapParameters) : undefined;
    const { maxQueuedPerUser } = this.options.quotas;
    const outcome = await this.options.repository.submit({ type, slideId, parameters, ownerId: user.id, maxAttempts: this.options.maxAttempts }, { maxQueuedPerUser, overlay });
    if ('job' in outcome) return view(outcome.job);
    if (outcome.refused === 'quota') {
      throw new AppError(
        429,
        'queue_quota',
        `You have ${outcome.queued} jobs waiting in the queue, the most one user may have (queue.maxQueuedPerUser = ${maxQueuedPerUser}); wait until some have run, or cancel some`,
        { details: { queued: outcome.queued, maxQueuedPerUser } },
      );
    }
    throw nameTaken(overlay!.name, outcome.holder.publishedAt !== null);
  }

  /** The requester's jobs (administrators: everyone's), newest first. */
  async list(requester: Requester, { slide, status }: JobFilter): Promise<JobList> {
    const user = requireUser(requester);
    const admin = requester.roles.includes('admin');
    const jobs = await this.options.repository.list({ ...(admin ? {} : { ownerId: user.id }), slideId: slide, status });
    return { items: jobs.map(view) };
  }

  async get(requester: Requester, id: number): Promise<JobView> {
    return view(await this.visible(requester, id));
  }

  async cancel(requester: Requester, id: number): Promise<JobView> {
    const job = await this.visible(requester, id);
    if (FINISHED.includes(job.status)) throw new AppError(409, 'job_finished', `Job ${id} has already ${job.status === 'cancelled' ? 'been cancelled' : job.status}`);
    return view((await this.options.repository.requestCancel(id))!);
  }

  /** A result file of a succeeded job, for L2/L3 or staff who can see the job; the delivery is audited. */
  async result(requester: Requester, id: number, name: string, actor: AuditActor): Promise<ResultDelivery> {
    assertToolboxUser(requester);
    const job = await this.visible(requester, id);
    await this.options.release.assertMayLeave(job.slideId);
    const found = job.status === 'succeeded' ? job.results?.find((r) => r.name === name) : undefined;
    if (!found) throw notFound('result_not_found', `Job ${id} has no result "${name}"`);
    const file = path.join(resultsDir(this.options.resultsRoot, id), found.name);
    const ip = actor.ip ?? null;
    const ticket = this.options.downloadLimits.admit(limitKey({ userId: actor.actorId, ip }), found.size);
    try {
      await this.options.audit.record({
        action: 'job.result.download',
        actorId: actor.actorId,
        subjectType: 'queue_job',
        subjectId: id,
        ip,
        details: { slideId: job.slideId, type: job.type, name: found.name, size: found.size },
      });
    } catch (error) {
      ticket.settle(0);
      throw error;
    }
    const body = createReadStream(file);
    let settled = false;
    return {
      name: found.name,
      size: found.size,
      body,
      settle: async () => {
        if (settled) return;
        settled = true;
        const sent = Math.max(0, body.bytesRead - body.readableLength);
        body.destroy();
        ticket.settle(sent);
      },
    };
  }

  /** The slide a job concerns, for the route's access check before anything else. */
  async slideOf(requester: Requester, id: number): Promise<number> {
    return (await this.visible(requester, id)).slideId;
  }

  private async visible(requester: Requester, id: number): Promise<QueuedJob> {
    const user = requireUser(requester);
    const job = await this.options.repository.findById(id);
    if (!job || (job.ownerId !== user.id && !requester.roles.includes('admin'))) throw notFound('job_not_found', `No job ${id}`);
    return job;
  }

  /**
   * Overlays are shown to everyone who views the slide: a heat map's name is
   * claimed for its owner when the job is accepted, and a name that somebody
   * else holds (their job may publish under it, or has) is refused, unless
   * the requester is an administrator, who takes it over. A job without a
   * name gets a random one.
   */
  private async overlayName(requester: Requester, slideId: number, p: HeatmapParameters): Promise<{ name: string; takeOver: boolean }> {
    if (p.name === undefined) {
      p.name = randomOverlayName();
      return { name: p.name, takeOver: false };
    }
    const admin = requester.roles.includes('admin');
    if (!admin) {
      const holder = await this.options.overlays.holderAgainst(slideId, p.name, { ownerId: requireUser(requester).id, jobId: null });
      if (holder) throw nameTaken(p.name, holder.published);
    }
    return { name: p.name, takeOver: admin };
  }

  /** Parameters checked against the slide, and the job's estimated output against the budget (413). */
  private async checkBudget(type: JobType, slideId: number, parameters: Record<string, unknown>): Promise<void> {
    let estimate: JobEstimate | undefined;
    try {
      estimate = await this.options.estimate(slideId, type, parameters);
    } catch (error) {
      if (error instanceof WsiError) {
        // The slide is in the catalog but its file cannot be read: the job could only fail in the worker.
        throw new AppError(409, 'slide_unreadable', `Slide ${slideId} cannot be read on the server (${error.code}), so no job can run on it; tell the curators`);
      }
      if (!(error instanceof ToolboxError)) throw error;
      throw parameterProblem(error.parameter, error.problem);
    }
    if (!estimate) throw notFound('slide_not_found', `No slide ${slideId}`);
    const refusal = overBudget(type, estimate, this.options.quotas);
    if (refusal) throw refusal;
  }

  private async checkHeatmapSource(requester: Requester, slideId: number, p: HeatmapParameters): Promise<void> {
    const source = await this.options.repository.findById(p.source);
    const user = requireUser(requester);
    const problem = (text: string) => parameterProblem('source', text);
    if (!source || (source.ownerId !== user.id && !requester.roles.includes('admin'))) throw problem(`must be one of your jobs; there is no job ${p.source}`);
    if (source.slideId !== slideId) throw problem(`must be a job of slide ${slideId}; job ${p.source} is of slide ${source.slideId}`);
    if (source.status !== 'succeeded') throw problem(`must be a job that succeeded; job ${p.source} is ${source.status}`);
    const pngs = (source.results ?? []).filter((r) => r.name.endsWith('.png')).map((r) => r.name);
    if (pngs.length === 0) throw problem(`job ${p.source} has no PNG map to colour`);
    if (p.file !== undefined && !pngs.includes(p.file)) {
      throw parameterProblem('file', `must be one of ${pngs.join(', ')}`);
    }
  }
}

/** Toolbox jobs are for researchers with a DUA or membership (L2, L3) and for staff. */
function mayUseToolbox(requester: Requester): boolean {
  return requester.user !== null && (hasLevel(requester, 'L2') || isStaff(requester));
}

function assertToolboxUser(requester: Requester) {
  const user = requireUser(requester);
  if (!mayUseToolbox(requester)) {
    throw new AppError(403, 'level_required', `Toolbox jobs need access level L2 (an approved data use agreement) or a staff role; yours is ${requester.level}`);
  }
  return user;
}

/** The refusal of an overlay name somebody else holds; who it is stays private. */
function nameTaken(name: string, published: boolean): AppError {
  const message = published
    ? `"${name}" is an overlay of this slide that you did not publish; choose another name`
    : `"${name}" is claimed by another user's heat-map job on this slide; choose another name`;
  return parameterProblem('name', message);
}

/** A parameter the slide, the source job or the overlay names refuse: the same answer as one its schema refuses at the route. */
function parameterProblem(parameter: string, problem: string): AppError {
  const field = `parameters.${parameter}`;
  const message = `${field} ${problem}`;
  return badRequest('invalid_request', message, { problems: [{ field, message }] });
}

function requireUser(requester: Requester) {
  if (!requester.user) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return requester.user;
}

export function view(job: QueuedJob): JobView {
  return {
    id: job.id,
    type: job.type,
    slideId: job.slideId,
    slideName: job.slideName,
    parameters: job.parameters,
    status: job.status,
    progress: job.progress,
    message: job.message,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    error: job.error,
    log: job.log,
    results: job.status === 'succeeded' ? (job.results ?? []).map((r) => ({ ...r, url: `/api/jobs/${job.id}/results/${encodeURIComponent(r.name)}` })) : [],
    owner: job.ownerId !== null ? { id: job.ownerId, email: job.ownerEmail ?? '' } : null,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}
