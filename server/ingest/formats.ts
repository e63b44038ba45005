/**
 * Which slide formats ingest can publish, and how. De-identification is a
 * rule set per format: a file is recognised by its content, never by its
 * extension, and a format without rules (an NDPI or a DICOM file renamed to
 * `.tif`) is refused before anything else is done with it.
 */
import { detectFormat, pathFormatFor } from '../wsi/formats/registry.js';
import { readDirectories } from '../wsi/tiff/directory.js';
import { RandomAccessFile } from '../wsi/tiff/file.js';
import { DEIDENTIFIED_FORMATS } from './deidentify/policy.js';
import { Refusal } from './refusal.js';

/** The slide engine's name for the file's format, or undefined when no driver claims it (or it cannot be read). */
export async function engineFormatOf(file: string): Promise<string | undefined> {
  try {
    const byPath = await pathFormatFor(file);
    if (byPath) return byPath.name;
    const handle = await RandomAccessFile.open(file);
    try {
      return detectFormat(await readDirectories(handle)).format?.name;
    } finally {
      await handle.close();
    }
  } catch {
    // Unreadable: the readability check that follows quarantines it with the reader's reason.
    return undefined;
  }
}

/** Quarantines a slide whose format the slide engine recognises but de-identification has no rules for. */
export async function refuseUnhandledFormat(file: string): Promise<string | undefined> {
  const format = await engineFormatOf(file);
  if (format !== undefined && !DEIDENTIFIED_FORMATS.has(format)) {
    throw new Refusal(
      'quarantined',
      `the file is a ${format} slide, whatever its extension says, and de-identification has no rules for ${format} files; nothing was written`,
    );
  }
  return format;
}
