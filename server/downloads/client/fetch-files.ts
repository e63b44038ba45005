import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import { isSafeRelativePath, parseManifest, type FetchableFile } from '../manifest.js';

/**
 * The client side of downloads, for `slidebank fetch`: fetch a manifest,
 * then every file it lists into a folder, resuming partial files with HTTP
 * ranges, verifying each file's SHA-256, and remembering what was verified so
 * that a second run only finishes what the first left undone. Nothing here
 * imports the server: it talks HTTP like any other client.
 *
 * On disk, under the output folder:
 * - `<path>`: a verified file;
 * - `<path>.part`: a file being downloaded (appended to on resume);
 * - `.slidebank-fetch.json`: the ETag each partial file was fetched under
 *   (sent back as If-Range, so a changed file starts afresh) and the size,
 *   mtime and SHA-256 of each verified file (so a re-run need not re-hash it).
 */

export const STATE_FILE = '.slidebank-fetch.json';

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

export class FetchError extends Error {
  override name = 'FetchError';
  constructor(
    message: string,
    readonly kind: 'network' | 'refused' | 'usage',
  ) {
    super(message);
  }
}

const USER_AGENT = 'slidebank-fetch/1';
/** Times a file waits for a server that answers 429 or 503 before those answers count as failed attempts. */
const MAX_BUSY_WAITS = 20;

/** The manifest of a catalog filter, from the server. */
export async function fetchManifest(server: string, token: string, filter: string, signal?: AbortSignal): Promise<FetchableFile[]> {
  const url = new URL('/api/downloads/manifest', baseUrl(server));
  url.searchParams.set('filter', filter);
  let response: Response;
  try {
    response = await fetch(url, { headers: authHeaders(token), redirect: 'error', ...(signal ? { signal } : {}) });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new FetchError(`cannot reach ${url.origin}: ${describeNetworkError(error)}`, 'network');
  }
  if (!response.ok) throw new FetchError(`the server refused the manifest (${response.status}): ${await serverMessage(response)}`, 'refused');
  return parseManifest(await response.text());
}

/** A manifest file (the server's JSON or TSV) as the list of files to fetch. */
export async function readManifestFile(file: string): Promise<FetchableFile[]> {
  return parseManifest(await readFile(file, 'utf8'));
}

/** Download every file of the manifest into `out`; never throws for one file's failure (see the outcomes). */
export async function fetchFiles(options: FetchFilesOptions): Promise<FileOutcome[]> {
  const server = baseUrl(options.server);
  await mkdir(options.out, { recursive: true });
  const state = await FetchState.load(options.out);
  const outcomes: FileOutcome[] = new Array(options.files.length);
  const seen = new Set<string>();
  let next = 0;
  const worker = async () => {
    while (next < options.files.length) {
      const index = next++;
      const file = options.files[index]!;
      if (options.signal?.aborted) break;
      let outcome: FileOutcome;
      if (seen.has(file.path)) outcome = { path: file.path, status: 'failed', bytes: 0, reason: 'listed twice in the manifest' };
      else {
        seen.add(file.path);
        outcome = await fetchOne(file, server, state, options);
      }
      outcomes[index] = outcome;
      options.onEvent?.({ type: 'done', outcome, size: file.size });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, options.files.length)) }, worker));
  await state.flush();
  options.signal?.throwIfAborted();
  return outcomes;
}

