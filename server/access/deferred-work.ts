import { AppError } from '../errors.js';
import type { Logger } from '../logging.js';

export interface DeferredWorkLimits {
  /** Tasks running at once. */
  concurrent: number;
  /** Tasks waiting; beyond this a request is refused (503) before it is answered, so nothing is dropped silently. */
  pending: number;
}

interface Task {
  what: string;
  run(): Promise<void>;
}

const DEFAULT_LIMITS: DeferredWorkLimits = { concurrent: 2, pending: 1000 };

/**
 * Work a request starts but does not wait for: what depends on whether an
 * address has an account (the look-up, the link, the mail) runs after the
 * answer, so that the answer takes the same time either way and a slow mail
 * server delays nobody. Tasks start on a later turn of the event loop than
 * the request's own code. A task that fails is logged with what it was;
 * at shutdown, `close` lets pending tasks finish for a while and logs each
 * one it had to leave.
 */
export class DeferredWork {
  private readonly queue: Task[] = [];
  private running = 0;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private held = 0;

  constructor(
    private readonly log: Logger,
    private readonly limits: DeferredWorkLimits = DEFAULT_LIMITS,
  ) {}

  /** Queues `task`, described by `what` in the log; throws 503 when too much is waiting already, or once closed. */
  defer(what: string, task: () => Promise<void>): void {
    if (this.closed || this.queue.length >= this.limits.pending) {
      throw new AppError(503, 'server_busy', 'The server is busy; try again in a minute', { expose: true, details: { retryAfterSeconds: 60 } });
    }
    this.queue.push({ what, run: task });
    setImmediate(() => this.pump());
  }

  /** Keeps queued tasks from starting until the returned function is called: tests look at what a request did before its deferred part. */
  hold(): () => void {
    this.held += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held -= 1;
      this.pump();
    };
  }

  /** Tasks waiting or running. */
  get size(): number {
    return this.queue.length + this.running;
  }

  /** Resolves when no task is waiting or running. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes no new work; waits up to `timeoutMs` for what is queued and running, then logs every task left undone. */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    this.held = 0;
    this.pump();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
    const outcome = await Promise.race([this.idle(), timedOut]);
    clearTimeout(timer);
    if (outcome !== 'timeout') return;
    const left = this.queue.splice(0);
    for (const task of left) this.log.error({ task: task.what }, 'shutting down: deferred account work was not done');
    if (this.running > 0) this.log.error({ running: this.running }, 'shutting down: deferred account work still running was cut off');
  }

  private pump(): void {
    while (this.held === 0 && this.running < this.limits.concurrent && this.queue.length > 0) {
      const task = this.queue.shift()!;
      this.running += 1;
      void this.execute(task);
    }
  }

  private async execute(task: Task): Promise<void> {
    try {
      await task.run();
    } catch (error) {
      this.log.error({ err: error, task: task.what }, 'deferred account work failed');
    } finally {
      this.running -= 1;
      this.pump();
      if (this.size === 0) {
        const waiters = this.idleWaiters;
        this.idleWaiters = [];
        for (const resolve of waiters) resolve();
      }
    }
  }
}
