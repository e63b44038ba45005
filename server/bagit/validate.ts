import { createHash } from 'node:crypto';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../lib/hashing.js';
import { BagError } from './errors.js';
import { parseFetch, parseManifest, type FetchEntry, type ManifestEntry } from './manifest.js';
import { SIGNATURE_FILE, verifyTagManifest, type TrustedKey } from './signature.js';
import { checkDeclaration, parseOxum, parseTagFile, tagValue, type TagEntries } from './tag-file.js';

export interface PayloadFile extends ManifestEntry {
  /** Absent for a file still to be fetched. */
  size: number | null;
}

export interface ValidatedBag {
  dir: string;
  info: TagEntries;
  payload: PayloadFile[];
  fetch: FetchEntry[];
  /** Payload files listed in fetch.txt and not yet present (only with `allowHoles`). */
  holes: string[];
  /** Who signed, when `trustedKeys` was given. */
  signedBy?: TrustedKey & { signer: string };
  /** The tag files tagmanifest-sha256.txt lists, each checked against it: those the signature vouches for. */
  tagFiles: string[];
}

export interface ValidateOptions {
  /** Require a signature by one of these keys (checked before any payload byte is read). */
  trustedKeys?: readonly TrustedKey[];
  /** Accept payload files that fetch.txt lists and that are not there yet; they are reported as holes and not checked. */
  allowHoles?: boolean;
  /** Bytes hashed so far of the payload's total. */
  onProgress?: (done: number, total: number) => void;
}

/** Tag files the signature must cover for the bag's description to be trusted. */
const REQUIRED_SIGNED = ['bagit.txt', 'bag-info.txt', 'manifest-sha256.txt'];

/**
 * Validate a bag as RFC 8493 §3 describes: the declaration, every payload file
 * listed and every listed file present, Payload-Oxum, the tag manifest and the
 * signature, and then every payload checksum, streamed. Cheap checks come
 * first, so a bad bag is refused before terabytes are read. The first problem
 * is thrown as a BagError naming the file.
 */
