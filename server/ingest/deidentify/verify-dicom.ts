/**
 * Check a de-identified DICOM series without trusting the code that wrote
 * it: every instance parsed again (dicom-parser, all of it but the pixels),
 * every attribute at every depth held against the profile's table, no
 * private attribute, no image but the pyramid, the patient named only by
 * the slide's new name; the series opened by the slide engine with the
 * expected pyramid and its frames identical to the original's; and every
 * byte of every file searched for each identifying value found in the
 * original (verify.ts's scan).
 */
import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import dicomParser from 'dicom-parser';
import { openDicomSeries } from '../../wsi/formats/dicom/series.js';
import { readInstanceHeader } from '../../wsi/formats/dicom/dataset.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import { DICOM_RULES, DICOM_WRITTEN, isStandardUid } from './dicom-policy.js';
import { frameDigest, seriesDigest } from './dicom.js';
import type { VerifyExpectations } from './verify-expectations.js';
import { checkPyramid } from './verify-pyramid.js';

/** Item and delimiter tags, which are structure, not attributes. */
const isStructure = (tag: number) => tag >>> 16 === 0xfffe;

export interface DicomExpectations extends VerifyExpectations {
  /** The slide's new name, the only name Patient Name, Patient ID and Container Identifier may hold. */
  name: string;
  /** Per level, the digest of the original's frames. */
  frameDigests: string[];
}

export async function verifyDicomSeries(folder: string, expected: DicomExpectations, add: (name: string, problem: string | undefined, ok: string) => void): Promise<{ files: string[] }> {
  const files = (await readdir(folder)).filter((n) => !n.startsWith('.')).sort().map((n) => path.join(folder, n));
  const attributeProblems: string[] = [];
  const identityProblems: string[] = [];
  const imageProblems: string[] = [];
  const studies = new Set<string>();
  const series = new Set<string>();
  for (const file of files) {
    const name = path.basename(file);
    let ds: dicomParser.DataSet;
    try {
      ds = await parseWithoutPixels(file);
    } catch (error) {
      attributeProblems.push(`${name}: cannot be parsed (${(error as Error).message})`);
      continue;
    }
    walk(ds, name, attributeProblems);
    const str = (tag: string) => ds.string(tag)?.trim() ?? '';
    for (const [tag, what] of [
      ['x00100010', 'Patient Name'],
      ['x00100020', 'Patient ID'],
      ['x00400512', 'Container Identifier'],
    ] as const) {
      if (str(tag) !== expected.name) identityProblems.push(`${name}: ${what} is not the slide's name`);
    }
    if (str('x00120062') !== 'YES') identityProblems.push(`${name}: Patient Identity Removed is not YES`);
    const methods = ds.elements.x00120064?.items?.map((i) => i.dataSet?.string('x00080100')) ?? [];
    if (!methods.includes('113100')) identityProblems.push(`${name}: the De-identification Method Code Sequence does not name the Basic Profile (113100)`);
    const flavor = str('x00080008').split('\\')[2]?.trim().toUpperCase();
    if (flavor !== 'VOLUME') imageProblems.push(`${name}: an image of type ${flavor ?? '(none)'}, not a pyramid level`);
    if (str('x00080016') !== '1.2.840.10008.5.1.4.1.1.77.1.6') imageProblems.push(`${name}: not a VL Whole Slide Microscopy image`);
    studies.add(str('x0020000d'));
    series.add(str('x0020000e'));
  }
  if (studies.size > 1 || series.size > 1) identityProblems.push(`the instances name ${studies.size} studies and ${series.size} series, not one of each`);
  add('only attributes of the profile, no private attribute', attributeProblems.length ? attributeProblems.slice(0, 20).join('; ') : undefined, `${files.length} instances: every attribute is in the table`);
  add('patient and study identity replaced', identityProblems.length ? identityProblems.join('; ') : undefined, "named by the slide's name only; Patient Identity Removed YES; Basic Profile recorded");
  add('no label, overview or localizer', imageProblems.length ? imageProblems.join('; ') : undefined, `${files.length} VOLUME instances`);

  await checkPyramid(folder, expected.levels, add);

  try {
    const opened = await openDicomSeries(folder);
    try {
      const digests = await Promise.all(
        opened.levels.map(async (level) => {
          const digest = createHash('sha256');
          for (let i = 0; i < level.frames.count; i++) frameDigest(digest, await level.frames.read(i));
          return digest.digest('hex');
        }),
      );
      const differ = digests.map((d, i) => (d === expected.frameDigests[i] ? undefined : `level ${i}`)).filter((d) => d !== undefined);
      add(
        "frames identical to the original's",
        differ.length || digests.length !== expected.frameDigests.length ? `the frames differ from the original's in ${differ.join(', ') || `the number of levels (${digests.length})`}` : undefined,
        `${opened.levels.reduce((n, l) => n + l.frames.count, 0)} frames compared`,
      );
    } finally {
      await opened.close();
    }
  } catch (error) {
    add("frames identical to the original's", `cannot be read: ${(error as Error).message}`, '');
  }
  const digest = await seriesDigest(folder);
  add(
    'checksum matches what was written',
    digest.sha256 !== expected.sha256 || digest.size !== expected.size ? `read back ${digest.size} bytes with SHA-256 ${digest.sha256}, wrote ${expected.size} with ${expected.sha256}` : undefined,
    `SHA-256 ${digest.sha256} over ${files.length} files`,
  );
  return { files };
}

/** Every element before the Pixel Data (and the offset tables), parsed by dicom-parser. */
async function parseWithoutPixels(file: string): Promise<dicomParser.DataSet> {
  const handle = await RandomAccessFile.open(file);
  try {
    const header = await readInstanceHeader(handle);
    const ends = [header.extendedOffsetTable, header.extendedOffsetTableLengths, header.pixelData].filter((r) => r !== undefined).map((r) => r.offset - 12);
    const end = Math.min(...ends);
    const bytes = header.bytes.buffer.subarray(0, end);
    try {
      return dicomParser.parseDicom(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
    } catch (error) {
      throw new Error(typeof error === 'string' ? error : error instanceof Error ? error.message : 'dicom-parser refused it');
    }
  } finally {
    await handle.close();
  }
}

/** Every attribute at every depth against the table; UIDs outside the standard's must not be the original's (checked by the byte search). */
function walk(ds: dicomParser.DataSet, where: string, problems: string[]): void {
  for (const [key, element] of Object.entries(ds.elements)) {
    const tag = Number.parseInt(key.slice(1), 16);
    if (isStructure(tag) || tag >>> 16 === 0x0002 || tag === 0x7fe0_0010) continue;
    const hex = `(${key.slice(1, 5).toUpperCase()},${key.slice(5).toUpperCase()})`;
    if ((tag >>> 16) % 2 === 1) problems.push(`${where}: private attribute ${hex}`);
    else if (!DICOM_RULES.has(tag) && !DICOM_WRITTEN.has(tag) && tag !== 0x0012_0064) problems.push(`${where}: attribute ${hex} is outside the table`);
    if (DICOM_RULES.get(tag)?.action === 'uid') {
      const value = ds.string(key) ?? '';
      if (value && !isStandardUid(value) && !value.startsWith('2.25.')) problems.push(`${where}: ${hex} holds a UID that was not made at ingest`);
    }
    for (const item of element.items ?? []) if (item.dataSet) walk(item.dataSet, where, problems);
  }
}
