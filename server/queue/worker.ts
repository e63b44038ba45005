import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ZodError } from 'zod';
import { AnnotationError } from '../annotations/index.js';
import type { Logger } from '../logging.js';
import { ToolboxError } from '../toolbox/index.js';
import { DeepZoom, OPENSLIDE_GRID, Slide, WsiError, type DeepZoomGrid } from '../wsi/index.js';
import { appendLog, backoffMs, RESULT_NAME, type QueuedJob, type ResultFile } from './model.js';
import type { OverlayPublisher } from './overlay-publisher.js';
import type { QueueRepository } from './queue.repository.js';
import { BadInputError, TASKS, type TaskContext, type TaskRunner, type TaskSlide } from './tasks/index.js';
import type { JobType } from './model.js';

export interface WorkerSettings {
  leaseSeconds: number;
  pollSeconds: number;
  retrySeconds: number;
  /** Jobs of one user that run at once (0 = no bound). */
  maxRunningPerUser: number;
  /** An attempt running longer is stopped and the job failed (0 = no bound); fractions allowed. */
  maxRunMinutes: number;
  /** `<paths.data>/results`. */
  resultsRoot: string;
  /** How the tile server lays out its Deep Zoom grid (config `tiles`), so that overlays fit it. */
  tiles: TileGridSettings;
}

export interface TileGridSettings {
  grid: 'native' | 'openslide' | 'custom';
  tileSize: number;
  overlap: number;
}

/**
 * Work of another queue that the worker also takes when no toolbox job is due
 * (the challenges' submissions, scored here rather than in the web server's
 * process). `runOnce` claims and finishes at most one item; true when it did.
 */
export interface OtherWork {
  name: string;
  runOnce(): Promise<boolean>;
}

/** Finds a job's slide in the catalog; undefined when it is not (or no longer) published. */
export type SlideLookup = (slideId: number) => Promise<TaskSlide | undefined>;

/** Why a running job was stopped from outside its task. */
type StopReason = 'cancel' | 'shutdown' | 'lost' | 'timeout';

const STOPPED: Record<StopReason, string> = {
  cancel: 'cancelled',
  shutdown: 'the worker is shutting down',
  lost: 'the lease was lost',
  timeout: 'exceeded the run time limit',
};

class JobStopped extends Error {
  constructor(
    readonly reason: StopReason,
    message = STOPPED[reason],
  ) {
    super(message);
    this.name = 'JobStopped';
  }
}

/** The results folder of a job. */
export function resultsDir(resultsRoot: string, jobId: number): string {
  return path.join(resultsRoot, String(jobId));
}

