import { open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { authHeaders, baseUrl, describeNetworkError, serverMessage } from '../../downloads/client/requests.js';

/**
 * `slidebank challenge submit`: a submission archive sent to a Slidebank
 * server through the resumable uploads (docs/challenges.md), as the portal
 * sends it: chunks in order, a failed chunk sent again after pauses that
 * grow, the server's offset followed when an answer was lost, then submitted.
 * The upload's id waits in `<archive>.upload.json` until the submission is
 * recorded, so that running the command again continues a broken-off upload.
 */

export const DEFAULT_CHUNK_BYTES = 16 * 1024 ** 2;
export const MAX_CHUNK_BYTES = 64 * 1024 ** 2;

export interface SubmitArchiveOptions {
  server: string;
  token: string;
  challenge: string;
  file: string;
  phase?: string;
  chunkBytes?: number;
  /** Attempts per chunk after the first, for network errors and the server's 5xx, 408 and 429. */
  retries?: number;
  signal?: AbortSignal;
  onProgress?: (sent: number, total: number) => void;
  onRetry?: (reason: string, waitMs: number) => void;
  /** For tests: the pause before retry n (1-based). */
  backoffMs?: (attempt: number) => number;
}

export interface ValidationProblem {
  file: string | null;
  slide: string | null;
  message: string;
}

export type SubmitArchiveResult =
  | { outcome: 'queued'; submission: { id: number; phase: string; late: boolean }; resumedFrom: number }
  | { outcome: 'invalid'; message: string; problems: ValidationProblem[]; resumedFrom: number };

/** Why the archive was not submitted: the server unreachable, a refusal, or a usage mistake. */
export class SubmitError extends Error {
  override name = 'SubmitError';
  constructor(
    message: string,
    readonly kind: 'network' | 'refused' | 'usage',
  ) {
    super(message);
  }
}

interface UploadAnswer {
  id: string;
  offset: number;
  size: number;
}

interface ErrorBody {
  error?: { code?: string; message?: string; details?: { offset?: unknown; report?: { problems?: ValidationProblem[] } } };
}

/** The state kept beside the archive while an upload is in progress. */
interface State {
  server: string;
  challenge: string;
  id: string;
  size: number;
  modified: number;
}

export async function submitArchive(options: SubmitArchiveOptions): Promise<SubmitArchiveResult> {
  const server = baseUrl(options.server);
  const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(Number.isInteger(chunkBytes) && chunkBytes >= 1 && chunkBytes <= MAX_CHUNK_BYTES)) throw new SubmitError(`a chunk must be 1 byte to ${MAX_CHUNK_BYTES / 1024 ** 2} MiB`, 'usage');
  const info = await stat(options.file).catch(() => undefined);
  if (!info?.isFile()) throw new SubmitError(`cannot read ${options.file}`, 'usage');
  if (info.size === 0) throw new SubmitError(`${options.file} is empty`, 'usage');
  const retries = options.retries ?? 6;
  const backoff = options.backoffMs ?? ((attempt: number) => Math.min(30_000, 1000 * 2 ** (attempt - 1)));
  const api = new URL(`api/challenges/${encodeURIComponent(options.challenge)}/`, new URL(server.pathname.endsWith('/') ? server.href : `${server.href}/`));
  const headers = authHeaders(options.token);

  const call = async (method: string, relative: string, body?: string | Buffer, extra: Record<string, string> = {}): Promise<Response> => {
    try {
      return await fetch(new URL(relative, api), { method, headers: { ...headers, Accept: 'application/json', ...extra }, ...(body === undefined ? {} : { body }), signal: options.signal });
    } catch (error) {
      if ((error as Error).name === 'AbortError') throw error;
      throw new SubmitError(`${server.origin} cannot be reached: ${describeNetworkError(error)}`, 'network');
    }
  };
  const refused = async (response: Response, what: string) => new SubmitError(`${what}: ${response.status} ${await serverMessage(response)}`, 'refused');

  // The upload: the one begun earlier for this very file, or a new one.
  const stateFile = `${options.file}.upload.json`;
  const state = await readState(stateFile);
  let upload: UploadAnswer | undefined;
  if (state && state.server === server.origin && state.challenge === options.challenge && state.size === info.size && state.modified === info.mtimeMs) {
    const answer = await call('GET', `uploads/${state.id}`);
    if (answer.ok) upload = (await answer.json()) as UploadAnswer;
    else if (answer.status !== 404) throw await refused(answer, 'the upload begun earlier cannot be read');
  }
  if (!upload) {
    const answer = await call('POST', 'uploads', JSON.stringify({ fileName: path.basename(options.file).slice(-200), size: info.size }), { 'Content-Type': 'application/json' });
    if (answer.status !== 201) throw await refused(answer, 'the upload was refused');
    upload = (await answer.json()) as UploadAnswer;
    await writeFile(stateFile, `${JSON.stringify({ server: server.origin, challenge: options.challenge, id: upload.id, size: info.size, modified: info.mtimeMs } satisfies State)}\n`);
  }
  const resumedFrom = upload.offset;

  let offset = upload.offset;
  options.onProgress?.(offset, info.size);
  const handle = await open(options.file, 'r');
  try {
    while (offset < info.size) {
      const end = Math.min(offset + chunkBytes, info.size);
      const chunk = Buffer.alloc(end - offset);
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, offset);
      if (bytesRead !== chunk.length) throw new SubmitError(`${options.file} changed while it was sent`, 'usage');
      for (let attempt = 1; ; attempt++) {
        let reason: string;
        try {
          const answer = await call('PUT', `uploads/${upload.id}`, chunk, { 'Content-Type': 'application/octet-stream', 'Content-Range': `bytes ${offset}-${end - 1}/${info.size}` });
          if (answer.ok) {
            offset = ((await answer.json()) as UploadAnswer).offset;
            break;
          }
          const body = (await answer.json().catch(() => ({}))) as ErrorBody;
          const known = body.error?.details?.offset;
          if (answer.status === 409 && body.error?.code === 'upload_offset_mismatch' && typeof known === 'number') {
            offset = known;
            break;
          }
          reason = `${answer.status} ${body.error?.message ?? answer.statusText}`;
          const retryable = answer.status >= 500 || answer.status === 408 || answer.status === 429 || body.error?.code === 'upload_busy';
          if (!retryable) throw new SubmitError(`a chunk was refused: ${reason}`, 'refused');
        } catch (error) {
          if (!(error instanceof SubmitError) || error.kind !== 'network') throw error;
          reason = error.message;
        }
        if (attempt > retries) throw new SubmitError(`the upload stopped at byte ${offset} of ${info.size} (${reason}); run the command again to continue from there`, 'network');
        const wait = backoff(attempt);
        options.onRetry?.(reason, wait);
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
      options.onProgress?.(offset, info.size);
    }
  } finally {
    await handle.close();
  }

  const query = new URLSearchParams({ upload: upload.id, ...(options.phase ? { phase: options.phase } : {}) });
  const answer = await call('POST', `submissions?${query.toString()}`);
  if (answer.status === 202) {
    await rm(stateFile, { force: true });
    const { submission } = (await answer.json()) as { submission: { id: number; phase: string; late: boolean } };
    return { outcome: 'queued', submission, resumedFrom };
  }
  const body = (await answer.json().catch(() => ({}))) as ErrorBody;
  if (answer.status === 422 || body.error?.code === 'upload_not_found') await rm(stateFile, { force: true });
  if (answer.status === 422) return { outcome: 'invalid', message: body.error?.message ?? 'the archive is not a valid submission', problems: body.error?.details?.report?.problems ?? [], resumedFrom };
  throw new SubmitError(`the submission was refused: ${answer.status} ${body.error?.message ?? answer.statusText}`, 'refused');
}

async function readState(file: string): Promise<State | undefined> {
  try {
    const state = JSON.parse(await readFile(file, 'utf8')) as Partial<State>;
    return typeof state.id === 'string' && /^[0-9a-f]{24}$/.test(state.id) ? (state as State) : undefined;
  } catch {
    return undefined;
  }
}
