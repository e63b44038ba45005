/**
 * De-identify a DICOM whole-slide series (a folder of instances, or one
 * file): only the pyramid is published, one instance per level (the VOLUME
 * instances; LABEL, OVERVIEW, THUMBNAIL and localizer instances are not
 * copied), each rewritten by the PS3.15 Basic Profile table of
 * dicom-policy.ts, its frames copied byte for byte from the original's
 * encapsulated Pixel Data as the slide engine indexes them (so an offset
 * table that lies, or frames past the end of the file, fail here), and new
 * offset tables written. Every UID is replaced consistently across the series
 * through a mapping that lives only as long as this call.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File } from '../../lib/hashing.js';
import { WsiError } from '../../wsi/errors.js';
import { code, decimalString, numbers, sequence, text, type Dataset, type Element, type Vr } from '../../wsi/dicom-writer/elements.js';
import { srgbProfile } from '../../wsi/dicom-writer/export.js';
import { writeInstanceFile } from '../../wsi/dicom-writer/file-writer.js';
import { readInstanceHeader } from '../../wsi/formats/dicom/dataset.js';
import { elementHeader, hexTag, Tags, UNDEFINED_LENGTH, walkItems, type Bytes } from '../../wsi/formats/dicom/elements.js';
import { openDicomSeries, type DicomImage, type DicomSeries } from '../../wsi/formats/dicom/series.js';
import { describeSyntax, transferSyntax, WSI_SOP_CLASS } from '../../wsi/formats/dicom/syntax.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import type { DeidentifyResult, DirectoryReport } from './deidentify.js';
import { DeidentifyError } from './deidentify.js';
import {
  DEIDENTIFICATION_CODES,
  DEIDENTIFICATION_METHOD,
  DICOM_RULES,
  DUMMY_DATE,
  DUMMY_DATETIME,
  DUMMY_SERIAL,
  DUMMY_TIME,
  isStandardUid,
  REMOVED_KEYWORDS,
  STRICT_KEYWORDS,
} from './dicom-policy.js';
import type { IdentifierSet, IdentifyingValue } from './identifiers.js';
import { MIN_SCANNED_LENGTH } from './policy.js';

export interface DicomDeidentifyOptions {
  /** The original's file or folder name, itself an identifier to search for. */
  originalName: string;
  /** The slide's new name: Patient Name, Patient ID, Container and Specimen Identifier. */
  name: string;
  onProgress?: (done: number, total: number) => void;
}

/** What de-identification did to the attributes, for the report: keywords (or tags), never values. */
export interface DicomAttributeReport {
  /** Replaced by the slide's new name. */
  renamed: string[];
  /** Left present without a value (type 2). */
  emptied: string[];
  /** Given a fixed dummy value (type 1 dates, times, serial number). */
  dummies: string[];
  /** Removed: attributes outside the table, descriptions, dates, institution, … */
  removed: string[];
  /** Distinct UIDs replaced, across the series. */
  uidsReplaced: number;
  privateAttributesRemoved: number;
  /** References to instances that are not published (a label, an overview), dropped. */
  referencesDropped: number;
  /** Type 1 and 2 attributes the original lacked, written so that every instance conforms (keyword and value written). */
  completed: string[];
}

export interface DicomInstanceReport {
  /** The published file, or null for an instance not copied. */
  file: string | null;
  role: 'level' | 'thumbnail' | 'label' | 'macro' | 'unrecognised';
  imageType: string;
  width: number;
  height: number;
  frames: number;
  transferSyntax: string;
  action: 'copied' | 'removed';
  note: string | null;
}

export interface DicomReport {
  profile: string;
  options: string[];
  dates: string;
  instances: DicomInstanceReport[];
  attributes: DicomAttributeReport;
}

export interface DicomDeidentifyResult extends DeidentifyResult {
  /** The slide's new name, written in the patient's place. */
  name: string;
  dicom: DicomReport;
  /** Per published level: a SHA-256 over its frames as the original holds them, for the verification to compare. */
  frameDigests: string[];
}

/**
 * The transfer syntaxes ingest publishes: frames the slide engine decodes, copied as they are. Implicit VR
 * Little Endian is not among them: its data set would have to be re-encoded with explicit VRs.
 */
const PUBLISHED_SYNTAXES = new Set([
  '1.2.840.10008.1.2.1',
  '1.2.840.10008.1.2.4.50',
  '1.2.840.10008.1.2.4.80',
  '1.2.840.10008.1.2.4.81',
  '1.2.840.10008.1.2.4.90',
  '1.2.840.10008.1.2.4.91',
]);
const PUBLISHED_SYNTAX_NAMES = 'uncompressed (Explicit VR Little Endian), JPEG, JPEG-LS and JPEG 2000';

