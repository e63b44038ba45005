import type { FetchableFile } from '../manifest.js';

/** What `fetchFiles` is asked to do, what it tells as it goes, and what became of each file. */

export type FileStatus = 'downloaded' | 'resumed' | 'skipped' | 'failed';

export interface FileOutcome {
  path: string;
  status: FileStatus;
  /** Bytes received over the network for this file in this run. */
  bytes: number;
  /** Why it failed, or why it was skipped. */
  reason?: string;
}

export type FetchEvent =
  | { type: 'start'; path: string; size: number; resumeFrom: number }
  | { type: 'progress'; path: string; bytes: number }
  | { type: 'retry'; path: string; reason: string; waitMs: number }
  | { type: 'done'; outcome: FileOutcome; size: number };

export interface FetchFilesOptions {
  /** The server's base URL: the token is sent to this origin only. */
  server: string;
  token: string;
  files: FetchableFile[];
  out: string;
  /** Files downloaded at once. */
  parallel: number;
  /** Attempts per file after the first, for network errors, server errors and checksum mismatches. */
  retries?: number;
  /** Longest wait for a server that answered 429/503 with Retry-After before giving up on a file. */
  maxRetryAfterMs?: number;
  signal?: AbortSignal;
  onEvent?: (event: FetchEvent) => void;
  /** For tests: the pause before retry n (1-based). */
  backoffMs?: (attempt: number) => number;
}