export async function validateBag(dir: string, options: ValidateOptions = {}): Promise<ValidatedBag> {
  const declaration = await readTag(dir, 'bagit.txt');
  if (declaration === undefined) throw new BagError('not_a_bag', `${dir} is not a bag: bagit.txt is missing`, 'bagit.txt');
  checkDeclaration(declaration);
  const dataStat = await lstat(path.join(dir, 'data')).catch(() => undefined);
  if (!dataStat?.isDirectory()) throw new BagError('not_a_bag', `${dir} is not a bag: the data/ folder is missing`, 'data/');

  const manifestText = await readTag(dir, 'manifest-sha256.txt');
  if (manifestText === undefined) throw new BagError('missing_file', 'manifest-sha256.txt is missing (this reader checks SHA-256 manifests)', 'manifest-sha256.txt');
  const manifest = parseManifest(manifestText, 'manifest-sha256.txt');
  for (const entry of manifest) {
    if (!entry.path.startsWith('data/')) throw new BagError('bad_manifest', `manifest-sha256.txt lists ${entry.path}, outside data/`, entry.path);
  }
  const infoText = await readTag(dir, 'bag-info.txt');
  const info = infoText === undefined ? [] : parseTagFile(infoText, 'bag-info.txt');
  const fetchText = await readTag(dir, 'fetch.txt');
  const fetch = fetchText === undefined ? [] : parseFetch(fetchText);

  const present = new Map<string, number>();
  await listFiles(dir, 'data', present);
  const listed = new Set(manifest.map((e) => e.path));
  for (const file of [...present.keys()].sort()) {
    if (!listed.has(file)) throw new BagError('extra_file', `${file} is in the bag but not in manifest-sha256.txt`, file);
  }
  const fetchable = new Set(fetch.map((f) => f.path));
  const holes: string[] = [];
  for (const entry of manifest) {
    if (present.has(entry.path)) continue;
    if (fetchable.has(entry.path) && options.allowHoles) holes.push(entry.path);
    else if (fetchable.has(entry.path)) throw new BagError('incomplete', `${entry.path} is listed in fetch.txt and has not been fetched yet`, entry.path);
    else throw new BagError('missing_file', `${entry.path} is in manifest-sha256.txt but missing from the bag`, entry.path);
  }

  const oxum = tagValue(info, 'Payload-Oxum');
  if (oxum !== undefined && holes.length === 0) {
    const expected = parseOxum(oxum);
    const bytes = [...present.values()].reduce((a, b) => a + b, 0);
    if (expected.bytes !== bytes || expected.files !== present.size) {
      throw new BagError('oxum_mismatch', `Payload-Oxum says ${expected.bytes} bytes in ${expected.files} files, the payload has ${bytes} bytes in ${present.size} files`, 'bag-info.txt');
    }
  }

  const tagManifestBytes = await readFile(path.join(dir, 'tagmanifest-sha256.txt')).catch(() => undefined);
  const tagFiles: string[] = [];
  if (tagManifestBytes !== undefined) {
    const tagManifest = parseManifest(tagManifestBytes.toString('utf8'), 'tagmanifest-sha256.txt');
    tagFiles.push(...tagManifest.map((e) => e.path));
    for (const entry of tagManifest) {
      if (entry.path.startsWith('data/')) throw new BagError('bad_manifest', `tagmanifest-sha256.txt lists the payload file ${entry.path}`, entry.path);
      const bytes = await readFile(path.join(dir, ...entry.path.split('/'))).catch(() => undefined);
      if (bytes === undefined) throw new BagError('missing_file', `${entry.path} is in tagmanifest-sha256.txt but missing from the bag`, entry.path);
      if (sha256(bytes) !== entry.sha256) throw new BagError('checksum_mismatch', `${entry.path} does not match its checksum in tagmanifest-sha256.txt`, entry.path);
    }
    if (options.trustedKeys) {
      const covered = new Set(tagManifest.map((e) => e.path));
      for (const name of [...REQUIRED_SIGNED, ...(fetchText === undefined ? [] : ['fetch.txt'])]) {
        if (!covered.has(name)) throw new BagError('signature_invalid', `${name} is not covered by tagmanifest-sha256.txt, so the signature does not vouch for it`, name);
      }
    }
  }
  let signedBy: ValidatedBag['signedBy'];
  if (options.trustedKeys) {
    if (tagManifestBytes === undefined) throw new BagError('signature_missing', 'the bag has no tagmanifest-sha256.txt to carry a signature', 'tagmanifest-sha256.txt');
    signedBy = verifyTagManifest(tagManifestBytes, await readTag(dir, SIGNATURE_FILE), options.trustedKeys);
  }

  const total = [...present.values()].reduce((a, b) => a + b, 0);
  let done = 0;
  options.onProgress?.(0, total);
  for (const entry of manifest) {
    if (!present.has(entry.path)) continue;
    const onChunk = (n: number) => {
      done += n;
      options.onProgress?.(done, total);
    };
    const digest = await sha256File(path.join(dir, ...entry.path.split('/')), { onChunk });
    if (digest !== entry.sha256) throw new BagError('checksum_mismatch', `${entry.path} does not match its checksum in manifest-sha256.txt (altered or truncated)`, entry.path);
  }
  return {
    dir,
    info,
    payload: manifest.map((e) => ({ ...e, size: present.get(e.path) ?? null })),
    fetch,
    holes,
    tagFiles,
    ...(signedBy ? { signedBy } : {}),
  };
}

async function readTag(dir: string, name: string): Promise<string | undefined> {
  try {
    return await readFile(path.join(dir, name), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** Every regular file under `rel`, by bag path; links and special files are refused, they could point outside the bag. */
async function listFiles(root: string, rel: string, out: Map<string, number>): Promise<void> {
  for (const entry of await readdir(path.join(root, ...rel.split('/')), { withFileTypes: true })) {
    const child = `${rel}/${entry.name}`;
    if (entry.isDirectory()) await listFiles(root, child, out);
    else if (entry.isFile()) out.set(child, (await lstat(path.join(root, ...child.split('/')))).size);
    else throw new BagError('unsafe_path', `${child} is not a regular file (links are not followed)`, child);
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
