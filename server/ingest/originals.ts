/** What becomes of the original file (and its XML) once its ingest is settled. */
import { createHash, randomBytes } from 'node:crypto';
import { cp, mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { copyFileAtomic, moveFile, writeFileAtomic } from '../lib/files.js';
import { sha256File } from '../lib/hashing.js';
import { placeOriginal } from './dicom-series.js';
import type { Candidate } from './discover.js';
import type { IngestReport, IngestSettings } from './ingest-settings.js';

/** The original (moved from the inbox, copied from a curator's folder) into a fresh quarantine folder with its reason and report. */
export async function quarantine(candidate: Candidate, reason: string, report: IngestReport, settings: IngestSettings): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const folder = path.join(settings.paths.quarantine, `${stamp}-${randomBytes(3).toString('hex')}`);
  await mkdir(folder, { recursive: true });
  const place = settings.takeOriginals ? moveFile : copyFileAtomic;
  await placeOriginal(candidate.file, path.join(folder, candidate.fileName), settings.takeOriginals);
  if (candidate.xml) await place(candidate.xml, path.join(folder, path.basename(candidate.xml)));
  await placeCompanions(candidate, folder, settings.takeOriginals);
  await writeFileAtomic(path.join(folder, 'reason.txt'), `${reason}\n`);
  await writeFileAtomic(path.join(folder, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return folder;
}

/** Originals are never served: kept under their content hash in paths.originals, or (inbox) removed. */
export async function keepOriginal(candidate: Candidate, sha256: string, settings: IngestSettings): Promise<void> {
  const extension = path.extname(candidate.fileName).toLowerCase();
  if (settings.keepOriginals && candidate.companions?.length) {
    // A multi-file slide stays together, under its names (the index names its parts), in a folder named by its SHA-256.
    const folder = path.join(settings.paths.originals, sha256);
    await mkdir(folder, { recursive: true });
    const place = settings.takeOriginals ? moveFile : copyFileAtomic;
    await place(candidate.file, path.join(folder, candidate.fileName));
    if (candidate.xml) await place(candidate.xml, path.join(folder, path.basename(candidate.xml)));
    await placeCompanions(candidate, folder, settings.takeOriginals);
  } else if (settings.keepOriginals) {
    await mkdir(settings.paths.originals, { recursive: true });
    const place = settings.takeOriginals ? moveFile : copyFileAtomic;
    await placeOriginal(candidate.file, path.join(settings.paths.originals, `${sha256}${extension}`), settings.takeOriginals);
    if (candidate.xml) await place(candidate.xml, path.join(settings.paths.originals, `${sha256}.xml`));
  } else if (settings.takeOriginals) {
    await removeOriginal(candidate);
  }
}

/** The original and its XML deleted (an inbox's repeat of a published slide). */
export async function removeOriginal(candidate: Candidate): Promise<void> {
  // A DICOM series folder goes as a whole.
  await rm(candidate.file, { recursive: true, force: true });
  if (candidate.xml) await rm(candidate.xml, { force: true });
  for (const part of candidate.companions ?? []) await rm(part, { recursive: true, force: true });
}

/** A multi-file slide's other files (or its data folder) into `folder`, copied or moved. */
async function placeCompanions(candidate: Candidate, folder: string, take: boolean): Promise<void> {
  for (const part of candidate.companions ?? []) {
    const target = path.join(folder, path.basename(part));
    if ((await stat(part)).isDirectory()) {
      await cp(part, target, { recursive: true });
      if (take) await rm(part, { recursive: true, force: true });
    } else {
      await (take ? moveFile : copyFileAtomic)(part, target);
    }
  }
}

/**
 * A multi-file original's SHA-256: of the index's and every part's SHA-256
 * with its path relative to the folder, in order, so that a second ingest of
 * the same slide is recognised even where two slides' index files are alike.
 */
export async function originalHash(candidate: Candidate): Promise<string> {
  const dir = path.dirname(candidate.file);
  const files = [candidate.file];
  for (const part of candidate.companions ?? []) {
    if ((await stat(part)).isDirectory()) {
      const entries = await readdir(part, { recursive: true, withFileTypes: true });
      files.push(...entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)).sort());
    } else {
      files.push(part);
    }
  }
  const hash = createHash('sha256');
  for (const file of files) hash.update(`${path.relative(dir, file)}\0${await sha256File(file)}\n`);
  return hash.digest('hex');
}
