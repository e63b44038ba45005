import { createHash } from 'node:crypto';
import { copyFile, mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatFetch, formatManifest, checkSafePath, type FetchEntry, type ManifestEntry } from './manifest.js';
import { SIGNATURE_FILE, signTagManifest, type SigningKey } from './signature.js';
import { BAGIT_TXT, formatTagFile, type TagEntries } from './tag-file.js';

/**
 * Where a payload file comes from: a file whose checksum the caller already
 * knows (copied, never re-hashed: the catalog recorded it at ingest), bytes
 * made for the bag (hashed here, they are small), or a URL that a holey bag
 * lists in fetch.txt instead of carrying the file.
 */
export type PayloadSource = { file: string; sha256: string; size: number } | { content: string | Buffer } | { url: string; sha256: string; size: number };

export interface PayloadItem {
  /** Relative to `data/`, with `/` separators. */
  path: string;
  source: PayloadSource;
}

export interface WriteBagOptions {
  /** bag-info.txt elements; Bagging-Date and Payload-Oxum are added here. */
  info: TagEntries;
  sign?: { key: SigningKey; signer: string };
  /** Further tag files by name (plain names at the bag's top), listed in the tag manifest and so covered by the signature. */
  tagFiles?: readonly [name: string, text: string][];
  now?: Date;
  /** Bytes copied so far of all the files to copy. */
  onProgress?: (done: number, total: number) => void;
}

export interface WrittenBag {
  dir: string;
  payloadBytes: number;
  payloadFiles: number;
  /** Files left to fetch.txt. */
  fetched: number;
}

/**
 * Write a BagIt 1.0 bag at `dir` (which must not exist). The bag is built in
 * `<dir>.partial` and renamed when whole, so a bag that exists is complete.
 */
export async function writeBag(dir: string, payload: readonly PayloadItem[], options: WriteBagOptions): Promise<WrittenBag> {
  const partial = `${dir}.partial`;
  if (await exists(dir)) throw new Error(`${dir} already exists; export to a new folder`);
  await rm(partial, { recursive: true, force: true });
  try {
    await mkdir(path.join(partial, 'data'), { recursive: true });
    const manifest: ManifestEntry[] = [];
    const fetch: FetchEntry[] = [];
    const seen = new Set<string>();
    let bytes = 0;
    const toCopy = payload.reduce((sum, item) => sum + ('file' in item.source ? item.source.size : 0), 0);
    let copied = 0;
    for (const item of payload) {
      const bagPath = `data/${item.path}`;
      checkSafePath(bagPath, 'the payload');
      if (seen.has(bagPath)) throw new Error(`the payload names ${bagPath} twice`);
      seen.add(bagPath);
      const target = path.join(partial, ...bagPath.split('/'));
      const { source } = item;
      if ('content' in source) {
        const data = typeof source.content === 'string' ? Buffer.from(source.content, 'utf8') : source.content;
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, data);
        manifest.push({ path: bagPath, sha256: createHash('sha256').update(data).digest('hex') });
        bytes += data.length;
      } else if ('file' in source) {
        const actual = (await stat(source.file)).size;
        if (actual !== source.size) throw new Error(`${source.file} is ${actual} bytes, but ${source.size} were recorded for it`);
        await mkdir(path.dirname(target), { recursive: true });
        await copyFile(source.file, target);
        manifest.push({ path: bagPath, sha256: source.sha256 });
        bytes += source.size;
        copied += source.size;
        options.onProgress?.(copied, toCopy);
      } else {
        manifest.push({ path: bagPath, sha256: source.sha256 });
        fetch.push({ url: source.url, length: source.size, path: bagPath });
        bytes += source.size;
      }
    }

    // Payload-Oxum describes the complete payload, including files still to fetch.
    const info: TagEntries = [
      ...options.info,
      ['Bagging-Date', (options.now ?? new Date()).toISOString().slice(0, 10)],
      ['Payload-Oxum', `${bytes}.${manifest.length}`],
    ];
    const tagFiles: [string, string][] = [
      ['bagit.txt', BAGIT_TXT],
      ['bag-info.txt', formatTagFile(info)],
      ['manifest-sha256.txt', formatManifest(manifest)],
    ];
    if (fetch.length > 0) tagFiles.push(['fetch.txt', formatFetch(fetch)]);
    for (const [name, text] of options.tagFiles ?? []) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || RESERVED_TAG_FILE.test(name)) throw new Error(`${name} cannot be a tag file of its own`);
      tagFiles.push([name, text]);
    }
    for (const [name, text] of tagFiles) await writeFile(path.join(partial, name), text, 'utf8');
    const tagManifest = Buffer.from(
      formatManifest(tagFiles.map(([name, text]) => ({ path: name, sha256: createHash('sha256').update(text, 'utf8').digest('hex') }))),
      'utf8',
    );
    await writeFile(path.join(partial, 'tagmanifest-sha256.txt'), tagManifest);
    if (options.sign) await writeFile(path.join(partial, SIGNATURE_FILE), signTagManifest(tagManifest, options.sign.key, options.sign.signer), 'utf8');
    await syncFolder(partial);
    await rename(partial, dir);
    return { dir, payloadBytes: bytes, payloadFiles: manifest.length, fetched: fetch.length };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}

/** Names the bag's own files take (RFC 8493 §2), and the signature's. */
const RESERVED_TAG_FILE = /^(bagit\.txt|bag-info\.txt|fetch\.txt|data|(tag)?manifest-.*)$/;

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function syncFolder(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Not every file system syncs directories; the rename that follows is still atomic.
  } finally {
    await handle.close();
  }
}
