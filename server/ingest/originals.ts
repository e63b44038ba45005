/** What becomes of the original file (and its XML) once its ingest is settled. */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { copyFileAtomic, moveFile, writeFileAtomic } from '../lib/files.js';
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
  await writeFileAtomic(path.join(folder, 'reason.txt'), `${reason}\n`);
  await writeFileAtomic(path.join(folder, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return folder;
}

/** Originals are never served: kept under their content hash in paths.originals, or (inbox) removed. */
export async function keepOriginal(candidate: Candidate, sha256: string, settings: IngestSettings): Promise<void> {
  const extension = path.extname(candidate.fileName).toLowerCase();
  if (settings.keepOriginals) {
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
}
