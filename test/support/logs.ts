import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../server/logging.js';

export interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** The real logger, writing into memory so a test can read what an operator would see. */
export function memoryLogger(level = 'debug'): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const text of chunk.toString().split('\n')) if (text) lines.push(JSON.parse(text) as LogLine);
      done();
    },
  });
  return { log: createLogger(level, sink), lines };
}

/** Wait for a log line that is written when a response finishes, which can trail the client's read by a tick. */
export async function logLine(lines: LogLine[], match: (line: LogLine) => boolean, waitMs = 2000): Promise<LogLine | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const found = lines.find(match);
    if (found || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