async function fetchOne(file: FetchableFile, server: URL, state: FetchState, options: FetchFilesOptions): Promise<FileOutcome> {
  const failed = (reason: string, bytes = 0): FileOutcome => ({ path: file.path, status: 'failed', bytes, reason });
  if (!isSafeRelativePath(file.path)) return failed('the manifest gives an unsafe path (absolute, with "..", or with unusual characters); not written');
  if (file.sha256 === null) return failed('the manifest has no SHA-256 for it, so it could not be verified');
  let url: URL;
  try {
    url = fileUrl(file, server);
  } catch (error) {
    return failed((error as Error).message);
  }
  const target = path.join(options.out, ...file.path.split('/'));
  const part = `${target}.part`;
  await mkdir(path.dirname(target), { recursive: true });

  const present = await stat(target).catch(() => undefined);
  if (present) {
    const known = state.verified(file.path);
    if (known && known.sha256 === file.sha256 && known.size === present.size && known.mtimeMs === present.mtimeMs) {
      return { path: file.path, status: 'skipped', bytes: 0, reason: 'already verified' };
    }
    if (present.size === file.size && (await sha256File(target)) === file.sha256) {
      state.setVerified(file.path, { size: present.size, mtimeMs: present.mtimeMs, sha256: file.sha256 });
      return { path: file.path, status: 'skipped', bytes: 0, reason: 'already present, checksum verified' };
    }
    // Another file under that name: it is replaced once the new one has been verified.
  }

  const retries = options.retries ?? 4;
  const backoff = options.backoffMs ?? ((attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1)));
  const maxWait = options.maxRetryAfterMs ?? 15 * 60_000;
  let attempt = 0;
  let received = 0;
  let resumed = false;
  let lastProblem = '';
  let useRange = true;
  let busy = 0;
  const retry = async (problem: string, waitMs = backoff(attempt + 1)) => {
    attempt++;
    lastProblem = problem;
    if (attempt > retries) return false;
    options.onEvent?.({ type: 'retry', path: file.path, reason: problem, waitMs });
    await sleep(waitMs, undefined, options.signal ? { signal: options.signal } : {});
    return true;
  };

  for (;;) {
    options.signal?.throwIfAborted();
    let offset = (await stat(part).catch(() => undefined))?.size ?? 0;
    if (offset > file.size || !useRange) {
      await truncate(part, 0).catch(() => undefined);
      offset = 0;
    }
    if (offset > 0 && offset === file.size) {
      // A previous run received every byte but did not get to verify them.
      if ((await sha256File(part)) === file.sha256) return finish(file, target, part, state, { status: 'resumed', bytes: received });
      await rm(part, { force: true });
      state.setEtag(file.path, null);
      if (!(await retry('the complete partial file did not match the checksum; starting again'))) return failed(lastProblem, received);
      continue;
    }

    const headers: Record<string, string> = authHeaders(options.token);
    const etag = state.etag(file.path);
    if (offset > 0) {
      headers.Range = `bytes=${offset}-`;
      if (etag) headers['If-Range'] = etag;
    }
    let response: Response;
    try {
      response = await fetch(url, { headers, redirect: 'error', ...(options.signal ? { signal: options.signal } : {}) });
    } catch (error) {
      options.signal?.throwIfAborted();
      if (await retry(`network: ${describeNetworkError(error)}`)) continue;
      return failed(lastProblem, received);
    }

    if (response.status === 429 || response.status === 503) {
      const wait = retryAfterMs(response.headers.get('retry-after'));
      const message = await serverMessage(response);
      if (wait !== null && wait > maxWait) return failed(`the server asks to wait ${Math.round(wait / 1000)} s (${message})`, received);
      // Waiting for a busy server does not use up an attempt, up to a point.
      if (++busy <= MAX_BUSY_WAITS) attempt--;
      if (await retry(`server busy (${response.status}): ${message}`, wait ?? backoff(1))) continue;
      return failed(lastProblem, received);
    }
    if (response.status === 416) {
      await response.body?.cancel();
      await truncate(part, 0).catch(() => undefined);
      if (await retry('the server refused to resume (416); starting again', 0)) continue;
      return failed(lastProblem, received);
    }
    if (response.status >= 500) {
      const message = await serverMessage(response);
      if (await retry(`server error (${response.status}): ${message}`)) continue;
      return failed(lastProblem, received);
    }
    if (response.status !== 200 && response.status !== 206) {
      // 401, 403, 404 and the like: asking again will not help.
      return failed(`${response.status}: ${await serverMessage(response)}`, received);
    }

    const serverSha = response.headers.get('x-checksum-sha256')?.toLowerCase();
    if (serverSha && serverSha !== file.sha256) {
      await response.body?.cancel();
      return failed(`the server's file has SHA-256 ${serverSha}, not the manifest's; fetch a new manifest`, received);
    }
    let start = 0;
    if (response.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== offset || Number(range[3]) !== file.size) {
        await response.body?.cancel();
        useRange = false;
        if (await retry(`the server answered another range (${response.headers.get('content-range')}) than asked; starting again`, 0)) continue;
        return failed(lastProblem, received);
      }
      start = offset;
      resumed = true;
    }
    const newEtag = response.headers.get('etag');
    if (newEtag !== etag) state.setEtag(file.path, newEtag);
    options.onEvent?.({ type: 'start', path: file.path, size: file.size, resumeFrom: start });

    const hash = createHash('sha256');
    if (start > 0) await hashInto(hash, part, start);
    // Each chunk is on disk before the next is read, so a broken connection loses none of what arrived
    // (a write stream would drop its buffered chunks when the pipeline fails).
    const handle = await open(part, start > 0 ? 'a' : 'w');
    try {
      await pipeline(
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) {
            await handle.write(chunk);
            hash.update(chunk);
            received += chunk.length;
            options.onEvent?.({ type: 'progress', path: file.path, bytes: chunk.length });
          }
        },
        ...(options.signal ? [{ signal: options.signal }] : []),
      );
    } catch (error) {
      options.signal?.throwIfAborted();
      // What arrived is kept; the next attempt resumes after it.
      if (await retry(`interrupted: ${describeNetworkError(error)}`)) continue;
      return failed(lastProblem, received);
    } finally {
      await handle.close();
    }
    const size = (await stat(part)).size;
    if (size !== file.size) {
      if (await retry(`received ${size} of ${file.size} bytes`)) continue;
      return failed(lastProblem, received);
    }
    if (hash.digest('hex') !== file.sha256) {
      await rm(part, { force: true });
      state.setEtag(file.path, null);
      if (await retry('the checksum did not match; downloading it again')) continue;
      return failed(`the checksum did not match the manifest's ${file.sha256} (${attempt} attempts)`, received);
    }
    return finish(file, target, part, state, { status: resumed ? 'resumed' : 'downloaded', bytes: received });
  }
}

