import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/**
 * CPU seconds a process has used so far (user and system, every thread),
 * from /proc/PID/stat: steadier than wall time on a machine shared with other
 * work, since it counts only what the process itself spent. Linux's clock
 * tick is 100 Hz on the platforms the appliance runs on (getconf CLK_TCK).
 */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) in parentheses; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}