/** A worker's name in leases and logs: host, process and a random part. */
export function newWorkerId(): string {
  return `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

/**
 * One worker: claims due jobs one at a time (fairly between users, see
 * QueueRepository.claim) and runs them, renewing the lease with a heartbeat
 * that also records progress and notices cancellation. An attempt that runs
 * past `maxRunMinutes` is stopped through its AbortSignal and the job failed.
 * Jobs of workers that died are recovered by whichever worker polls next.
 *
 * Results are written into `<results>/<id>.attempt-<n>.partial/` and renamed
 * to `<results>/<id>/` only when the task succeeded: a failed, cancelled or
 * interrupted attempt leaves nothing that looks like a result. Overlays are
 * staged beside the published ones and published (under a name the job's
 * owner holds) only then too.
 */
export class QueueWorker {
  readonly id: string;
  private stopping = false;
  private readonly stopped = new AbortController();
  private current: AbortController | undefined;
  private readonly tasks: Record<JobType, TaskRunner>;
  private readonly otherWork: OtherWork[];

  constructor(
    private readonly repository: QueueRepository,
    private readonly slides: SlideLookup,
    private readonly overlays: OverlayPublisher,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
    { id = newWorkerId(), tasks = TASKS, otherWork = [] }: { id?: string; tasks?: Record<JobType, TaskRunner>; otherWork?: OtherWork[] } = {},
  ) {
    this.id = id;
    this.tasks = tasks;
    this.otherWork = otherWork;
  }

  /** Run until stop(): recover, claim, run; sleep `pollSeconds` when nothing is due. */
  async run(): Promise<void> {
    this.log.info({ worker: this.id }, 'queue worker started');
    while (!this.stopping) {
      let ran = false;
      try {
        ran = await this.runOnce();
      } catch (error) {
        this.log.error({ err: error, worker: this.id }, 'queue worker: a round failed; trying again');
      }
      if (!ran && !this.stopping) await sleep(this.settings.pollSeconds * 1000, undefined, { signal: this.stopped.signal }).catch(() => {});
    }
    this.log.info({ worker: this.id }, 'queue worker stopped');
  }

  /** The first of the other queues that has an item due; false when none had. */
  private async runOtherWork(): Promise<boolean> {
    for (const work of this.otherWork) {
      if (this.stopping) return false;
      if (await work.runOnce()) return true;
    }
    return false;
  }

  /** Stop claiming; a running job is stopped and given back to the queue (its attempt not counted). */
  stop(): void {
    this.stopping = true;
    this.stopped.abort();
    this.current?.abort(new JobStopped('shutdown'));
  }

  /** One round: recover expired leases, then claim and run one job. True when a job ran. */
  async runOnce(now = new Date()): Promise<boolean> {
    const recovered = await this.repository.recoverExpired(now, (attempts) => backoffMs(this.settings.retrySeconds, attempts));
    if (recovered.requeued.length + recovered.failed.length + recovered.cancelled.length > 0) {
      this.log.warn({ worker: this.id, ...recovered }, 'queue: recovered jobs whose worker stopped renewing its lease');
    }
    if (this.stopping) return false;
    const job = await this.repository.claim(this.id, now, this.leaseUntil(now), { maxRunningPerUser: this.settings.maxRunningPerUser });
    if (!job) return this.runOtherWork();
    await this.execute(job);
    return true;
  }

  private leaseUntil(now = new Date()): Date {
    return new Date(now.getTime() + this.settings.leaseSeconds * 1000);
  }

  private async execute(job: QueuedJob): Promise<void> {
    const log = this.log.child({ job: job.id, type: job.type, attempt: job.attempts, worker: this.id });
    const controller = new AbortController();
    this.current = controller;
    if (this.stopping) controller.abort(new JobStopped('shutdown'));
    let jobLog = appendLog(job.log, `${new Date().toISOString()} attempt ${job.attempts} of ${job.maxAttempts} on ${this.id}`);
    let progress = 0;
    let message: string | null = null;
    let lastBeat = Date.now();
    let beating: Promise<void> = Promise.resolve();
    const stopWith = (reason: StopReason) => {
      if (!controller.signal.aborted) controller.abort(new JobStopped(reason));
    };
    const beat = () =>
      (beating = beating.then(async () => {
        lastBeat = Date.now();
        try {
          const answer = await this.repository.heartbeat(job.id, this.id, this.leaseUntil(), { progress, message, log: jobLog });
          if (!answer.owned) stopWith('lost');
          else if (answer.cancelRequested) stopWith('cancel');
        } catch (error) {
          log.warn({ err: error }, 'queue: heartbeat failed; trying again at the next one');
        }
      }));
    const timer = setInterval(() => void beat(), Math.max(200, (this.settings.leaseSeconds * 1000) / 3));
    const { maxRunMinutes } = this.settings;
    const overrun = () => {
      if (!controller.signal.aborted) controller.abort(new JobStopped('timeout', `exceeded the run time limit of ${maxRunMinutes} minutes`));
    };
    const deadline = maxRunMinutes > 0 ? setTimeout(overrun, maxRunMinutes * 60_000) : undefined;
    const partial = path.join(this.settings.resultsRoot, `${job.id}.attempt-${job.attempts}.partial`);
    const staged: { name: string; folder: string }[] = [];
    const context = (slide: TaskSlide): TaskContext => ({
      job,
      slide,
      out: partial,
      signal: controller.signal,
      progress: (fraction, text) => {
        if (controller.signal.aborted) throw controller.signal.reason;
        progress = Math.min(1, Math.max(0, fraction));
        if (text !== undefined) message = text;
        // At most one database write a second, however often the library reports.
        if (Date.now() - lastBeat >= 1000) void beat();
      },
      log: (line) => {
        jobLog = appendLog(jobLog, line);
      },
      resultsOf: (id) => resultsDir(this.settings.resultsRoot, id),
      stageOverlay: (name) => {
        const folder = this.overlays.stagingFolder(slide.id, `job${job.id}-${job.attempts}`);
        staged.push({ name, folder });
        return folder;
      },
      gridFor: (file) => this.gridFor(file),
    });
    log.info('queue: job started');
    try {
      await rm(partial, { recursive: true, force: true });
      await mkdir(partial, { recursive: true });
      const slide = await this.slides(job.slideId);
      if (!slide) throw new BadInputError(`slide ${job.slideId} is not in the catalog (or no longer published)`);
      await stat(slide.file).catch((error: unknown) => {
        throw new Error(`the file of slide ${job.slideId} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
      });
      await this.tasks[job.type](context(slide));
      // The last word on cancellation before the results count.
      await beat();
      if (controller.signal.aborted) throw controller.signal.reason;
      for (const overlay of staged) await this.publish(job, overlay, (line) => (jobLog = appendLog(jobLog, line)));
      const results = await listResults(partial);
      const final = resultsDir(this.settings.resultsRoot, job.id);
      await rm(final, { recursive: true, force: true });
      await rename(partial, final);
      jobLog = appendLog(jobLog, `succeeded: ${results.map((r) => r.name).join(', ')}`);
      clearInterval(timer);
      await beating;
      if (await this.repository.finish(job.id, this.id, { status: 'succeeded', results, log: jobLog, message: 'done' })) log.info({ results: results.length }, 'queue: job succeeded');
      else log.warn('queue: job finished after its lease was lost; another attempt owns it now');
    } catch (error) {
      clearInterval(timer);
      clearTimeout(deadline);
      await beating;
      // Only this attempt's own folders: a job whose lease was lost may be running again on another worker.
      for (const folder of [partial, ...staged.map((s) => s.folder)]) {
        await removeFolder(folder).catch((failure: unknown) => log.error({ err: failure, folder }, 'queue: could not remove partial results'));
      }
      await this.settle(job, error, controller.signal, jobLog, log);
    } finally {
      clearInterval(timer);
      clearTimeout(deadline);
      this.current = undefined;
    }
  }

  /** Publish a staged overlay under its name, which the job's owner must hold; refused, the job fails and nothing is replaced. */
  private async publish(job: QueuedJob, overlay: { name: string; folder: string }, log: (line: string) => void): Promise<void> {
    const outcome = await this.overlays.publish(job.slideId, overlay.name, overlay.folder, { ownerId: job.ownerId, jobId: job.id });
    if (!outcome.published) {
      this.log.warn({ job: job.id, slide: job.slideId, overlay: overlay.name, holder: outcome.holder }, 'queue: refused to publish over an overlay name another owner holds');
      throw new BadInputError(`parameters.name: the overlay "${overlay.name}" of slide ${job.slideId} belongs to somebody else; nothing was published`);
    }
    log(`published overlay ${overlay.name} at /tiles/${job.slideId}/overlays/${overlay.name}.dzi`);
  }

  /** A job that did not succeed: cancelled, given back, retried after a back-off, or failed. */
  private async settle(job: QueuedJob, error: unknown, signal: AbortSignal, jobLog: string, log: Logger): Promise<void> {
    const stopped = signal.aborted && signal.reason instanceof JobStopped ? signal.reason.reason : undefined;
    if (stopped === 'lost') {
      log.warn('queue: lost the lease; the job is another worker\'s now');
      return;
    }
    if (stopped === 'cancel') {
      await this.repository.finish(job.id, this.id, { status: 'cancelled', log: appendLog(jobLog, 'cancelled; partial results removed'), message: 'cancelled' });
      log.info('queue: job cancelled');
      return;
    }
    if (stopped === 'timeout') {
      const reason = (signal.reason as JobStopped).message;
      await this.repository.finish(job.id, this.id, { status: 'failed', error: reason, log: appendLog(jobLog, `failed: ${reason}; partial results removed`) });
      log.warn({ maxRunMinutes: this.settings.maxRunMinutes }, 'queue: job stopped at the run time limit');
      return;
    }
    if (stopped === 'shutdown') {
      await this.repository.requeue(job.id, this.id, new Date(), { log: appendLog(jobLog, 'given back: the worker shut down'), countAttempt: false, error: job.error });
      log.info('queue: job given back to the queue (worker shutting down)');
      return;
    }
    const { reason, permanent } = describeFailure(error);
    const failedLog = appendLog(jobLog, `failed: ${reason}`);
    if (!permanent && job.attempts < job.maxAttempts) {
      const delay = backoffMs(this.settings.retrySeconds, job.attempts);
      await this.repository.requeue(job.id, this.id, new Date(Date.now() + delay), { error: reason, log: appendLog(failedLog, `retry in ${Math.round(delay / 1000)} s`) });
      log.warn({ err: error, retryInMs: delay }, 'queue: job failed; it will be retried');
      return;
    }
    const final = permanent ? reason : `${reason} (gave up after ${job.attempts} attempts)`;
    await this.repository.finish(job.id, this.id, { status: 'failed', error: final, log: failedLog });
    log.warn({ err: error }, 'queue: job failed');
  }

  private async gridFor(file: string): Promise<DeepZoomGrid> {
    if (this.settings.tiles.grid !== 'native') return tileGrid(undefined, this.settings.tiles);
    const slide = await Slide.open(file);
    try {
      return tileGrid(slide, this.settings.tiles);
    } finally {
      await slide.close();
    }
  }
}

