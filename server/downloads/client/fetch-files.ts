import { mkdir, readFile } from 'node:fs/promises';
import { parseManifest, type FetchableFile } from '../manifest.js';
import type { FetchFilesOptions, FileOutcome } from './fetch-options.js';
import { FetchState } from './fetch-state.js';
import { fetchOne } from './file-download.js';
import { authHeaders, baseUrl, describeNetworkError, FetchError, serverMessage } from './requests.js';

export type { FetchEvent, FetchFilesOptions, FileOutcome, FileStatus } from './fetch-options.js';
export { STATE_FILE } from './fetch-state.js';
export { FetchError, retryAfterMs } from './requests.js';

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
