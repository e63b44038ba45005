import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hasLevel, isStaff, type Requester } from '../access/levels.js';
import type { AuditLog } from '../audit/audit-log.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { FINISHED, JOB_STATUSES, JOB_TYPES, type JobStatus, type JobType, type QueuedJob } from './model.js';
import type { QueueRepository } from './queue.repository.js';
import { PARAMETER_SCHEMAS } from './tasks/index.js';
import type { HeatmapParameters } from './tasks/parameters.js';
import { resultsDir } from './worker.js';

/** A job as the API shows it. */
export interface JobView {
  id: number;
  type: JobType;
  slideId: number;
  parameters: Record<string, unknown>;
  status: JobStatus;
  progress: number;
  message: string | null;
  attempts: number;
  maxAttempts: number;
  error: string | null;
  log: string | null;
  /** Only once the job succeeded. */
  results: { name: string; size: number; url: string }[];
  owner: { id: number; email: string } | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

/** A result file to send, with what the audit log needs. */
export interface ResultDelivery {
  file: string;
  name: string;
  size: number;
}

export interface QueueServiceOptions {
  repository: QueueRepository;
  /** Whether a slide is published in the catalog. */
  slideExists(slideId: number): Promise<boolean>;
  audit: AuditLog;
  resultsRoot: string;
  /** `<paths.cache>/overlays`, where heat-map jobs publish. */
  overlaysRoot: string;
  maxAttempts: number;
}

/**
 * Toolbox jobs for the API: submit (parameters validated at once), list, get,
 * cancel and result files. A job is visible to its owner and to
 * administrators; to anybody else it does not exist (404).
 */
export class QueueService {
  constructor(private readonly options: QueueServiceOptions) {}

  async submit(requester: Requester, body: unknown): Promise<JobView> {
    const user = assertToolboxUser(requester);
    const input = (typeof body === 'object' && body !== null ? body : {}) as { type?: unknown; slideId?: unknown; parameters?: unknown };
    if (typeof input.type !== 'string' || !(JOB_TYPES as readonly string[]).includes(input.type)) {
      throw badRequest('invalid_job_type', `type must be one of ${JOB_TYPES.join(', ')}, got ${JSON.stringify(input.type ?? null)}`);
    }
    const type = input.type as JobType;
    if (typeof input.slideId !== 'number' || !Number.isInteger(input.slideId) || input.slideId < 1) {
      throw badRequest('invalid_slide_id', `slideId must be a slide id (a positive whole number), got ${JSON.stringify(input.slideId ?? null)}`);
    }
    const slideId = input.slideId;
    const parsed = PARAMETER_SCHEMAS[type].safeParse(input.parameters ?? {});
    if (!parsed.success) {
      const issues = parsed.error.issues.map((issue) => ({ parameter: ['parameters', ...issue.path].join('.'), message: issue.message }));
      throw badRequest('invalid_parameters', issues.map((i) => `${i.parameter} ${i.message}`).join('; '), { issues });
    }
    if (!(await this.options.slideExists(slideId))) throw notFound('slide_not_found', `No slide ${slideId}`);
    if (type === 'heatmap') await this.checkHeatmapSource(requester, slideId, parsed.data as HeatmapParameters);
    const job = await this.options.repository.insert({ type, slideId, parameters: parsed.data, ownerId: user.id, maxAttempts: this.options.maxAttempts });
    return view(job);
  }

