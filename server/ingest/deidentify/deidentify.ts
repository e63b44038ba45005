/**
 * Write a de-identified copy of a slide: pyramid levels and thumbnail only
 * (label, macro and anything unrecognised are not copied, so their pixels
 * never reach the new file), each directory with allow-listed tags and a
 * rebuilt description, tiles copied byte for byte.
 */
import { createHash } from 'node:crypto';
import { detectFormat } from '../../wsi/formats/registry.js';
import type { TiffDirectory } from '../../wsi/tiff/directory.js';
import { readDirectories, readHeader } from '../../wsi/tiff/directory.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import { asciiValue, FieldType, type IfdEntry } from '../../wsi/tiff/ifd-writer.js';
import { carryTag, LAYOUT_TAGS, rewriteTiff, type RewriteDirectory } from '../../wsi/tiff/rewrite.js';
import { Tag } from '../../wsi/tiff/tags.js';
import { sanitizeAperioDescription } from './aperio-description.js';
import { collectIdentifiers, type IdentifierSet } from './identifiers.js';
import { REWRITTEN_FORMATS, SAFE_TIFF_TAGS } from './policy.js';

export interface DirectoryReport {
  /** Position in the original. */
  index: number;
  role: 'level' | 'thumbnail' | 'label' | 'macro' | 'unrecognised';
  width: number;
  height: number;
  /** Copied byte for byte; NDPI levels re-tiled from their restart intervals (not decoded) or, where they cannot be, re-encoded. */
  action: 'copied' | 'removed' | 're-tiled' | 're-encoded';
  droppedTags: number[];
  keptDescriptionKeys: string[];
  droppedDescriptionKeys: string[];
  droppedHeaderLines: number;
}

/** A level of the published file and how its tiles were made. */
export interface PublishedLevel {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  /** Which of the original's levels it comes from. */
  from: string;
  /** `copied`: tiles byte for byte; `re-tiled`: NDPI restart intervals re-wrapped, not decoded; `scaled decoding` and `re-encoded`: decoded and encoded as JPEG. */
  how: 'copied' | 're-tiled' | 'scaled decoding' | 're-encoded';
  note: string | null;
}

export interface DeidentifyResult {
  /** The published file's format as the slide engine reads it. */
  vendor: string;
  /** The original's format, where it differs from the published file's (an NDPI published as a tiled TIFF). */
  sourceFormat?: string;
  /** How each level of the published file was made, where it is not a copy of the original's. */
  levels?: PublishedLevel[];
  size: number;
  sha256: string;
  /** The original's SHA-256, when it was computed while the original was read for the copy (`hashOriginal`). */
  originalSha256?: string;
  /** The published TIFF's layout (none for a DICOM series). */
  tiffFormat?: 'classic' | 'bigtiff';
  directories: DirectoryReport[];
  identifiers: IdentifierSet;
  /** What the output must look like: the levels' sizes, largest first. */
  expectedLevels: { width: number; height: number }[];
}

export interface DeidentifyOptions {
  /** The original's file name, itself an identifier to search for. */
  originalName: string;
  /** JPEG quality of tiles that have to be encoded (default 90). */
  quality?: number;
  onProgress?: (done: number, total: number) => void;
  /** Hash the original while reading it, where it can be read front to back whole (`originalSha256`). */
  hashOriginal?: boolean;
  /** The rewriter's read block (default 8 MiB; small ones test chunks cut between blocks). */
  blockBytes?: number;
}

export class DeidentifyError extends Error {
  override readonly name = 'DeidentifyError';
}

export async function deidentifySlide(input: string, output: string, options: DeidentifyOptions): Promise<DeidentifyResult> {
  const file = await RandomAccessFile.open(input);
  try {
    const header = await readHeader(file);
    const directories = await readDirectories(file);
    const { format, declined } = detectFormat(directories);
    if (!format) throw new DeidentifyError(`not a supported slide (${declined.map((d) => `${d.format}: ${d.reason}`).join('; ')})`);
    if (!REWRITTEN_FORMATS.has(format.name)) throw new DeidentifyError(`de-identification does not rewrite ${format.name} files`);
    const layout = format.layout(directories);
    if (layout.levels.length === 0) throw new DeidentifyError('the file has no tiled pyramid levels');

    const roles = new Map<TiffDirectory, DirectoryReport['role']>();
    for (const level of layout.levels) roles.set(level.directory, 'level');
    for (const [name, directory] of layout.associated) roles.set(directory, name);

    const reports: DirectoryReport[] = [];
    const kept: RewriteDirectory[] = [];
    for (const directory of directories) {
      const role = roles.get(directory) ?? 'unrecognised';
      const report: DirectoryReport = {
        index: directory.index,
        role,
        width: directory.width,
        height: directory.height,
        action: role === 'level' || role === 'thumbnail' ? 'copied' : 'removed',
        droppedTags: [],
        keptDescriptionKeys: [],
        droppedDescriptionKeys: [],
        droppedHeaderLines: 0,
      };
      reports.push(report);
      if (report.action === 'removed') continue;
      kept.push({ source: directory, entries: safeEntries(directory, layout.vendor, report) });
    }

    const sourceHash = options.hashOriginal ? createHash('sha256') : undefined;
    const result = await rewriteTiff(file, header.littleEndian, kept, output, { onProgress: options.onProgress, sourceHash, ...(options.blockBytes ? { blockBytes: options.blockBytes } : {}) });
    return {
      vendor: layout.vendor,
      size: result.size,
      sha256: result.sha256,
      ...(result.sourceHashed ? { originalSha256: sourceHash!.digest('hex') } : {}),
      tiffFormat: result.format,
      directories: reports,
      identifiers: collectIdentifiers(directories, options.originalName),
      expectedLevels: layout.levels.map((l) => ({ width: l.width, height: l.height })),
    };
  } finally {
    await file.close();
  }
}

function safeEntries(directory: TiffDirectory, vendor: string, report: DirectoryReport): IfdEntry[] {
  const entries: IfdEntry[] = [];
  for (const tag of directory.tags.keys()) {
    if (LAYOUT_TAGS.has(tag) || tag === Tag.ImageDescription) continue;
    const entry = SAFE_TIFF_TAGS.has(tag) ? carryTag(directory, tag) : undefined;
    if (entry) entries.push(entry);
    else report.droppedTags.push(tag);
  }
  if (directory.description !== '') {
    if (vendor === 'aperio') {
      const sanitized = sanitizeAperioDescription(directory.description);
      entries.push({ tag: Tag.ImageDescription, type: FieldType.ASCII, values: asciiValue(sanitized.text) });
      report.keptDescriptionKeys = sanitized.keptKeys;
      report.droppedDescriptionKeys = sanitized.droppedKeys;
      report.droppedHeaderLines = sanitized.droppedHeaderLines;
    } else {
      // A generic TIFF's description is free text with no convention to keep.
      report.droppedTags.push(Tag.ImageDescription);
    }
  }
  return entries;
}
