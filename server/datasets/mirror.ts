import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { checkSafePath, parseFetch, parseManifest } from '../bagit/index.js';
import { fetchFiles, FetchError, type FetchEvent } from '../downloads/client/fetch-files.js';
import { ImportError, type ImportProgress, type ImportResult, type ImportService } from './import.service.js';
import type { HoleyBag } from './views.js';

export interface MirrorOptions {
  from: string;
  token: string;
  dataset: string;
  /** Default: the latest release. */
  version?: string;
  /** Where holey bags are filled: `<paths.data>/mirror`. */
  workDir: string;
  parallel?: number;
  onFetch?: (event: FetchEvent) => void;
  onImport?: (progress: ImportProgress) => void;
}

/** Up to date: the release was here already; `withdrawn` names the slides the partner has withdrawn since, withdrawn here now too. */
export type MirrorResult = { upToDate: true; version: string; withdrawn: string[] } | ({ upToDate: false; fetchedBytes: number } & ImportResult);

/**
 * `slidebank mirror`: ask the partner for the dataset's versions, take the
 * changes since the newest version imported here (or the whole release), fill
 * the holey bag's slide files with the resuming download client, verify and
 * import. The bag is kept under the work folder until it is imported, so an
 * interrupted run continues where it stopped.
 */
export async function mirrorDataset(importer: ImportService, options: MirrorOptions): Promise<MirrorResult> {
  const server = options.from.replace(/\/+$/, '');
  const { versions } = await getJson<{ versions: string[] }>(`${server}/api/datasets/${encodeURIComponent(options.dataset)}`, options.token);
  const version = options.version ?? versions.at(-1);
  if (version === undefined) throw new ImportError(`${options.dataset} has no release on ${server} yet`);
  if (!versions.includes(version)) throw new ImportError(`${options.dataset} has no release ${version} on ${server} (it has ${versions.join(', ')})`);
  const here = await importer.importedVersions(options.dataset);
  if (here.includes(version)) return { upToDate: true, version, withdrawn: await withdrawnSince(importer, server, version, options) };
  // The newest version this site has that the partner still offers and that precedes the wanted one.
  const since = [...here].reverse().find((v) => versions.includes(v) && versions.indexOf(v) < versions.indexOf(version));

  const query = new URLSearchParams({ version, ...(since ? { since } : {}) });
  const answer = await getJson<HoleyBag>(`${server}/api/datasets/${encodeURIComponent(options.dataset)}/bag?${query}`, options.token);
  const bag = path.join(options.workDir, answer.name);
  await placeTagFiles(bag, answer.files);

  const manifest = new Map(parseManifest(await readFile(path.join(bag, 'manifest-sha256.txt'), 'utf8'), 'manifest-sha256.txt').map((e) => [e.path, e.sha256]));
  const fetchText = await readFile(path.join(bag, 'fetch.txt'), 'utf8').catch(() => '');
  const files = parseFetch(fetchText).map((f) => {
    const sha256 = manifest.get(f.path);
    if (sha256 === undefined || f.length === null) throw new ImportError(`fetch.txt lists ${f.path} without a checksum or a length`, 'fetch.txt');
    return { path: f.path, size: f.length, sha256, url: f.url };
  });
  let fetchedBytes = 0;
  const outcomes = await fetchFiles({
    server,
    token: options.token,
    files,
    out: bag,
    parallel: options.parallel ?? 2,
    onEvent: (event) => {
      if (event.type === 'done') fetchedBytes += event.outcome.bytes;
      options.onFetch?.(event);
    },
  });
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length > 0) {
    throw new FetchError(`${failed.length} file(s) could not be fetched (${failed.map((f) => `${f.path}: ${f.reason ?? 'failed'}`).join('; ')}); run mirror again to continue`, 'network');
  }
  const result = await importer.import([bag], options.onImport);
  await rm(bag, { recursive: true, force: true });
  return { upToDate: false, fetchedBytes, ...result };
}

/**
 * A release this site has already is still asked for, as a holey bag whose
 * slides are not fetched: the partner leaves out of it the slides withdrawn
 * since, and names them in its withdrawal notice, so the mirror withdraws
 * them here as well.
 */
async function withdrawnSince(importer: ImportService, server: string, version: string, options: MirrorOptions): Promise<string[]> {
  const answer = await getJson<HoleyBag>(`${server}/api/datasets/${encodeURIComponent(options.dataset)}/bag?${new URLSearchParams({ version })}`, options.token);
  await mkdir(options.workDir, { recursive: true });
  const scratch = await mkdtemp(path.join(options.workDir, '.withdrawals-'));
  try {
    const bag = path.join(scratch, answer.name);
    await placeTagFiles(bag, answer.files);
    return (await importer.applyWithdrawals(bag)).withdrawn;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/**
 * Write the bag's files as the partner sent them. A folder left by an earlier
 * run of the same bag keeps its fetched slides; one of another bag (the
 * partner released again meanwhile) is started afresh.
 */
async function placeTagFiles(bag: string, files: HoleyBag['files']): Promise<void> {
  const tagManifest = files.find((f) => f.path === 'tagmanifest-sha256.txt');
  const previous = await readFile(path.join(bag, 'tagmanifest-sha256.txt'), 'base64').catch(() => undefined);
  if (previous !== undefined && previous !== tagManifest?.content) await rm(bag, { recursive: true, force: true });
  for (const file of files) {
    checkSafePath(file.path, 'the answer');
    const target = path.join(bag, ...file.path.split('/'));
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, Buffer.from(file.content, 'base64'));
  }
}

async function getJson<T>(url: string, token: string): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { authorization: `Bearer ${token}`, 'user-agent': 'slidebank-mirror/1' }, redirect: 'error' });
  } catch (error) {
    throw new FetchError(`cannot reach ${new URL(url).origin}: ${(error as Error).message}`, 'network');
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => ({}))) as { error?: { message?: string }; message?: string };
    throw new FetchError(`${url} answered ${response.status}: ${body.error?.message ?? body.message ?? response.statusText}`, 'refused');
  }
  return (await response.json()) as T;
}
