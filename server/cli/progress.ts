import { SingleBar } from 'cli-progress';

export interface ProgressReporter {
  update(done: number, total: number): void;
  stop(): void;
}

/** Progress on stderr: a bar on a terminal, otherwise a line at every tenth. */
export function progressReporter(label: string, unit: string): ProgressReporter {
  if (process.stderr.isTTY) {
    const bar = new SingleBar({
      format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
    });
    let started = false;
    return {
      update: (done, total) => {
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(done);
      },
      stop: () => {
        if (started) bar.stop();
      },
    };
  }
  let reported = -1;
  return {
    update: (done, total) => {
      const tenth = total === 0 ? 10 : Math.floor((done * 10) / total);
      if (tenth === reported) return;
      reported = tenth;
      process.stderr.write(`${label}: ${tenth * 10}% (${done}/${total} ${unit})\n`);
    },
    stop: () => undefined,
  };
}
