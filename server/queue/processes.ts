import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import type { Logger } from '../logging.js';

export interface WorkerProcesses {
  /** Process ids of the running workers. */
  pids(): number[];
  /** SIGTERM every worker and wait for them to give back or finish their jobs (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

/** A worker that dies is started again after this long, so that a crash loop does not spin. */
const RESTART_DELAY_MS = 5000;

/**
 * Start `count` `slidebank worker` processes beside the web server, so that
 * toolbox work never competes with tile requests for the server's event
 * loop. They run the same program (under tsx in development, compiled in
 * production) with the same environment and database; one that exits on its
 * own is restarted.
 */
export function startWorkerProcesses(count: number, { databaseUrl, log }: { databaseUrl: string; log: Logger }): WorkerProcesses {
  const children = new Set<ChildProcess>();
  let stopping = false;
  const script = process.argv[1];
  const start = () => {
    if (stopping || !script) return;
    const child = spawn(process.execPath, [...process.execArgv, script, 'worker'], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
      // The IPC channel is only a lifeline: a worker whose server died (even by SIGKILL) sees it close and stops.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.channel?.unref();
    children.add(child);
    log.info({ pid: child.pid }, 'queue: worker process started');
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (stopping) return;
      log.error({ pid: child.pid, code, signal }, `queue: worker process exited; starting another in ${RESTART_DELAY_MS / 1000} s`);
      setTimeout(start, RESTART_DELAY_MS).unref();
    });
  };
  if (!script) log.error('queue: cannot tell which program to start as a worker; run `slidebank worker` yourself');
  for (let i = 0; i < count; i++) start();
  return {
    pids: () => [...children].map((c) => c.pid!).filter(Boolean),
    async stop(graceMs = 30_000) {
      stopping = true;
      await Promise.all(
        [...children].map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          const exited = once(child, 'exit');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}
