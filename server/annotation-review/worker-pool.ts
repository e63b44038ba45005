import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';

/** A request to a worker thread, and its answer. */
export interface WorkerRequest {
  id: number;
  operation: string;
  args: unknown[];
}

export type WorkerAnswer = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: SerializedError };

/** An error as it crosses threads: an AppError keeps its status, code and details. */
export interface SerializedError {
  name: string;
  message: string;
  status?: number;
  code?: string;
  expose?: boolean;
  details?: unknown;
  cause?: string;
}

export function serializeError(error: unknown): SerializedError {
  const base = error instanceof Error ? error : new Error(String(error));
  const cause = base.cause instanceof Error ? base.cause.message : undefined;
  if (error instanceof AppError) {
    return { name: error.name, message: error.message, status: error.status, code: error.code, expose: error.expose, details: error.details, cause };
  }
  return { name: base.name, message: base.message, cause };
}

function deserializeError(error: SerializedError): Error {
  const cause = error.cause === undefined ? undefined : new Error(error.cause);
  if (error.status !== undefined && error.code !== undefined) {
    return new AppError(error.status, error.code, error.message, { expose: error.expose, details: error.details, cause });
  }
  const rebuilt = new Error(error.message, cause ? { cause } : undefined);
  rebuilt.name = error.name;
  return rebuilt;
}

interface Task {
  request: WorkerRequest;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
}

/**
 * A few worker threads that run the operations of one module, one task each
 * at a time; tasks wait in order for a free thread. Threads start on first
 * use and do not keep the process alive while idle. A thread that dies
 * fails its task and is replaced by the next task.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Task[] = [];
  private nextId = 1;
  private closed = false;

  /** `entry` is the worker module; under tsx (a .ts file) it is loaded through tsx's loader. */
  constructor(
    private readonly entry: URL,
    private readonly size: number,
  ) {}

  run<T>(operation: string, args: unknown[]): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the worker pool is closed'));
    return new Promise<T>((resolve, reject) => {
      this.waiting.push({ request: { id: this.nextId++, operation, args }, resolve: resolve as (value: unknown) => void, reject });
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const task of this.waiting.splice(0)) task.reject(new Error('the worker pool closed before the task ran'));
    await Promise.all(this.slots.splice(0).map((slot) => slot.worker.terminate()));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      let slot = this.slots.find((s) => !s.task);
      if (!slot && this.slots.length < this.size) slot = this.start();
      if (!slot) return;
      const task = this.waiting.shift()!;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage(task.request);
    }
  }

  private start(): Slot {
    const worker = new Worker(workerUrl(this.entry));
    const slot: Slot = { worker, task: undefined };
    worker.unref();
    worker.on('message', (answer: WorkerAnswer) => {
      const task = slot.task;
      if (!task || task.request.id !== answer.id) return;
      slot.task = undefined;
      worker.unref();
      if (answer.ok) task.resolve(answer.value);
      else task.reject(deserializeError(answer.error));
      this.dispatch();
    });
    const lost = (error: Error) => {
      const index = this.slots.indexOf(slot);
      if (index < 0) return;
      this.slots.splice(index, 1);
      slot.task?.reject(error);
      slot.task = undefined;
      if (!this.closed) this.dispatch();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`a worker thread stopped (exit code ${code}) before it finished its task`)));
    this.slots.push(slot);
    return slot;
  }
}

/** The worker module itself, or under tsx a small module that registers tsx's loader in the thread first. */
function workerUrl(entry: URL): URL {
  if (!entry.pathname.endsWith('.ts')) return entry;
  const boot = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register(); await import(${JSON.stringify(entry.href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(boot)}`);
}
