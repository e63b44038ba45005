/**
 * One file of a manifest into the output folder: skipped when it is already
 * there and verified, else downloaded into `<path>.part` (resumed with a
 * range when part of it arrived before), verified against the manifest's
 * SHA-256 and renamed into place. Network errors, server errors and checksum
 * mismatches are retried; refusals are not.
 */
import { createHash, type Hash } from 'node:crypto';
import { mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashFileInto, sha256File } from '../../lib/hashing.js';
import { isSafeRelativePath, type FetchableFile } from '../manifest.js';
import type { FetchFilesOptions, FileOutcome, FileStatus } from './fetch-options.js';
import type { FetchState } from './fetch-state.js';
import { authHeaders, describeNetworkError, fileUrl, retryAfterMs, serverMessage } from './requests.js';

/** Times a file waits for a server that answers 429 or 503 before those answers count as failed attempts. */
const MAX_BUSY_WAITS = 20;

type VerifiableFile = FetchableFile & { sha256: string };

/** What one attempt came to: the file's outcome, or a problem that another attempt may overcome. */
type Attempt =
  | { kind: 'outcome'; outcome: FileOutcome }
  | {
      kind: 'retry';
      problem: string;
      /** The pause before the next attempt (default: the backoff). */
      waitMs?: number;
      /** The reason given when no attempt is left (default: the problem). */
      givingUp?: (attempts: number) => string;
    };

function retry(problem: string, waitMs?: number): Attempt {
  return { kind: 'retry', problem, ...(waitMs === undefined ? {} : { waitMs }) };
}

/** Fetch one file of the manifest; never throws for the file's own failure (see the outcome), only when aborted. */
export async function fetchOne(file: FetchableFile, server: URL, state: FetchState, options: FetchFilesOptions): Promise<FileOutcome> {
  const failed = (reason: string): FileOutcome => ({ path: file.path, status: 'failed', bytes: 0, reason });
  if (!isSafeRelativePath(file.path)) return failed('the manifest gives an unsafe path (absolute, with "..", or with unusual characters); not written');
  if (file.sha256 === null) return failed('the manifest has no SHA-256 for it, so it could not be verified');
  let url: URL;
  try {
    url = fileUrl(file, server);
  } catch (error) {
    return failed((error as Error).message);
  }
  const verifiable = { ...file, sha256: file.sha256 };
  const target = path.join(options.out, ...file.path.split('/'));
  await mkdir(path.dirname(target), { recursive: true });
  return (await alreadyVerified(verifiable, target, state)) ?? new FileDownload(verifiable, url, target, state, options).run();
}

/** A file already in place is skipped when the state file or its checksum vouches for it. */
async function alreadyVerified(file: VerifiableFile, target: string, state: FetchState): Promise<FileOutcome | undefined> {
  const present = await stat(target).catch(() => undefined);
  if (!present) return undefined;
  const known = state.verified(file.path);
  if (known && known.sha256 === file.sha256 && known.size === present.size && known.mtimeMs === present.mtimeMs) {
    return { path: file.path, status: 'skipped', bytes: 0, reason: 'already verified' };
  }
  if (present.size === file.size && (await sha256File(target)) === file.sha256) {
    state.setVerified(file.path, { size: present.size, mtimeMs: present.mtimeMs, sha256: file.sha256 });
    return { path: file.path, status: 'skipped', bytes: 0, reason: 'already present, checksum verified' };
  }
  // Another file under that name: it is replaced once the new one has been verified.
  return undefined;
}

/** The attempts at one file, and what they have done so far. */
class FileDownload {
  private readonly part: string;
  private readonly retries: number;
  private readonly backoff: (attempt: number) => number;
  private readonly maxWaitMs: number;
  private attempts = 0;
  /** Bytes received over the network in this run. */
  private received = 0;
  private resumed = false;
  private useRange = true;
  private busyWaits = 0;

