/**
 * DICOM originals as ingest sees them: a series is one slide, either a
 * sub-folder of the ingest folder holding its instances (any file names) or
 * one multi-frame `.dcm`/`.dicom` file. Its annotation XML and its metadata
 * row are named after the folder or the file. A folder is hashed, kept,
 * quarantined and removed as a whole.
 */
import { createHash } from 'node:crypto';
import { cp, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { copyFileAtomic, moveFile } from '../lib/files.js';
import { sha256File } from '../lib/hashing.js';

/** Single-file DICOM series, by extension. */
export const DICOM_FILE_EXTENSIONS = /\.(dcm|dicom)$/i;

/** Whether a file starts as a DICOM Part 10 file does (128-byte preamble, then "DICM"). */
async function isDicomPart10(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const prefix = Buffer.alloc(4);
    const { bytesRead } = await handle.read(prefix, 0, 4, 128);
    return bytesRead === 4 && prefix.toString('latin1') === 'DICM';
  } finally {
    await handle.close();
  }
}

/** The sub-folders of `dir` that hold DICOM files: each is offered as one slide (a series, or refused with the reason when it is not one). */
export async function dicomSeriesFolders(dir: string): Promise<string[]> {
  const folders = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
  const found: string[] = [];
  for (const name of folders.sort()) {
    const files = (await readdir(path.join(dir, name), { withFileTypes: true })).filter((e) => e.isFile() && !e.name.startsWith('.'));
    for (const file of files) {
      if (await isDicomPart10(path.join(dir, name, file.name))) {
        found.push(name);
        break;
      }
    }
  }
  return found;
}

const isFolder = async (file: string) => (await stat(file)).isDirectory();

/** The files of a series folder, in name order (hidden files left out, as the slide engine does). */
async function seriesFiles(folder: string): Promise<string[]> {
  return (await readdir(folder, { withFileTypes: true }))
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => path.join(folder, e.name))
    .sort();
}

/** When an original last changed (ms): a file's modification time, or the newest of a series folder's and its files'. */
export async function lastChange(file: string): Promise<number> {
  const stats = await stat(file);
  if (!stats.isDirectory()) return stats.mtimeMs;
  let latest = stats.mtimeMs;
  for (const f of await seriesFiles(file)) latest = Math.max(latest, (await stat(f)).mtimeMs);
  return latest;
}

/** An original's size: a file's, or the sum of a series folder's files. */
export async function originalSize(file: string): Promise<number> {
  if (!(await isFolder(file))) return (await stat(file)).size;
  let size = 0;
  for (const f of await seriesFiles(file)) size += (await stat(f)).size;
  return size;
}

/** A series folder's SHA-256: of each file's name and SHA-256, in name order, so a second ingest of the same series is recognised. */
export async function seriesHash(folder: string): Promise<string> {
  const hash = createHash('sha256');
  for (const file of await seriesFiles(folder)) hash.update(`${path.basename(file)}\0${await sha256File(file)}\n`);
  return hash.digest('hex');
}

/** The original's SHA-256 when it is a series folder; undefined for a file (hashed as any file is). */
export async function folderHash(file: string): Promise<string | undefined> {
  return (await isFolder(file)) ? seriesHash(file) : undefined;
}

/** Copy (or move) an original, a file or a series folder, to `target`. */
export async function placeOriginal(source: string, target: string, take: boolean): Promise<void> {
  if (!(await isFolder(source))) return (take ? moveFile : copyFileAtomic)(source, target);
  if (take) {
    try {
      await rename(source, target);
      return;
    } catch {
      // Across file systems: copied, then removed.
    }
  }
  const partial = `${target}.partial`;
  await cp(source, partial, { recursive: true });
  await rename(partial, target);
  if (take) await rm(source, { recursive: true, force: true });
}