/** The Deep Zoom grid the tile server lays over a slide with the `tiles` settings, which its overlays share (the slide is needed for `native` only). */
export function tileGrid(slide: Slide | undefined, { grid, tileSize, overlap }: TileGridSettings): DeepZoomGrid {
  if (grid === 'openslide') return OPENSLIDE_GRID;
  if (grid === 'custom') return { tileSize, overlap };
  return (slide && DeepZoom.nativeGrid(slide)) ?? OPENSLIDE_GRID;
}

/**
 * Why an attempt failed, for the job's `error`, and whether trying again
 * could help: bad input (parameters the slide cannot take, an unreadable
 * slide or annotation) and a full disk fail at once; anything else is retried.
 */
export function describeFailure(error: unknown): { reason: string; permanent: boolean } {
  if (error instanceof BadInputError) return { reason: error.message, permanent: true };
  if (error instanceof ToolboxError) return { reason: `parameters.${error.parameter} ${error.problem}`, permanent: true };
  if (error instanceof WsiError || error instanceof AnnotationError) return { reason: `bad input: ${error.message}`, permanent: true };
  if (error instanceof ZodError) return { reason: `bad parameters: ${error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`, permanent: true };
  const code = (error as NodeJS.ErrnoException).code;
  // libvips reports a full disk in its message only.
  if (code === 'ENOSPC' || code === 'EDQUOT' || /no space left on device|disk quota exceeded/i.test((error as Error).message ?? '')) {
    return { reason: `the disk is full (${code ?? 'ENOSPC'}): no space left for the results`, permanent: true };
  }
  return { reason: (error as Error).message ?? String(error), permanent: false };
}

/**
 * Remove an abandoned attempt's folder. A task stopped mid-way may still have
 * writes in flight: the folder is first renamed out of the way (so that they
 * cannot recreate anything under the attempt's name), then removed, retrying
 * while late files land in it.
 */
async function removeFolder(dir: string): Promise<void> {
  const doomed = `${dir}.removing-${randomBytes(4).toString('hex')}`;
  try {
    await rename(dir, doomed);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await rm(doomed, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/** The files an attempt left, flat, with their sizes; leftovers of interrupted writes (`*.partial`) are not results. */
async function listResults(dir: string): Promise<ResultFile[]> {
  const out: ResultFile[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile() || entry.name.endsWith('.partial') || !RESULT_NAME.test(entry.name)) {
      await rm(path.join(dir, entry.name), { recursive: true, force: true });
      continue;
    }
    out.push({ name: entry.name, size: (await stat(path.join(dir, entry.name))).size });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