async function finish(
  file: FetchableFile,
  target: string,
  part: string,
  state: FetchState,
  outcome: { status: FileStatus; bytes: number },
): Promise<FileOutcome> {
  await rename(part, target);
  const stats = await stat(target);
  state.setVerified(file.path, { size: stats.size, mtimeMs: stats.mtimeMs, sha256: file.sha256! });
  state.setEtag(file.path, null);
  await state.flush();
  return { path: file.path, ...outcome };
}

interface Verified {
  size: number;
  mtimeMs: number;
  sha256: string;
}

interface StateFile {
  version: 1;
  files: Record<string, { etag?: string; verified?: Verified }>;
}

/** `.slidebank-fetch.json`, written after each change (serialized, through a temporary file and a rename). */
class FetchState {
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;

  private constructor(
    private readonly file: string,
    private readonly data: StateFile,
  ) {}

  static async load(out: string): Promise<FetchState> {
    const file = path.join(out, STATE_FILE);
    let data: StateFile = { version: 1, files: {} };
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as StateFile;
      if (parsed.version === 1 && typeof parsed.files === 'object' && parsed.files !== null) data = parsed;
    } catch {
      // Missing or unreadable: every file is checked again, which is only slower.
    }
    return new FetchState(file, data);
  }

  etag(p: string): string | undefined {
    return this.data.files[p]?.etag;
  }

  verified(p: string): Verified | undefined {
    return this.data.files[p]?.verified;
  }

  setEtag(p: string, etag: string | null): void {
    const entry = (this.data.files[p] ??= {});
    if (etag === null) delete entry.etag;
    else entry.etag = etag;
    this.changed();
  }

  setVerified(p: string, verified: Verified): void {
    (this.data.files[p] ??= {}).verified = verified;
    this.changed();
  }

  flush(): Promise<void> {
    return this.writing;
  }

  private changed(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.writing = this.writing.then(async () => {
      this.dirty = false;
      const temporary = `${this.file}.tmp`;
      await writeFile(temporary, `${JSON.stringify(this.data, null, 1)}\n`);
      await rename(temporary, this.file);
    });
  }
}

function baseUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new FetchError(`--server must be a URL such as https://slidebank.hospital.example, not "${server}"`, 'usage');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchError(`--server must be an http:// or https:// URL, not "${server}"`, 'usage');
  return url;
}

/** The URL of a manifest file on the server; the token must never go anywhere else. */
function fileUrl(file: FetchableFile, server: URL): URL {
  if (file.href) {
    const url = new URL(file.href, server);
    if (url.origin !== server.origin) throw new Error(`the manifest points outside ${server.origin} (${url.origin}); not fetched`);
    return url;
  }
  const given = new URL(file.url!, server);
  // A manifest written by the same server under another name (behind a proxy, say): its path on --server.
  return given.origin === server.origin ? given : new URL(given.pathname + given.search, server);
}

function authHeaders(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}`, 'User-Agent': USER_AGENT };
}

/** Retry-After as milliseconds (delta-seconds or an HTTP-date), or null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

async function serverMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const message = (JSON.parse(text) as { error?: { message?: string } }).error?.message;
    if (message) return message;
  } catch {
    // not the server's JSON error
  }
  return text.trim().slice(0, 200) || response.statusText || 'no reason given';
}

function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await hashInto(hash, file, Infinity);
  return hash.digest('hex');
}

async function hashInto(hash: ReturnType<typeof createHash>, file: string, bytes: number): Promise<void> {
  if (bytes <= 0) return;
  const stream = createReadStream(file, { highWaterMark: 1 << 20, ...(Number.isFinite(bytes) ? { end: bytes - 1 } : {}) });
  for await (const chunk of stream) hash.update(chunk as Buffer);
}
