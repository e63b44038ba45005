/**
 * Check a de-identified file without trusting the code that wrote it: read it
 * back with the slide reader, look at every directory, and search every byte
 * for each identifying value found in the original.
 */
import { createHash } from 'node:crypto';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { MultiPatternSearch } from '../../lib/multi-pattern-search.js';
import { detectFormat } from '../../wsi/formats/registry.js';
import { readDirectories } from '../../wsi/tiff/directory.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import { LAYOUT_TAGS } from '../../wsi/tiff/rewrite.js';
import { Tag } from '../../wsi/tiff/tags.js';
import { descriptionProblem } from './aperio-description.js';
import type { IdentifierSet } from './identifiers.js';
import { SAFE_TIFF_TAGS } from './policy.js';
import { verifyDicomSeries } from './verify-dicom.js';
import type { VerifyExpectations } from './verify-expectations.js';
import { checkPyramid } from './verify-pyramid.js';

export type { VerifyExpectations };

export interface Check {
  name: string;
  passed: boolean;
  detail: string;
}

export interface Verification {
  passed: boolean;
  checks: Check[];
  bytesScanned: number;
}

export async function verifyDeidentified(file: string, expected: VerifyExpectations): Promise<Verification> {
  const checks: Check[] = [];
  const add = (name: string, problem: string | undefined, ok: string) => checks.push({ name, passed: problem === undefined, detail: problem ?? ok });
  if ((await stat(file)).isDirectory()) {
    if (!expected.dicom) {
      add('a slide file', 'the copy is a folder, and only a DICOM series is published as one', '');
      return { passed: false, checks, bytesScanned: 0 };
    }
    const { files } = await verifyDicomSeries(file, { ...expected, ...expected.dicom }, add);
    const found = new Set<string>();
    let bytes = 0;
    for (const instance of files) {
      const scan = await scanBytes(instance, expected.identifiers);
      for (const source of scan.found) found.add(source);
      bytes += scan.bytes;
    }
    add(
      'no identifying value anywhere in the series',
      found.size ? `found the original's ${[...found].join(', ')}` : undefined,
      `searched ${bytes} bytes of ${files.length} instances for ${expected.identifiers.scanned.length} values (Latin-1 and UTF-16)` +
        (expected.identifiers.tooShort.length ? `; too short to search for: ${expected.identifiers.tooShort.join(', ')}` : ''),
    );
    return { passed: checks.every((c) => c.passed), checks, bytesScanned: bytes };
  }

  let structureRead = false;
  const handle = await RandomAccessFile.open(file);
  try {
    const directories = await readDirectories(handle);
    const { format } = detectFormat(directories);
    const layout = format?.layout(directories);
    structureRead = true;

    const associated = layout ? [...layout.associated.keys()] : [];
    const forbidden = associated.filter((name) => name === 'label' || name === 'macro');
    const unaccounted = directories.length - (layout?.levels.length ?? 0) - associated.length;
    add(
      'no label or macro image',
      forbidden.length > 0 ? `the output still has: ${forbidden.join(', ')}` : unaccounted > 0 ? `${unaccounted} directories are neither levels nor the thumbnail` : undefined,
      `${directories.length} directories: ${layout?.levels.length ?? 0} levels${associated.length ? `, ${associated.join(', ')}` : ''}`,
    );

    const tagProblems: string[] = [];
    const descriptionProblems: string[] = [];
    for (const directory of directories) {
      for (const tag of directory.tags.keys()) {
        if (!SAFE_TIFF_TAGS.has(tag) && !LAYOUT_TAGS.has(tag) && tag !== Tag.ImageDescription) tagProblems.push(`directory ${directory.index} has tag ${tag}`);
      }
      if (directory.description !== '') {
        const problem = format?.name === 'aperio' ? descriptionProblem(directory.description) : 'a generic TIFF keeps no description';
        if (problem) descriptionProblems.push(`directory ${directory.index}: ${problem}`);
      }
    }
    add('only allow-listed TIFF tags', tagProblems.length ? tagProblems.join('; ') : undefined, 'every tag describes pixels or layout');
    add(
      'descriptions hold only allow-listed fields',
      descriptionProblems.length ? descriptionProblems.join('; ') : undefined,
      'every ImageDescription passed the allow-list',
    );
  } catch (error) {
    if (!structureRead) add('readable TIFF structure', (error as Error).message, '');
  } finally {
    await handle.close();
  }

  await checkPyramid(file, expected.levels, add);

  const scan = await scanBytes(file, expected.identifiers);
  add(
    'no identifying value anywhere in the file',
    scan.found.length ? `found the original's ${scan.found.join(', ')}` : undefined,
    `searched ${scan.bytes} bytes for ${expected.identifiers.scanned.length} values (Latin-1 and UTF-16)` +
      (expected.identifiers.tooShort.length ? `; too short to search for: ${expected.identifiers.tooShort.join(', ')}` : ''),
  );
  add(
    'checksum matches what was written',
    scan.sha256 !== expected.sha256 || scan.bytes !== expected.size ? `read back ${scan.bytes} bytes with SHA-256 ${scan.sha256}, wrote ${expected.size} with ${expected.sha256}` : undefined,
    `SHA-256 ${scan.sha256}`,
  );
  return { passed: checks.every((c) => c.passed), checks, bytesScanned: scan.bytes };
}

/** The read-back's block size: large reads, few calls. */
export const SCAN_BLOCK = 8 * 1024 * 1024;

/**
 * Every byte of `file` searched for each identifying value (Latin-1 and
 * UTF-16), with the file's SHA-256 computed on the way: one pass, all values
 * at once (`MultiPatternSearch`), the next block read while this one is
 * hashed and searched.
 */
export async function scanBytes(file: string, identifiers: IdentifierSet): Promise<{ found: string[]; bytes: number; sha256: string }> {
  const needles = identifiers.scanned.flatMap(({ source, value }) => [
    { source, bytes: Buffer.from(value, 'latin1') },
    { source, bytes: Buffer.from(value, 'utf16le') },
  ]).filter((n) => n.bytes.length > 0);
  const scanner = needles.length > 0 ? new MultiPatternSearch(needles.map((n) => n.bytes)).scanner() : undefined;
  const hash = createHash('sha256');
  const handle = await open(file, 'r');
  try {
    const buffers = [Buffer.allocUnsafe(SCAN_BLOCK), Buffer.allocUnsafe(SCAN_BLOCK)];
    let bytes = 0;
    let turn = 0;
    let next = readBlock(handle, buffers[0]!, 0);
    for (;;) {
      const block = await next;
      if (block.length === 0) break;
      bytes += block.length;
      turn ^= 1;
      next = readBlock(handle, buffers[turn]!, bytes);
      hash.update(block);
      scanner?.push(block);
    }
    const found = new Set((scanner?.found() ?? []).map((index) => needles[index]!.source));
    return { found: [...found], bytes, sha256: hash.digest('hex') };
  } finally {
    await handle.close();
  }
}

/** As much of `buffer` as the file fills from `position` (empty at the end). */
async function readBlock(handle: FileHandle, buffer: Buffer, position: number): Promise<Buffer> {
  let filled = 0;
  while (filled < buffer.length) {
    const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
