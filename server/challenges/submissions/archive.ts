/**
 * Reading a submission archive (.zip, .tar, .tar.gz) safely.
 *
 * Every entry name is checked before anything is read: a name with a ".."
 * segment or an absolute path, a link, a device, more than `maxEntries`
 * entries, more than `maxTotalBytes` unpacked, or a ZIP entry (or a gzip
 * stream) that unpacks to more than `maxRatio` times its packed size is
 * refused with a sentence that says so. The files the caller wants are
 * copied into `dir` under names made here (entry-00001, …), never under a
 * name taken from the archive; the byte counts are enforced while copying,
 * not only taken from the headers.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import tar from 'tar-stream';
import yauzl from 'yauzl';
import type { FileProblem } from './types.js';

export interface ArchiveLimits {
  /** Entries of any kind, folders included. */
  maxEntries: number;
  /** Bytes of all entries once unpacked. */
  maxTotalBytes: number;
  /** Unpacked size over packed size, for a ZIP entry or a whole .tar.gz … */
  maxRatio: number;
  /** … once it unpacks to more than this many bytes (small files compress well and are harmless). */
  ratioFloorBytes: number;
}

export const ARCHIVE_LIMITS: Readonly<ArchiveLimits> = {
  maxEntries: 10_000,
  maxTotalBytes: 16 * 2 ** 30,
  maxRatio: 100,
  ratioFloorBytes: 2 ** 20,
};

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

/** A file copied out of the archive. */
export interface ArchiveFile {
  /** Its name in the archive (folders included, separators as "/"). */
  entry: string;
  /** The last part of `entry`. */
  base: string;
  /** Where it was copied, under a name made here. */
  path: string;
  size: number;
}

export interface ArchiveContents {
  format: ArchiveFormat | null;
  files: ArchiveFile[];
  /** Regular files the caller did not want (not copied). */
  unwanted: string[];
  problems: FileProblem[];
}

/** Whether to copy a regular file out, from its entry name and last part. */
export type WantEntry = (entry: string, base: string) => boolean;

/** Files that archivers add on their own and that no one means to submit: skipped without a word. */
const CLUTTER = /(^|\/)(__MACOSX\/|\.DS_Store$|Thumbs\.db$|desktop\.ini$)/;

class ArchiveStop extends Error {
  constructor(readonly problem: FileProblem) {
    super(problem.message);
  }
}

const problem = (file: string | null, code: string, message: string): FileProblem => ({ file, slide: null, code, message });