const TEXT_VRS = new Set(['AE', 'AS', 'CS', 'DA', 'DS', 'DT', 'IS', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);
/** Text whose removed values are searched for (codes and numbers are not: they recur by chance). */
const SEARCHED_VRS = new Set(['AE', 'DA', 'DT', 'LO', 'LT', 'PN', 'SH', 'ST', 'TM', 'UC', 'UI', 'UR', 'UT']);

/** Where the published levels' files are named: level-0.dcm, level-1.dcm, … */
export const levelFileName = (level: number) => `level-${level}.dcm`;

/** A raw element of the original, as parsed. */
interface Raw {
  tag: number;
  vr: string;
  value?: Buffer;
  items?: Raw[][];
}

/** One de-identification under way: the UID mapping, what was found and what was done. */
class Rewrite {
  readonly uids = new Map<string, string>();
  readonly found: (IdentifyingValue & { strict: boolean })[] = [];
  readonly report: DicomAttributeReport = { renamed: [], emptied: [], dummies: [], removed: [], uidsReplaced: 0, privateAttributesRemoved: 0, referencesDropped: 0, completed: [] };
  private readonly seen = { renamed: new Set<string>(), emptied: new Set<string>(), dummies: new Set<string>(), removed: new Set<string>(), completed: new Set<string>() };

  constructor(
    readonly name: string,
    /** The original SOP Instance UIDs of the instances published: references to any other are dropped. */
    readonly published: Set<string>,
  ) {}

  private readonly made = new Map<string, string>();

  /** A UID the original lacked (a study, a specimen), the same for the whole series. */
  fresh(role: string): string {
    let uid = this.made.get(role);
    if (!uid) this.made.set(role, (uid = freshUid()));
    return uid;
  }

  uid(original: string, role = ''): string {
    let replaced = this.uids.get(role + original);
    if (!replaced) {
      replaced = freshUid();
      this.uids.set(role + original, replaced);
      this.report.uidsReplaced = this.uids.size;
      this.found.push({ source: 'UID', value: original, strict: true });
    }
    return replaced;
  }

  note(kind: 'renamed' | 'emptied' | 'dummies' | 'removed' | 'completed', what: string): void {
    if (this.seen[kind].has(what)) return;
    this.seen[kind].add(what);
    this.report[kind].push(what);
  }

  /** The values of a raw element (and of its items) that are gone from the copy, to be searched for. */
  collect(raw: Raw, source: string, strict: boolean): void {
    if (raw.items) {
      for (const item of raw.items) for (const child of item) this.collect(child, `${source} > ${keyword(child.tag)}`, strict || STRICT_KEYWORDS.test(keyword(child.tag)));
      return;
    }
    if (!raw.value || raw.value.length === 0) return;
    const printable = SEARCHED_VRS.has(raw.vr) || ((raw.vr === 'UN' || raw.vr === 'OB' || raw.vr === '') && raw.value.length <= 4096 && /^[\x20-\x7e\0\r\n\t]+$/.test(raw.value.toString('latin1')));
    if (!printable) return;
    for (const value of textValue(raw.value).split('\\')) {
      const v = value.trim();
      if (!v || (raw.vr === 'UI' && isStandardUid(v)) || isPartOfDummy(raw.vr, v)) continue;
      this.found.push({ source, value: v, strict });
    }
  }
}

/**
 * A date or time that the profile's own dummy values spell out (a StudyTime of 101000 inside 19000101000000):
 * finding it there says nothing about the original, so it is not searched for.
 */
function isPartOfDummy(vr: string, value: string): boolean {
  return (vr === 'DA' || vr === 'TM' || vr === 'DT') && [DUMMY_DATE, DUMMY_TIME, DUMMY_DATETIME].some((dummy) => dummy.includes(value));
}

/** A new UID: a random UUID as a 2.25 UID (PS3.5 B.2). */
function freshUid(): string {
  return `2.25.${BigInt(`0x${randomUUID().replace(/-/g, '')}`).toString()}`;
}

const keyword = (tag: number) => DICOM_RULES.get(tag)?.keyword ?? REMOVED_KEYWORDS.get(tag) ?? hexTag(tag);
const textValue = (value: Buffer) => value.toString('latin1').replace(/[\0 ]+$/, '');

export async function deidentifyDicom(input: string, outputFolder: string, options: DicomDeidentifyOptions): Promise<DicomDeidentifyResult> {
  let series: DicomSeries;
  try {
    series = await openDicomSeries(input);
  } catch (error) {
    throw new DeidentifyError((error as Error).message);
  }
  const files: RandomAccessFile[] = [];
  try {
    const instances = series.instances;
    const levels = series.levels;
    for (const level of levels) {
      const syntax = level.instances[0]!.header.transferSyntax;
      if (!PUBLISHED_SYNTAXES.has(syntax)) {
        throw new DeidentifyError(
          `a level of ${level.width}×${level.height} pixels is stored in transfer syntax ${describeSyntax(syntax)}; ingest publishes ${PUBLISHED_SYNTAX_NAMES} frames only (copied, never recompressed)`,
        );
      }
      if (level.instances.length > 1 && level.instances[0]!.organization === 'TILED_SPARSE') {
        throw new DeidentifyError(`a level of ${level.width}×${level.height} pixels is a TILED_SPARSE concatenation, which ingest does not merge into one instance`);
      }
    }
    const publishedInstances = new Set(levels.flatMap((l) => l.instances));
    const sopUid = new Map<object, string>();
    for (const instance of instances) {
      const header = await reread(instance.header.path, files);
      sopUid.set(instance, sopInstanceUid(header.bytes, header.explicit));
    }
    const rewrite = new Rewrite(options.name, new Set([...publishedInstances].map((i) => sopUid.get(i)!)));
    rewrite.found.push({ source: 'file name', value: path.basename(options.originalName), strict: true });
    rewrite.found.push({ source: 'file name without extension', value: path.basename(options.originalName).replace(/\.(dcm|dicom)$/i, ''), strict: true });

    const instanceReports: DicomInstanceReport[] = instances.map((instance) => {
      const level = levels.findIndex((l) => l.instances.includes(instance));
      const roles: Record<string, DicomInstanceReport['role']> = { LABEL: 'label', OVERVIEW: 'macro', THUMBNAIL: 'thumbnail', VOLUME: 'level' };
      const role: DicomInstanceReport['role'] = level >= 0 ? 'level' : (roles[instance.flavor] ?? (instance.flavor.includes('LOCALIZER') ? 'macro' : 'unrecognised'));
      const note =
        level >= 0
          ? levels[level]!.instances.length > 1
            ? `part ${levels[level]!.instances.indexOf(instance) + 1} of ${levels[level]!.instances.length} of a concatenation, merged into one instance`
            : null
          : role === 'level'
            ? 'another optical path of a level, or a copy: only the optical path the slide engine shows is published'
            : role === 'thumbnail'
              ? 'not copied: the catalog makes its own thumbnails from the pyramid'
              : `not copied: a ${instance.flavor || 'unnamed'} image is not part of the pyramid`;
      return {
        file: level >= 0 ? levelFileName(level) : null,
        role,
        imageType: instance.imageType.join('\\'),
        width: instance.width,
        height: instance.height,
        frames: instance.frames,
        transferSyntax: describeSyntax(instance.header.transferSyntax),
        action: level >= 0 ? 'copied' : 'removed',
        note,
      };
    });
    // Values of instances that are not copied are searched for too: a label's barcode, an overview's description.
    for (const instance of instances) {
      if (publishedInstances.has(instance)) continue;
      const header = await reread(instance.header.path, files);
      collectNotKept(rewrite, parseTop(header.bytes, header.explicit, header.end));
    }

    await mkdir(outputFolder, { recursive: true });
    const totalFrames = levels.reduce((n, l) => n + l.frames.count, 0);
    let framesDone = 0;
    const frameDigests: string[] = [];
    const kept = new Set<string>();
    for (const [index, level] of levels.entries()) {
      const header = await reread(level.instances[0]!.header.path, files);
      const dataset = await rewriteInstance(rewrite, parseTop(header.bytes, header.explicit, header.end), level, index);
      const digest = createHash('sha256');
      const file = path.join(outputFolder, levelFileName(index));
      const result = await writeInstanceFile(file, {
        sopClassUid: WSI_SOP_CLASS,
        sopInstanceUid: text0(dataset, 0x0008_0018)!,
        transferSyntax: level.instances[0]!.header.transferSyntax,
        dataset,
        frameCount: level.frames.count,
        maxFrameBytes: level.instances.reduce((n, i) => n + files.find((f) => f.path === i.header.path)!.size, 0),
        frames: framesOf(level, digest, () => options.onProgress?.(++framesDone, totalFrames)),
        native: nativePixels(level.instances[0]!),
      });
      frameDigests.push(digest.digest('hex'));
      if (result.bytes <= 0) throw new DeidentifyError(`${levelFileName(index)} was written empty`);
      keptTexts(dataset, kept);
    }
    const { sha256, size } = await seriesDigest(outputFolder);
    return {
      vendor: 'dicom',
      size,
      sha256,
      directories: instanceReports.map(
        (r, index): DirectoryReport => ({
          index,
          role: r.role,
          width: r.width,
          height: r.height,
          action: r.action,
          droppedTags: [],
          keptDescriptionKeys: [],
          droppedDescriptionKeys: [],
          droppedHeaderLines: 0,
        }),
      ),
      identifiers: identifierSet(rewrite, kept),
      expectedLevels: levels.map((l) => ({ width: l.width, height: l.height })),
      dicom: {
        profile: 'DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile',
        options: [],
        dates: `removed: type 2 dates and times emptied, type 1 set to ${DUMMY_DATE}, ${DUMMY_TIME} and ${DUMMY_DATETIME}; the others removed`,
        instances: instanceReports,
        attributes: rewrite.report,
      },
      frameDigests,
      name: options.name,
    };
  } catch (error) {
    await rm(outputFolder, { recursive: true, force: true });
    if (error instanceof WsiError) throw new DeidentifyError(error.message);
    throw error;
  } finally {
    await Promise.all(files.map((f) => f.close().catch(() => undefined)));
    await series.close();
  }
}

/** For uncompressed frames, their size and the Pixel Data's VR (OW above 8 bits, PS3.5 8.1.2). */
function nativePixels(instance: DicomImage['instances'][number]): { frameBytes: number; vr: 'OB' | 'OW' } | undefined {
  if (transferSyntax(instance.header.transferSyntax)?.coding !== 'native') return undefined;
  return {
    frameBytes: (instance.tileWidth * instance.tileHeight * instance.samplesPerPixel * instance.bitsAllocated) / 8,
    vr: instance.bitsAllocated > 8 ? 'OW' : 'OB',
  };
}

/** The SHA-256 of a published series: over each file's name and SHA-256, in name order; and its size. */
export async function seriesDigest(folder: string): Promise<{ sha256: string; size: number }> {
  const names = (await readdir(folder)).filter((n) => !n.startsWith('.')).sort();
  const hash = createHash('sha256');
  let size = 0;
  for (const name of names) {
    const file = path.join(folder, name);
    hash.update(`${name}\0${await sha256File(file)}\n`);
    size += (await stat(file)).size;
  }
  return { sha256: hash.digest('hex'), size };
}

/** The frames of a level in batches, each hashed on the way (its length, then its bytes). */
async function* framesOf(level: DicomImage, digest: ReturnType<typeof createHash>, onFrame: () => void): AsyncIterable<Buffer[]> {
  const batch: Buffer[] = [];
  let bytes = 0;
  for (let i = 0; i < level.frames.count; i++) {
    const frame = await level.frames.read(i);
    frameDigest(digest, frame);
    batch.push(frame);
    bytes += frame.length;
    onFrame();
    if (bytes >= 8 * 1024 * 1024) {
      yield batch.splice(0);
      bytes = 0;
    }
  }
  if (batch.length) yield batch;
}

/** A frame into a level's digest: its length (after the padding to an even length DICOM requires), then its bytes. */
export function frameDigest(digest: ReturnType<typeof createHash>, frame: Buffer): void {
  const padded = frame.length % 2 ? Buffer.concat([frame, Buffer.alloc(1)]) : frame;
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  digest.update(length);
  digest.update(padded);
}

interface Reread {
  bytes: Bytes;
  explicit: boolean;
  /** Where the top-level elements ingest reads end: the Extended Offset Table's or the Pixel Data's header. */
  end: number;
}

/** An instance's header bytes, read again (the open series let go of them). */
async function reread(file: string, files: RandomAccessFile[]): Promise<Reread> {
  let handle = files.find((f) => f.path === file);
  if (!handle) {
    handle = await RandomAccessFile.open(file);
    files.push(handle);
  }
  const header = await readInstanceHeader(handle);
  if (!header.pixelData) throw new DeidentifyError('an instance without Pixel Data');
  const starts = [header.extendedOffsetTable, header.extendedOffsetTableLengths, header.pixelData].filter((r) => r !== undefined).map((r) => r.offset - 12);
  if (!transferSyntax(header.transferSyntax)?.explicit) {
    throw new DeidentifyError(`transfer syntax ${describeSyntax(header.transferSyntax)} is not published by ingest (${PUBLISHED_SYNTAX_NAMES} only)`);
  }
  return { bytes: header.bytes, explicit: header.explicit, end: Math.min(...starts) };
}

/** The elements of the data set (after the File Meta Information) up to `end`. */
function parseTop(bytes: Bytes, explicit: boolean, end: number): Raw[] {
  let at = 132;
  for (;;) {
    const h = elementHeader(bytes, at, true);
    if (h.tag >>> 16 !== 0x0002) break;
    at = h.value + h.length;
  }
  return parseElements(bytes, at, end, explicit).elements;
}

function parseElements(bytes: Bytes, start: number, end: number | undefined, explicit: boolean): { elements: Raw[]; next: number } {
  const elements: Raw[] = [];
  let at = start;
  while (end === undefined || at < end) {
    const h = elementHeader(bytes, at, explicit);
    if (h.tag === Tags.ItemEnd) return { elements, next: h.value };
    const vr = h.vr || DICOM_RULES.get(h.tag)?.vr || (h.length === UNDEFINED_LENGTH ? 'SQ' : 'UN');
    if (vr === 'SQ' || (vr === 'UN' && h.length === UNDEFINED_LENGTH)) {
      const items: Raw[][] = [];
      // An undefined-length UN is a sequence in Implicit VR (PS3.5 6.2.2).
      const itemsExplicit = vr === 'SQ' && explicit;
      at = walkItems(bytes, h.value, h.length === UNDEFINED_LENGTH ? undefined : h.value + h.length, itemsExplicit, (item) => {
        const parsed = parseElements(bytes, item.value, item.length === UNDEFINED_LENGTH ? undefined : item.value + item.length, itemsExplicit);
        items.push(parsed.elements);
        return parsed.next;
      });
      elements.push({ tag: h.tag, vr: 'SQ', items });
      continue;
    }
    if (h.length === UNDEFINED_LENGTH) throw new DeidentifyError(`element ${hexTag(h.tag)} has an undefined length`);
    elements.push({ tag: h.tag, vr, value: bytes.buffer.subarray(h.value - bytes.base, h.value - bytes.base + h.length) });
    at = h.value + h.length;
  }
  return { elements, next: at };
}

/** The values of an instance that is not copied which the table would not keep either (its label text, barcode, names, UIDs, dates). */
function collectNotKept(rewrite: Rewrite, elements: Raw[]): void {
  for (const raw of elements) {
    const rule = DICOM_RULES.get(raw.tag);
    if ((raw.tag >>> 16) % 2 === 1 || !rule) collectRemoved(rewrite, raw);
    else if (rule.action === 'keep') for (const item of raw.items ?? []) collectNotKept(rewrite, item);
    else collectRemoved(rewrite, raw);
  }
}

function collectRemoved(rewrite: Rewrite, raw: Raw): void {
  const name = keyword(raw.tag);
  rewrite.collect(raw, name, (raw.tag >>> 16) % 2 === 0 && STRICT_KEYWORDS.test(name));
}

/** The SOP Instance UID among the top-level elements. */
function sopInstanceUid(bytes: Bytes, explicit: boolean): string {
  let at = 132;
  for (;;) {
    const h = elementHeader(bytes, at, true);
    if (h.tag >>> 16 !== 0x0002) break;
    at = h.value + h.length;
  }
  for (;;) {
    const h = elementHeader(bytes, at, explicit);
    if (h.tag === 0x0008_0018) return textValue(bytes.buffer.subarray(h.value, h.value + h.length));
    if (h.tag > 0x0008_0018) return '';
    at = h.value + h.length;
  }
}

/** A level's attributes by the table, then completed where the original lacks what the IOD requires. */
async function rewriteInstance(rewrite: Rewrite, top: Raw[], level: DicomImage, index: number): Promise<Dataset> {
  const dataset = transform(rewrite, top);
  const set = (element: Element) => {
    const at = dataset.findIndex((e) => e.tag === element.tag);
    if (at >= 0) dataset.splice(at, 1, element);
    else dataset.push(element);
  };
  const has = (ds: Dataset, tag: number) => ds.some((e) => e.tag === tag);
  const ensure = (ds: Dataset, element: Element, what: string) => {
    if (has(ds, element.tag)) return;
    ds.push(element);
    rewrite.note('completed', what);
  };
  const base = level.instances[0]!;
  const photometric = base.photometric;

  set(text(0x0020_0013, 'IS', String(index + 1)));
  set(text(0x0028_0008, 'IS', String(level.frames.count)));
  set(text(0x0012_0062, 'CS', 'YES'));
  set(text(0x0012_0063, 'LO', DEIDENTIFICATION_METHOD));
  set(sequence(0x0012_0064, ...DEIDENTIFICATION_CODES.map((c) => code(c.value, 'DCM', c.meaning))));
  set(text(0x0028_0303, 'CS', 'REMOVED'));
  const fresh = (role: string) => rewrite.fresh(role);
  ensure(dataset, text(0x0008_0018, 'UI', fresh(`instance ${index}`)), 'SOPInstanceUID (new)');
  ensure(dataset, text(0x0020_000d, 'UI', fresh('study')), 'StudyInstanceUID (new)');
  ensure(dataset, text(0x0020_000e, 'UI', fresh('series')), 'SeriesInstanceUID (new)');
  ensure(dataset, text(0x0020_0052, 'UI', fresh('frame of reference')), 'FrameOfReferenceUID (new)');
  set(text(0x0008_0016, 'UI', WSI_SOP_CLASS));
  for (const [tag, vr, what] of [
    [0x0010_0010, 'PN', 'PatientName'],
    [0x0010_0020, 'LO', 'PatientID'],
    [0x0040_0512, 'LO', 'ContainerIdentifier'],
  ] as const) {
    ensure(dataset, text(tag, vr, rewrite.name), `${what} (the slide's name)`);
  }
  for (const [tag, vr, what] of [
    [0x0010_0030, 'DA', 'PatientBirthDate'],
    [0x0010_0040, 'CS', 'PatientSex'],
    [0x0008_0020, 'DA', 'StudyDate'],
    [0x0008_0030, 'TM', 'StudyTime'],
    [0x0008_0090, 'PN', 'ReferringPhysicianName'],
    [0x0020_0010, 'SH', 'StudyID'],
    [0x0008_0050, 'SH', 'AccessionNumber'],
    [0x0020_0011, 'IS', 'SeriesNumber'],
    [0x0020_1040, 'LO', 'PositionReferenceIndicator'],
  ] as const) {
    ensure(dataset, text(tag, vr), `${what} (empty)`);
  }
  for (const [tag, what] of [
    [0x0040_0513, 'IssuerOfTheContainerIdentifierSequence'],
    [0x0040_0555, 'AcquisitionContextSequence'],
  ] as const) {
    ensure(dataset, sequence(tag), `${what} (empty)`);
  }
  ensure(dataset, text(0x0008_0060, 'CS', 'SM'), 'Modality SM');
  ensure(dataset, text(0x0008_0023, 'DA', DUMMY_DATE), `ContentDate ${DUMMY_DATE}`);
  ensure(dataset, text(0x0008_0033, 'TM', DUMMY_TIME), `ContentTime ${DUMMY_TIME}`);
  ensure(dataset, text(0x0008_002a, 'DT', DUMMY_DATETIME), `AcquisitionDateTime ${DUMMY_DATETIME}`);
  ensure(dataset, text(0x0008_0070, 'LO', 'UNKNOWN'), 'Manufacturer UNKNOWN');
  ensure(dataset, text(0x0008_1090, 'LO', 'UNKNOWN'), 'ManufacturerModelName UNKNOWN');
  ensure(dataset, text(0x0018_1020, 'LO', 'UNKNOWN'), 'SoftwareVersions UNKNOWN');
  ensure(dataset, text(0x0018_1000, 'LO', DUMMY_SERIAL), `DeviceSerialNumber ${DUMMY_SERIAL}`);
  ensure(dataset, text(0x0028_0301, 'CS', 'NO'), 'BurnedInAnnotation NO');
  ensure(dataset, text(0x0048_0010, 'CS', 'NO'), 'SpecimenLabelInImage NO');
  ensure(dataset, text(0x0048_0011, 'CS', 'AUTO'), 'FocusMethod AUTO');
  ensure(dataset, text(0x0048_0012, 'CS', 'NO'), 'ExtendedDepthOfField NO');
  ensure(dataset, text(0x0008_9206, 'CS', 'VOLUME'), 'VolumetricProperties VOLUME');
  ensure(dataset, text(0x0048_0102, 'DS', '0', '-1', '0', '-1', '0', '0'), 'ImageOrientationSlide');
  ensure(dataset, numbers(0x0048_0303, 'UL', 1), 'TotalPixelMatrixFocalPlanes 1');
  ensure(dataset, sequence(0x0048_0008, [text(0x0040_072a, 'DS', '0'), text(0x0040_073a, 'DS', '0')]), 'TotalPixelMatrixOriginSequence (0, 0)');
  ensure(dataset, sequence(0x0040_0518, code('433466003', 'SCT', 'Microscope slide')), 'ContainerTypeCodeSequence');

  // Specimen Description: type 1, each item named after the slide.
  let specimens = dataset.find((e) => e.tag === 0x0040_0560);
  if (!specimens || (specimens.value as Dataset[]).length === 0) {
    specimens = sequence(0x0040_0560, []);
    set(specimens);
    rewrite.note('completed', 'SpecimenDescriptionSequence (one specimen, named after the slide)');
  }
  (specimens.value as Dataset[]).forEach((item, i) => {
    const name = i === 0 ? rewrite.name : `${rewrite.name}-${i + 1}`;
    const at = item.findIndex((e) => e.tag === 0x0040_0551);
    if (at >= 0) item.splice(at, 1);
    item.push(text(0x0040_0551, 'LO', name));
    ensure(item, text(0x0040_0554, 'UI', fresh(`specimen ${i}`)), 'SpecimenUID (new)');
    ensure(item, sequence(0x0040_0562), 'IssuerOfTheSpecimenIdentifierSequence (empty)');
    ensure(item, sequence(0x0040_0610), 'SpecimenPreparationSequence (empty)');
  });

  // Optical paths: type 1; colour images need an ICC profile in each.
  let paths = dataset.find((e) => e.tag === 0x0048_0105);
  if (!paths || (paths.value as Dataset[]).length === 0) {
    paths = sequence(0x0048_0105, [text(0x0048_0106, 'SH', base.opticalPaths[0]?.id ?? '1')]);
    set(paths);
    rewrite.note('completed', 'OpticalPathSequence (one brightfield path)');
  }
  const colour = photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2';
  for (const item of paths.value as Dataset[]) {
    ensure(item, sequence(0x0022_0016, code('111744', 'DCM', 'Brightfield illumination')), 'IlluminationTypeCodeSequence (brightfield)');
    const wavelength = item.find((e) => e.tag === 0x0022_0055);
    if (wavelength && Buffer.isBuffer(wavelength.value) && wavelength.value.length >= 4 && !(wavelength.value.readFloatLE(0) > 0)) {
      // A wavelength of 0 says nothing; the illumination colour stands for it.
      item.splice(item.indexOf(wavelength), 1);
      rewrite.note('removed', 'IlluminationWaveLength of 0');
    }
    if (!item.some((e) => e.tag === 0x0022_0055)) ensure(item, sequence(0x0048_0108, code('414298005', 'SCT', 'Full Spectrum')), 'IlluminationColorCodeSequence (full spectrum)');
    if (!colour && !item.some((e) => e.tag === 0x0048_0120)) {
      // A monochrome path without a palette (its Palette Color Lookup Table is not kept) may not carry an ICC profile.
      for (const tag of [0x0028_2000, 0x0028_2002]) {
        const at = item.findIndex((e) => e.tag === tag);
        if (at >= 0) {
          item.splice(at, 1);
          rewrite.note('removed', `${keyword(tag)} of a monochrome optical path`);
        }
      }
    }
    if (colour && !item.some((e) => e.tag === 0x0028_2000)) {
      item.push({ tag: 0x0028_2000, vr: 'OB', value: await srgbProfile() });
      ensure(item, text(0x0028_2002, 'CS', 'SRGB'), 'ColorSpace SRGB');
      rewrite.note('completed', 'ICCProfile (sRGB)');
    }
  }
  ensure(dataset, numbers(0x0048_0302, 'UL', (paths.value as Dataset[]).length), 'NumberOfOpticalPaths');
  if (!colour) {
    // One sample per pixel: Planar Configuration must be absent; the WSI module asks for an identity rescale and LUT shape.
    const planar = dataset.findIndex((e) => e.tag === 0x0028_0006);
    if (planar >= 0 && base.samplesPerPixel === 1) {
      dataset.splice(planar, 1);
      rewrite.note('removed', 'PlanarConfiguration of a monochrome image');
    }
    ensure(dataset, text(0x0028_1052, 'DS', '0'), 'RescaleIntercept 0');
    ensure(dataset, text(0x0028_1053, 'DS', '1'), 'RescaleSlope 1');
    ensure(dataset, text(0x0028_1054, 'LO', 'US'), 'RescaleType US');
    ensure(dataset, text(0x2050_0020, 'CS', photometric === 'MONOCHROME1' ? 'INVERSE' : 'IDENTITY'), 'PresentationLUTShape');
  }

  // Shared Functional Groups: pixel measures and the frame type.
  let shared = dataset.find((e) => e.tag === 0x5200_9229);
  if (!shared || (shared.value as Dataset[]).length === 0) {
    shared = sequence(0x5200_9229, []);
    set(shared);
  }
  const group = (shared.value as Dataset[])[0]!;
  const imageType = (dataset.find((e) => e.tag === 0x0008_0008)?.value as string[] | Buffer | undefined) ?? [];
  const frameType = Buffer.isBuffer(imageType) ? textValue(imageType).split('\\') : [...imageType];
  ensure(group, sequence(0x0040_0710, [text(0x0008_9007, 'CS', ...frameType)]), 'WholeSlideMicroscopyImageFrameTypeSequence (the Image Type)');
  for (const measures of (group.find((e) => e.tag === 0x0028_9110)?.value as Dataset[] | undefined) ?? []) {
    ensure(measures, text(0x0018_0050, 'DS', '0.001'), 'SliceThickness 0.001 mm');
  }
  if (base.pixelSpacing) {
    ensure(group, sequence(0x0028_9110, [text(0x0028_0030, 'DS', ...base.pixelSpacing.map(decimalString)), text(0x0018_0050, 'DS', '0.001')]), 'PixelMeasuresSequence');
    const spacing = base.pixelSpacing;
    ensure(dataset, { tag: 0x0048_0001, vr: 'FL', value: [level.width * spacing[1]] }, 'ImagedVolumeWidth');
    ensure(dataset, { tag: 0x0048_0002, vr: 'FL', value: [level.height * spacing[0]] }, 'ImagedVolumeHeight');
  }
  ensure(dataset, { tag: 0x0048_0003, vr: 'FL', value: [1] }, 'ImagedVolumeDepth 1 µm');
  commonInstanceReference(dataset);
  if (base.organization === 'TILED_FULL' && (paths.value as Dataset[]).length === 1) {
    const id = textOf((paths.value as Dataset[])[0]!, 0x0048_0106) ?? '1';
    ensure(group, sequence(0x0048_0207, [text(0x0048_0106, 'SH', id)]), 'OpticalPathIdentificationSequence');
  }
  return dataset;
}

/**
 * The Common Instance Reference module: an instance that references others
 * of its series (Referenced Image, Source Image sequences, …) lists them in
 * the Referenced Series Sequence (PS3.3 C.12.2), rebuilt here from the
 * references that remain after those to instances not published are dropped.
 */
function commonInstanceReference(dataset: Dataset): void {
  const at = dataset.findIndex((e) => e.tag === 0x0008_1115);
  if (at >= 0) dataset.splice(at, 1);
  const pairs = new Map<string, string>();
  const walk = (ds: Dataset) => {
    const instance = ds.find((e) => e.tag === 0x0008_1155);
    const sopClass = ds.find((e) => e.tag === 0x0008_1150);
    if (instance && sopClass) pairs.set((instance.value as string[])[0]!, (sopClass.value as string[])[0]!);
    for (const e of ds) if (e.vr === 'SQ') for (const item of e.value as Dataset[]) walk(item);
  };
  walk(dataset);
  if (pairs.size === 0) return;
  const series = dataset.find((e) => e.tag === 0x0020_000e)!;
  dataset.push(
    sequence(0x0008_1115, [
      text(0x0020_000e, 'UI', ...(series.value as string[])),
      sequence(0x0008_114a, ...[...pairs].map(([instance, sopClass]) => [text(0x0008_1150, 'UI', sopClass), text(0x0008_1155, 'UI', instance)])),
    ]),
  );
}

/** The attributes of `elements` by the table: kept, replaced, emptied, dummied or removed (and their values noted). */
function transform(rewrite: Rewrite, elements: Raw[]): Dataset {
  const out: Dataset = [];
  for (const raw of elements) {
    const group = raw.tag >>> 16;
    if (group === 0x0002) continue;
    if (group % 2 === 1) {
      rewrite.report.privateAttributesRemoved++;
      rewrite.collect(raw, `private attribute ${hexTag(raw.tag)}`, false);
      continue;
    }
    const rule = DICOM_RULES.get(raw.tag);
    const name = keyword(raw.tag);
    if (!rule) {
      rewrite.note('removed', name);
      collectRemoved(rewrite, raw);
      continue;
    }
    const vr = (raw.vr && raw.vr !== 'UN' ? raw.vr : rule.vr) as Vr;
    switch (rule.action) {
      case 'keep':
        if (raw.items) {
          const items = raw.items.filter((item) => {
            const ref = item.find((e) => e.tag === 0x0008_1155);
            if (ref?.value && !rewrite.published.has(textValue(ref.value))) {
              rewrite.report.referencesDropped++;
              for (const child of item) collectRemoved(rewrite, child);
              return false;
            }
            return true;
          });
          if (items.length === 0 && raw.items.length > 0) continue;
          out.push(sequence(raw.tag, ...items.map((item) => transform(rewrite, item))));
        } else {
          out.push({ tag: raw.tag, vr, value: raw.value ?? Buffer.alloc(0) });
        }
        break;
      case 'uid': {
        const values = raw.value ? textValue(raw.value).split('\\').map((v) => v.trim()) : [];
        // A frame of reference is another thing than the series, even where a writer gave both one UID.
        const role = raw.tag === 0x0020_0052 ? 'frame of reference ' : '';
        out.push(text(raw.tag, 'UI', ...values.map((v) => (v === '' || isStandardUid(v) ? v : rewrite.uid(v, role)))));
        break;
      }
      case 'name':
        rewrite.collect(raw, name, true);
        rewrite.note('renamed', name);
        out.push(text(raw.tag, rule.vr as Vr, rewrite.name));
        break;
      case 'empty':
        rewrite.collect(raw, name, true);
        rewrite.note('emptied', name);
        out.push(text(raw.tag, rule.vr as Vr));
        break;
      case 'dummy':
        rewrite.collect(raw, name, true);
        rewrite.note('dummies', `${name} ${rule.value!}`);
        out.push(text(raw.tag, rule.vr as Vr, rule.value!));
        break;
      case 'empty-sequence':
        rewrite.collect(raw, name, true);
        if (raw.items?.length) rewrite.note('emptied', name);
        out.push(sequence(raw.tag));
        break;
    }
  }
  return out;
}

function textOf(ds: Dataset, tag: number): string | undefined {
  const e = ds.find((x) => x.tag === tag);
  if (!e) return undefined;
  if (Buffer.isBuffer(e.value)) return textValue(e.value);
  return (e.value as string[]).join('\\');
}

const text0 = (ds: Dataset, tag: number) => textOf(ds, tag);

/** Every text value the copy keeps, split at backslashes. */
function keptTexts(ds: Dataset, into: Set<string>): void {
  for (const e of ds) {
    if (e.vr === 'SQ') for (const item of e.value as Dataset[]) keptTexts(item, into);
    else if (TEXT_VRS.has(e.vr)) {
      const value = Buffer.isBuffer(e.value) ? textValue(e.value) : (e.value as string[]).join('\\');
      for (const v of value.split('\\')) if (v.trim()) into.add(v.trim());
    }
  }
}

/** The values to search the copy for: long enough not to occur by chance, and not a value the copy keeps on purpose (a private copy of the manufacturer's name). */
function identifierSet(rewrite: Rewrite, kept: Set<string>): IdentifierSet {
  const scanned = new Map<string, IdentifyingValue>();
  const tooShort = new Set<string>();
  for (const item of rewrite.found) {
    const value = item.value.trim();
    if (!item.strict && kept.has(value)) continue;
    if (value.length >= MIN_SCANNED_LENGTH) {
      if (!scanned.has(value)) scanned.set(value, { source: item.source, value });
    } else if (value.length > 0) {
      tooShort.add(item.source);
    }
  }
  return { scanned: [...scanned.values()], tooShort: [...tooShort] };
}