  /** The requester's jobs (administrators: everyone's), newest first. */
  async list(requester: Requester, query: { slide?: unknown; status?: unknown }): Promise<{ items: JobView[] }> {
    const user = requireUser(requester);
    const slideId = query.slide === undefined ? undefined : parseId(query.slide, 'slide');
    let status: JobStatus | undefined;
    if (query.status !== undefined) {
      if (typeof query.status !== 'string' || !(JOB_STATUSES as readonly string[]).includes(query.status)) {
        throw badRequest('invalid_status', `status must be one of ${JOB_STATUSES.join(', ')}`);
      }
      status = query.status as JobStatus;
    }
    const admin = requester.roles.includes('admin');
    const jobs = await this.options.repository.list({ ...(admin ? {} : { ownerId: user.id }), slideId, status });
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
  async result(requester: Requester, id: number, name: string, ip: string | null): Promise<ResultDelivery> {
    assertToolboxUser(requester);
    const job = await this.visible(requester, id);
    const found = job.status === 'succeeded' ? job.results?.find((r) => r.name === name) : undefined;
    if (!found) throw notFound('result_not_found', `Job ${id} has no result "${name}"`);
    const file = path.join(resultsDir(this.options.resultsRoot, id), found.name);
    await this.options.audit.record({
      action: 'job.result.download',
      actorId: requester.user?.id ?? null,
      subjectType: 'queue_job',
      subjectId: id,
      ip,
      details: { slideId: job.slideId, type: job.type, name: found.name, size: found.size },
    });
    return { file, name: found.name, size: found.size };
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
   * Overlays are shown to everyone who views the slide: a name already
   * published may only be replaced by the owner of the job that published it
   * (or an administrator), never by somebody else's job or over one that an
   * operator published by hand.
   */
  private async checkOverlayName(requester: Requester, slideId: number, name: string): Promise<void> {
    const sidecar = path.join(this.options.overlaysRoot, String(slideId), name, `${name}.json`);
    const existing = await readFile(sidecar, 'utf8').then(
      (text) => JSON.parse(text) as { job?: unknown },
      () => undefined,
    );
    if (existing === undefined || requester.roles.includes('admin')) return;
    const publisher = typeof existing.job === 'number' ? await this.options.repository.findById(existing.job) : undefined;
    if (publisher?.ownerId !== requester.user?.id) {
      const message = `"${name}" is an overlay of this slide that you did not publish; choose another name`;
      throw badRequest('invalid_parameters', `parameters.name ${message}`, { issues: [{ parameter: 'parameters.name', message }] });
    }
  }

  private async checkHeatmapSource(requester: Requester, slideId: number, p: HeatmapParameters): Promise<void> {
    const source = await this.options.repository.findById(p.source);
    const user = requireUser(requester);
    const problem = (text: string) => badRequest('invalid_parameters', `parameters.source ${text}`, { issues: [{ parameter: 'parameters.source', message: text }] });
    if (!source || (source.ownerId !== user.id && !requester.roles.includes('admin'))) throw problem(`must be one of your jobs; there is no job ${p.source}`);
    if (source.slideId !== slideId) throw problem(`must be a job of slide ${slideId}; job ${p.source} is of slide ${source.slideId}`);
    if (source.status !== 'succeeded') throw problem(`must be a job that succeeded; job ${p.source} is ${source.status}`);
    const pngs = (source.results ?? []).filter((r) => r.name.endsWith('.png')).map((r) => r.name);
    if (pngs.length === 0) throw problem(`job ${p.source} has no PNG map to colour`);
    if (p.name !== undefined) await this.checkOverlayName(requester, slideId, p.name);
    if (p.file !== undefined && !pngs.includes(p.file)) {
      throw badRequest('invalid_parameters', `parameters.file must be one of ${pngs.join(', ')}`, { issues: [{ parameter: 'parameters.file', message: `must be one of ${pngs.join(', ')}` }] });
    }
  }
}

/** Toolbox jobs are for researchers with a DUA or membership (L2, L3) and for staff. */
export function mayUseToolbox(requester: Requester): boolean {
  return requester.user !== null && (hasLevel(requester, 'L2') || isStaff(requester));
}

function assertToolboxUser(requester: Requester) {
  const user = requireUser(requester);
  if (!mayUseToolbox(requester)) {
    throw new AppError(403, 'level_required', `Toolbox jobs need access level L2 (an approved data use agreement) or a staff role; yours is ${requester.level}`);
  }
  return user;
}

function requireUser(requester: Requester) {
  if (!requester.user) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return requester.user;
}

function parseId(raw: unknown, name: string): number {
  if (typeof raw !== 'string' || !/^[1-9]\d{0,9}$/.test(raw) || Number(raw) > 2 ** 31 - 1) throw badRequest(`invalid_${name}`, `${name} must be a positive whole number`);
  return Number(raw);
}

export function view(job: QueuedJob): JobView {
  return {
    id: job.id,
    type: job.type,
    slideId: job.slideId,
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
    createdAt: job.createdAt.toISOString(),
    startedAt: job.startedAt?.toISOString() ?? null,
    finishedAt: job.finishedAt?.toISOString() ?? null,
  };
}
