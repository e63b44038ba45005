import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * The I/O scheduling class of background work: `idle` (ionice -c 3: the disk
 * serves it when nothing else waits; BFQ and mq-deadline still give it a turn
 * after a bounded wait), `low` (ionice -c 2 -n 7: best effort, lowest level),
 * `normal` (unchanged).
 */
export type IoPriority = 'idle' | 'low' | 'normal';

export interface BackgroundPriority {
  /** Niceness 0–19: the CPU scheduler gives a nice-10 process about a tenth of a core another process at 0 also wants. */
  nice: number;
  io: IoPriority;
}

/** What the process runs at after `lowerOwnPriority`, and what could not be done (for a warning). */
export interface AppliedPriority {
  nice: number;
  /** `ionice -p`'s own words for the main thread ("idle", "best-effort: prio 7", "none: prio 0"), or null where it cannot be read. */
  io: string | null;
  problems: string[];
}

const IONICE_ARGS: Record<Exclude<IoPriority, 'normal'>, string[]> = { idle: ['-c', '3'], low: ['-c', '2', '-n', '7'] };

/**
 * Lower this process's CPU priority (niceness) and I/O priority, for work
 * that must not slow what users wait for (the queue's workers). On Linux both
 * belong to each thread, not to the process: every thread that exists now is
 * changed (V8's and libuv's among them) and threads made later inherit them
 * from the thread that makes them. The I/O class is set with util-linux's
 * `ionice`, on Linux only. A niceness already higher than asked (a systemd
 * unit's Nice=, say) is kept: lowering it back needs privileges.
 */
export function lowerOwnPriority(wanted: BackgroundPriority): AppliedPriority {
  const problems: string[] = [];
  let tasks = ownThreads();
  // A thread still at the old niceness may start another while the list is walked: walk again until a pass changes nothing.
  for (let pass = 0; pass < 5; pass++) {
    let changed = false;
    for (const task of tasks) {
      try {
        if (os.getPriority(task) < wanted.nice) {
          os.setPriority(task, wanted.nice);
          changed = true;
        }
      } catch (error) {
        // A thread that ended in between is no longer there to change.
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') problems.push(`niceness ${wanted.nice}: ${(error as Error).message}`);
      }
    }
    if (!changed || problems.length > 0) break;
    tasks = ownThreads();
  }
  if (wanted.io !== 'normal') {
    if (process.platform !== 'linux') {
      problems.push(`I/O priority ${wanted.io} is set on Linux only (ionice); the I/O priority is unchanged`);
    } else {
      const result = spawnSync('ionice', [...IONICE_ARGS[wanted.io], '-p', ...tasks.map(String)], { encoding: 'utf8' });
      if (result.error) problems.push(`ionice (util-linux) cannot be run (${(result.error as NodeJS.ErrnoException).code ?? result.error.message}); the I/O priority is unchanged`);
      else if (result.status !== 0) problems.push(`ionice ${IONICE_ARGS[wanted.io].join(' ')}: ${result.stderr.trim() || `exit code ${result.status}`}`);
    }
  }
  return { nice: os.getPriority(), io: ioPriorityOf(process.pid), problems };
}

/** The I/O class of a process (its main thread) in `ionice -p`'s words, or null where it cannot be read (not Linux, no ionice). */
export function ioPriorityOf(pid: number): string | null {
  if (process.platform !== 'linux') return null;
  const result = spawnSync('ionice', ['-p', String(pid)], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() : null;
}

/** The niceness of a process's main thread, from field 19 of /proc/<pid>/stat (Linux). */
export function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19 - 3]);
}

/** Thread ids of this process (Linux), or 0 for "this process" elsewhere, where niceness belongs to the process. */
function ownThreads(): number[] {
  if (process.platform !== 'linux') return [0];
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [0];
  }
}
