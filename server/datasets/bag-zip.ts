import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { encodePath, parseFetch, parseManifest, SIGNATURE_FILE, verifyTagManifest } from '../bagit/index.js';
import type { ZipEntry } from '../downloads/index.js';

const TAG_MANIFEST = 'tagmanifest-sha256.txt';

/** A payload file that stays in the slide store: the holey bag's fetch.txt names it, the complete bag carries it. */
export interface StoredPayload {
  file: string;
  size: number;
  sha256: string;
}

export interface CompleteBagOptions {
  /** The stored file behind a bag path that fetch.txt lists. */
  stored: (bagPath: string) => Promise<StoredPayload | undefined>;
  /** Sign a tag manifest as the export signs its own. */
  sign: (tagManifest: Buffer) => { signature: string; publicKey: string };
}

/**
 * The entries of a bag serialized as one ZIP file (RFC 8493 §4): everything
 * under a single top-level folder named as the bag. Tag files come first, so
 * that a reader sees bagit.txt before the payload.
 *
 * With `complete`, a holey export becomes the complete bag without copying a
 * slide: the files fetch.txt lists are streamed from the slide store, and
 * fetch.txt is left out. The complete bag's bagit.txt, bag-info.txt (whose
 * Payload-Oxum counts files still to fetch), payload manifest and data/ files
 * are those of the holey bag, so only its tag manifest differs (no fetch.txt
 * line), and with it the signature; both are made again here, after checking
 * that the holey bag is what this relies on.
 */
export async function serializedBagEntries(bag: string, complete?: CompleteBagOptions): Promise<ZipEntry[]> {
  const folder = path.basename(bag);
  const top = (await readdir(bag, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
  const payload = await payloadFiles(bag);
  if (!complete) {
    return [
      ...tagOrder(top).map((name) => fileEntry(`${folder}/${name}`, path.join(bag, name))),
      ...payload.map((p) => fileEntry(`${folder}/${p}`, path.join(bag, ...p.split('/')))),
    ];
  }

  const manifest = new Map(parseManifest(await readFile(path.join(bag, 'manifest-sha256.txt'), 'utf8'), 'manifest-sha256.txt').map((e) => [e.path, e.sha256]));
  const fetchText = top.includes('fetch.txt') ? await readFile(path.join(bag, 'fetch.txt'), 'utf8') : '';
  const fromStore = new Map<string, StoredPayload>();
  for (const entry of parseFetch(fetchText)) {
    const stored = await complete.stored(entry.path);
    if (!stored) throw new Error(`${entry.path} of fetch.txt is not a stored slide of the release`);
    if (stored.sha256 !== manifest.get(entry.path) || stored.size !== entry.length) {
      throw new Error(`${entry.path}: the stored file (${stored.size} bytes, ${stored.sha256}) is not the one the manifest lists`);
    }
    const actual = (await stat(stored.file)).size;
    if (actual !== stored.size) throw new Error(`${stored.file} is ${actual} bytes, but ${stored.size} were recorded for it`);
    fromStore.set(entry.path, stored);
  }

  const tagManifest = parseManifest(await readFile(path.join(bag, TAG_MANIFEST), 'utf8'), TAG_MANIFEST).filter((e) => e.path !== 'fetch.txt');
  const kept = top.filter((name) => name !== 'fetch.txt' && name !== TAG_MANIFEST && name !== SIGNATURE_FILE);
  for (const name of kept) {
    const listed = tagManifest.find((e) => e.path === name);
    const digest = createHash('sha256').update(await readFile(path.join(bag, name))).digest('hex');
    if (!listed || listed.sha256 !== digest) throw new Error(`${name} of the exported bag is not as its tag manifest lists it`);
  }
  if (tagManifest.length !== kept.length) throw new Error(`the exported bag's tag manifest lists files it does not have`);
  const tagManifestBytes = Buffer.from(tagManifest.map((e) => `${e.sha256}  ${encodePath(e.path)}\n`).join(''), 'utf8');
  const { signature, publicKey } = complete.sign(tagManifestBytes);
  verifyTagManifest(tagManifestBytes, signature, [{ name: 'this site', publicKey }]);

  const data = [
    ...payload.map((p) => ({ bagPath: p, entry: fileEntry(`${folder}/${p}`, path.join(bag, ...p.split('/'))) })),
    ...[...fromStore].map(([p, stored]) => ({ bagPath: p, entry: fileEntry(`${folder}/${p}`, stored.file, stored.size) })),
  ].sort((a, b) => (a.bagPath < b.bagPath ? -1 : a.bagPath > b.bagPath ? 1 : 0));
  return [
    ...tagOrder(kept).map((name) => fileEntry(`${folder}/${name}`, path.join(bag, name))),
    { name: `${folder}/${TAG_MANIFEST}`, source: tagManifestBytes },
    { name: `${folder}/${SIGNATURE_FILE}`, source: Buffer.from(signature, 'utf8') },
    ...data.map((d) => d.entry),
  ];
}

/** bagit.txt first, as readers look for it; then the other tag files by name. */
function tagOrder(names: string[]): string[] {
  return [...names].sort((a, b) => (a === 'bagit.txt' ? -1 : b === 'bagit.txt' ? 1 : a < b ? -1 : a > b ? 1 : 0));
}

/** The payload files of a bag on disk, as bag paths (`data/…`), sorted. */
async function payloadFiles(bag: string): Promise<string[]> {
  const entries = await readdir(path.join(bag, 'data'), { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => ['data', ...path.relative(path.join(bag, 'data'), path.join(e.parentPath, e.name)).split(path.sep)].join('/'))
    .sort();
}

/** A file opened when its turn comes; with `size`, a file that is not that long fails the archive instead of making a corrupt bag. */
function fileEntry(name: string, file: string, size?: number): ZipEntry {
  return {
    name,
    source: () => {
      const stream = createReadStream(file, { highWaterMark: 1024 * 1024 });
      if (size === undefined) return stream;
      const checked = lengthCheck(file, size);
      // The archive watches and closes the stream it is given; the file behind it goes with it.
      stream.once('error', (error) => checked.destroy(error));
      checked.once('close', () => stream.destroy());
      return stream.pipe(checked);
    },
  };
}

function lengthCheck(file: string, size: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > size) callback(new Error(`${file} is longer than the ${size} bytes recorded for it`));
      else callback(null, chunk);
    },
    flush(callback) {
      callback(seen === size ? null : new Error(`${file} ended after ${seen} of the ${size} bytes recorded for it`));
    },
  });
}