  constructor(
    private readonly file: VerifiableFile,
    private readonly url: URL,
    private readonly target: string,
    private readonly state: FetchState,
    private readonly options: FetchFilesOptions,
  ) {
    this.part = `${target}.part`;
    this.retries = options.retries ?? 4;
    this.backoff = options.backoffMs ?? ((attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1)));
    this.maxWaitMs = options.maxRetryAfterMs ?? 15 * 60_000;
  }

  async run(): Promise<FileOutcome> {
    for (;;) {
      this.options.signal?.throwIfAborted();
      const attempt = await this.attempt();
      if (attempt.kind === 'outcome') return attempt.outcome;
      if (!(await this.wait(attempt.problem, attempt.waitMs ?? this.backoff(this.attempts + 1)))) {
        return this.failed(attempt.givingUp?.(this.attempts) ?? attempt.problem);
      }
    }
  }

  private async attempt(): Promise<Attempt> {
    const offset = await this.partOffset();
    // A previous run received every byte but did not get to verify them.
    if (offset > 0 && offset === this.file.size) return this.verifyCompletePart();
    const etag = this.state.etag(this.file.path);
    let response: Response;
    try {
      response = await fetch(this.url, { headers: this.headers(offset, etag), redirect: 'error', ...(this.options.signal ? { signal: this.options.signal } : {}) });
    } catch (error) {
      this.options.signal?.throwIfAborted();
      return retry(`network: ${describeNetworkError(error)}`);
    }
    const refused = await this.refusal(response);
    if (refused) return refused;
    const start = await this.resumeOffset(response, offset);
    if (typeof start !== 'number') return start;
    const newEtag = response.headers.get('etag');
    if (newEtag !== etag) this.state.setEtag(this.file.path, newEtag);
    this.options.onEvent?.({ type: 'start', path: this.file.path, size: this.file.size, resumeFrom: start });
    return this.receive(response, start);
  }

  /** Count an attempt; false when none is left, else announce the retry, wait, and true. */
  private async wait(problem: string, waitMs: number): Promise<boolean> {
    this.attempts++;
    if (this.attempts > this.retries) return false;
    this.options.onEvent?.({ type: 'retry', path: this.file.path, reason: problem, waitMs });
    await sleep(waitMs, undefined, this.options.signal ? { signal: this.options.signal } : {});
    return true;
  }

  /** The bytes of the partial file worth resuming after: none when it is too long or ranges failed. */
  private async partOffset(): Promise<number> {
    const offset = (await stat(this.part).catch(() => undefined))?.size ?? 0;
    if (offset <= this.file.size && this.useRange) return offset;
    await truncate(this.part, 0).catch(() => undefined);
    return 0;
  }

  private async verifyCompletePart(): Promise<Attempt> {
    if ((await sha256File(this.part)) === this.file.sha256) return this.finish('resumed');
    await this.discardPart();
    return retry('the complete partial file did not match the checksum; starting again');
  }

  private headers(offset: number, etag: string | undefined): Record<string, string> {
    const headers = authHeaders(this.options.token);
    if (offset > 0) {
      headers.Range = `bytes=${offset}-`;
      if (etag) headers['If-Range'] = etag;
    }
    return headers;
  }

  /** An answer that brings no bytes of the file, as an attempt; undefined for one that does. */
  private async refusal(response: Response): Promise<Attempt | undefined> {
    const { status } = response;
    if (status === 429 || status === 503) return this.serverBusy(response);
    if (status === 416) {
      await response.body?.cancel();
      await truncate(this.part, 0).catch(() => undefined);
      return retry('the server refused to resume (416); starting again', 0);
    }
    if (status >= 500) return retry(`server error (${status}): ${await serverMessage(response)}`);
    // 401, 403, 404 and the like: asking again will not help.
    if (status !== 200 && status !== 206) return this.failedAttempt(`${status}: ${await serverMessage(response)}`);
    const serverSha = response.headers.get('x-checksum-sha256')?.toLowerCase();
    if (serverSha && serverSha !== this.file.sha256) {
      await response.body?.cancel();
      return this.failedAttempt(`the server's file has SHA-256 ${serverSha}, not the manifest's; fetch a new manifest`);
    }
    return undefined;
  }

  private async serverBusy(response: Response): Promise<Attempt> {
    const wait = retryAfterMs(response.headers.get('retry-after'));
    const message = await serverMessage(response);
    if (wait !== null && wait > this.maxWaitMs) return this.failedAttempt(`the server asks to wait ${Math.round(wait / 1000)} s (${message})`);
    // Waiting for a busy server does not use up an attempt, up to a point.
    if (++this.busyWaits <= MAX_BUSY_WAITS) this.attempts--;
    return retry(`server busy (${response.status}): ${message}`, wait ?? this.backoff(1));
  }

  /** Where the answer's bytes go in the partial file: 0 for the whole file (200), the offset asked for with a range (206). */
  private async resumeOffset(response: Response, offset: number): Promise<number | Attempt> {
    if (response.status !== 206) return 0;
    const range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(response.headers.get('content-range') ?? '');
    if (!range || Number(range[1]) !== offset || Number(range[3]) !== this.file.size) {
      await response.body?.cancel();
      this.useRange = false;
      return retry(`the server answered another range (${response.headers.get('content-range')}) than asked; starting again`, 0);
    }
    this.resumed = true;
    return offset;
  }

  /** The body appended to the partial file from `start`, hashed on the way (with what was there before). */
  private async receive(response: Response, start: number): Promise<Attempt> {
    const hash = createHash('sha256');
    if (start > 0) await hashFileInto(hash, this.part, { bytes: start });
    // Each chunk is on disk before the next is read, so a broken connection loses none of what arrived
    // (a write stream would drop its buffered chunks when the pipeline fails).
    const handle = await open(this.part, start > 0 ? 'a' : 'w');
    try {
      await pipeline(
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) {
            await handle.write(chunk);
            hash.update(chunk);
            this.received += chunk.length;
            this.options.onEvent?.({ type: 'progress', path: this.file.path, bytes: chunk.length });
          }
        },
        ...(this.options.signal ? [{ signal: this.options.signal }] : []),
      );
    } catch (error) {
      this.options.signal?.throwIfAborted();
      // What arrived is kept; the next attempt resumes after it.
      return retry(`interrupted: ${describeNetworkError(error)}`);
    } finally {
      await handle.close();
    }
    return this.verifyReceived(hash);
  }

  private async verifyReceived(hash: Hash): Promise<Attempt> {
    const size = (await stat(this.part)).size;
    if (size !== this.file.size) return retry(`received ${size} of ${this.file.size} bytes`);
    if (hash.digest('hex') !== this.file.sha256) {
      await this.discardPart();
      return {
        kind: 'retry',
        problem: 'the checksum did not match; downloading it again',
        givingUp: (attempts) => `the checksum did not match the manifest's ${this.file.sha256} (${attempts} attempts)`,
      };
    }
    return this.finish(this.resumed ? 'resumed' : 'downloaded');
  }

  private async discardPart(): Promise<void> {
    await rm(this.part, { force: true });
    this.state.setEtag(this.file.path, null);
  }

  /** The verified file renamed into place and remembered as verified. */
  private async finish(status: FileStatus): Promise<Attempt> {
    await rename(this.part, this.target);
    const stats = await stat(this.target);
    this.state.setVerified(this.file.path, { size: stats.size, mtimeMs: stats.mtimeMs, sha256: this.file.sha256 });
    this.state.setEtag(this.file.path, null);
    await this.state.flush();
    return { kind: 'outcome', outcome: { path: this.file.path, status, bytes: this.received } };
  }

  private failedAttempt(reason: string): Attempt {
    return { kind: 'outcome', outcome: this.failed(reason) };
  }

  private failed(reason: string): FileOutcome {
    return { path: this.file.path, status: 'failed', bytes: this.received, reason };
  }
}