function size(bytes: number): string {
  if (bytes >= 2 ** 30) return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KiB`;
  return `${bytes} bytes`;
}

/** What is wrong with an entry name, or null; `name` has "/" separators. */
export function entryNameProblem(name: string): FileProblem | null {
  if (name.length === 0) return problem(name, 'unsafe_path', 'The archive has an entry without a name.');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f]/.test(name)) return problem(name, 'unsafe_path', `The archive entry "${JSON.stringify(name).slice(1, -1)}" has control characters in its name.`);
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) {
    return problem(name, 'absolute_path', `The archive entry "${name}" is an absolute path; entries must be relative paths inside the archive.`);
  }
  if (name.split('/').includes('..')) {
    return problem(name, 'unsafe_path', `The archive entry "${name}" climbs out of the archive with ".."; entries must be plain relative paths.`);
  }
  return null;
}

/** ZIP if it starts with a local file header (or is an empty ZIP), gzip by its magic, tar by the ustar magic. */
export async function archiveFormat(file: string): Promise<ArchiveFormat | null> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x04034b50) return 'zip';
    if (bytesRead >= 4 && head.readUInt32LE(0) === 0x06054b50) return 'zip';
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return null;
  } finally {
    await handle.close();
  }
}

/** Copy out the wanted files of the archive at `archivePath` into `dir` (an empty folder the caller owns and removes). */
export async function extractArchive(archivePath: string, dir: string, want: WantEntry, limits: ArchiveLimits = ARCHIVE_LIMITS): Promise<ArchiveContents> {
  const contents: ArchiveContents = { format: await archiveFormat(archivePath), files: [], unwanted: [], problems: [] };
  if (contents.format === null) {
    contents.problems.push(problem(null, 'not_an_archive', 'The submission is neither a ZIP archive nor a tar archive (.tar or .tar.gz).'));
    return contents;
  }
  try {
    if (contents.format === 'zip') await readZip(archivePath, dir, want, limits, contents);
    else await readTar(archivePath, contents.format === 'tar.gz', dir, want, limits, contents);
  } catch (error) {
    if (error instanceof ArchiveStop) contents.problems.push(error.problem);
    else {
      const reason = (error as Error).message.split('\n')[0];
      contents.problems.push(problem(null, 'unreadable_archive', `The ${contents.format === 'zip' ? 'ZIP' : 'tar'} archive cannot be read (${reason}).`));
    }
  }
  return contents;
}

/** Passes bytes on while counting them; `check` may throw an ArchiveStop to end the copy. */
function counter(check: (bytes: number) => void): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      bytes += chunk.length;
      try {
        check(bytes);
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback(null, chunk);
    },
  });
}

/** A sorted, dense place to copy the n-th wanted file to. */
const targetFor = (dir: string, n: number) => path.join(dir, `entry-${String(n).padStart(5, '0')}`);

function classify(name: string, contents: ArchiveContents): 'skip' | 'check' {
  if (CLUTTER.test(name)) return 'skip';
  const wrong = entryNameProblem(name);
  if (wrong) {
    contents.problems.push(wrong);
    return 'skip';
  }
  return 'check';
}

function tooMany(limits: ArchiveLimits): ArchiveStop {
  return new ArchiveStop(problem(null, 'too_many_entries', `The archive has more than ${limits.maxEntries} entries; a submission holds one file per slide.`));
}

function tooLarge(limits: ArchiveLimits, file: string | null): ArchiveStop {
  return new ArchiveStop(
    problem(file, 'too_large', `The archive unpacks to more than ${size(limits.maxTotalBytes)}${file ? ` (reached at "${file}")` : ''}, the most a submission may hold.`),
  );
}

function ratioProblem(file: string | null, unpacked: number, packed: number, limits: ArchiveLimits): FileProblem {
  const what = file ? `The archive entry "${file}"` : 'The compressed archive';
  return problem(
    file,
    'compression_ratio',
    `${what} unpacks to ${size(unpacked)} from ${size(packed)}, more than ${limits.maxRatio} times its packed size, as a ZIP bomb does; ` +
      'masks are compressed in their own format (PNG, or TIFF with Deflate), so store them in the archive as they are.',
  );
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true }, (error, zip) => (error ? reject(error) : resolve(zip)));
  });
}

function nextZipEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | null> {
  return new Promise((resolve, reject) => {
    const done = () => {
      zip.off('entry', onEntry);
      zip.off('end', onEnd);
      zip.off('error', onError);
    };
    const onEntry = (entry: yauzl.Entry) => (done(), resolve(entry));
    const onEnd = () => (done(), resolve(null));
    const onError = (error: Error) => (done(), reject(error));
    zip.on('entry', onEntry);
    zip.on('end', onEnd);
    zip.on('error', onError);
    zip.readEntry();
  });
}

function openZipEntry(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  return new Promise((resolve, reject) => zip.openReadStream(entry, (error, stream) => (error ? reject(error) : resolve(stream))));
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;

async function readZip(file: string, dir: string, want: WantEntry, limits: ArchiveLimits, contents: ArchiveContents): Promise<void> {
  const zip = await openZip(file);
  try {
    if (zip.entryCount > limits.maxEntries) throw tooMany(limits);
    let declared = 0;
    let copied = 0;
    for (let entry = await nextZipEntry(zip); entry; entry = await nextZipEntry(zip)) {
      const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileNameRaw, entry.extraFields, false);
      if (name.endsWith('/')) continue; // a folder
      if (classify(name, contents) === 'skip') continue;
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const madeOnUnix = entry.versionMadeBy >>> 8 === 3;
      if (madeOnUnix && mode === S_IFLNK) {
        contents.problems.push(problem(name, 'link', `The archive entry "${name}" is a symbolic link; links are not accepted, put the file itself in the archive.`));
        continue;
      }
      if (madeOnUnix && mode !== 0 && mode !== S_IFREG) {
        contents.problems.push(problem(name, 'not_a_file', `The archive entry "${name}" is not a regular file.`));
        continue;
      }
      declared += entry.uncompressedSize;
      if (declared > limits.maxTotalBytes) throw tooLarge(limits, name);
      if (entry.uncompressedSize > limits.ratioFloorBytes && entry.uncompressedSize > limits.maxRatio * entry.compressedSize) {
        contents.problems.push(ratioProblem(name, entry.uncompressedSize, entry.compressedSize, limits));
        continue;
      }
      const base = name.slice(name.lastIndexOf('/') + 1);
      if (!want(name, base)) {
        contents.unwanted.push(name);
        continue;
      }
      if (entry.isEncrypted()) {
        contents.problems.push(problem(name, 'encrypted_entry', `The archive entry "${name}" is encrypted; submit an archive without a password.`));
        continue;
      }
      const target = targetFor(dir, contents.files.length + 1);
      let stream: Readable;
      try {
        stream = await openZipEntry(zip, entry);
      } catch (error) {
        contents.problems.push(problem(name, 'unreadable_entry', `The archive entry "${name}" cannot be unpacked (${(error as Error).message}).`));
        continue;
      }
      const limit = entry.uncompressedSize;
      await pipeline(
        stream,
        counter((bytes) => {
          if (copied + bytes > limits.maxTotalBytes) throw tooLarge(limits, name);
          // yauzl checks the sizes too; this keeps the promise whatever the header says.
          if (bytes > limit) throw new ArchiveStop(problem(name, 'unreadable_entry', `The archive entry "${name}" holds more bytes than its header declares.`));
        }),
        createWriteStream(target, { flags: 'wx' }),
      );
      copied += limit;
      contents.files.push({ entry: name, base, path: target, size: limit });
    }
  } finally {
    zip.close();
  }
}

async function readTar(file: string, gzipped: boolean, dir: string, want: WantEntry, limits: ArchiveLimits, contents: ArchiveContents): Promise<void> {
  const input = createReadStream(file);
  let packed = 0;
  input.on('data', (chunk: Buffer | string) => (packed += chunk.length));
  const extract = tar.extract();
  const feeding = gzipped
    ? pipeline(
        input,
        zlib.createGunzip(),
        counter((unpacked) => {
          if (unpacked > limits.ratioFloorBytes && unpacked > limits.maxRatio * packed) throw new ArchiveStop(ratioProblem(null, unpacked, packed, limits));
        }),
        extract,
      )
    : pipeline(input, extract);
  feeding.catch(() => undefined); // the same error reaches the loop below through `extract`
  let entries = 0;
  let total = 0;
  try {
    for await (const entry of extract) {
      const { name: raw, type, size: bytes = 0 } = entry.header;
      const name = raw.replace(/^(\.\/)+/, '');
      const drain = async () => {
        entry.resume();
        await new Promise<void>((resolve, reject) => {
          entry.once('end', resolve);
          entry.once('error', reject);
        });
      };
      if (++entries > limits.maxEntries) throw tooMany(limits);
      total += bytes;
      if (total > limits.maxTotalBytes) throw tooLarge(limits, name);
      if (type === 'directory' || name === '' || name.endsWith('/')) {
        await drain();
        continue;
      }
      if (classify(name, contents) === 'skip') {
        await drain();
        continue;
      }
      if (type === 'symlink' || type === 'link') {
        const kind = type === 'symlink' ? 'a symbolic link' : 'a hard link';
        contents.problems.push(problem(name, 'link', `The archive entry "${name}" is ${kind}; links are not accepted, put the file itself in the archive.`));
        await drain();
        continue;
      }
      if (type !== 'file' && type !== 'contiguous-file') {
        contents.problems.push(problem(name, 'not_a_file', `The archive entry "${name}" is not a regular file.`));
        await drain();
        continue;
      }
      const base = name.slice(name.lastIndexOf('/') + 1);
      if (!want(name, base)) {
        contents.unwanted.push(name);
        await drain();
        continue;
      }
      const target = targetFor(dir, contents.files.length + 1);
      await pipeline(entry, createWriteStream(target, { flags: 'wx' }));
      contents.files.push({ entry: name, base, path: target, size: bytes });
    }
    await feeding;
  } catch (error) {
    input.destroy();
    extract.destroy();
    throw error;
  }
}
