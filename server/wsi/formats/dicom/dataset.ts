import dicomParser from 'dicom-parser';
import { corrupt, WsiError } from '../../errors.js';
import type { RandomAccessFile } from '../../tiff/file.js';
import { describeSyntax } from './syntax.js';
import { elementHeader, hexTag, NeedMoreBytes, skipElement, Tags, UNDEFINED_LENGTH, type Bytes } from './elements.js';

/** The first read of an instance; grown by doubling while its header needs more. */
const FIRST_READ = 256 * 1024;
/** No real header (everything before the Pixel Data) is larger; a larger one means a damaged or hostile file. */
const MAX_HEADER_BYTES = 256 * 1024 * 1024;

export interface ValueRange {
  /** File offset of the value. */
  offset: number;
  /** Its length in bytes, or UNDEFINED_LENGTH. */
  length: number;
}

/** What opening an instance reads: its header, parsed, and where the rest lies. */
export interface InstanceHeader {
  path: string;
  transferSyntax: string;
  explicit: boolean;
  /** Every element before the Per-Frame Functional Groups and the Pixel Data, parsed by dicom-parser (until released). */
  dataSet?: dicomParser.DataSet;
  /** The bytes read from the start of the file (they hold the Per-Frame Functional Groups, when present; empty once released). */
  bytes: Bytes;
  perFrame?: ValueRange;
  extendedOffsetTable?: ValueRange;
  extendedOffsetTableLengths?: ValueRange;
  /** Undefined for an object without pixels (refused by the caller, which first says what the object is). */
  pixelData?: ValueRange;
}

/** Whether a file starts as a DICOM Part 10 file does: a 128-byte preamble, then "DICM". */
export async function isDicomFile(file: RandomAccessFile): Promise<boolean> {
  if (file.size < 132) return false;
  return (await file.read(128, 4, 'the DICOM prefix')).toString('latin1') === 'DICM';
}

/**
 * Read an instance's header: the File Meta Information and every element up
 * to the Pixel Data, without the pixels. Only the header is parsed with
 * dicom-parser; the Per-Frame Functional Groups Sequence (a hundred thousand
 * items in a large TILED_SPARSE instance) is only located here.
 */
export async function readInstanceHeader(file: RandomAccessFile): Promise<InstanceHeader> {
  if (!(await isDicomFile(file))) throw new WsiError('unsupported_format', `${file.path}: not a DICOM file (no "DICM" after the 128-byte preamble)`);
  let bytes: Bytes = { buffer: await file.read(0, Math.min(file.size, FIRST_READ), 'the DICOM header'), base: 0 };
  for (;;) {
    try {
      return locate(file.path, bytes, file.size);
    } catch (error) {
      if (!(error instanceof NeedMoreBytes)) throw error;
      if (bytes.buffer.length >= file.size) throw corrupt(`${file.path}: the DICOM header runs past the end of the file (${file.size} bytes); the file is truncated`);
      if (bytes.buffer.length >= MAX_HEADER_BYTES) throw corrupt(`${file.path}: the DICOM header is larger than ${MAX_HEADER_BYTES} bytes`);
      const size = Math.min(file.size, MAX_HEADER_BYTES, Math.max(bytes.buffer.length * 2, error.upTo + FIRST_READ));
      const more = await file.read(bytes.buffer.length, size - bytes.buffer.length, 'the DICOM header');
      bytes = { buffer: Buffer.concat([bytes.buffer, more]), base: 0 };
    }
  }
}

function locate(path: string, bytes: Bytes, fileSize: number): InstanceHeader {
  // File Meta Information: explicit VR little endian, group 0002 (PS3.10 §7.1).
  let at = 132;
  let transferSyntax: string | undefined;
  for (;;) {
    const h = structural(path, () => elementHeader(bytes, at, true));
    if (h.tag >>> 16 !== 0x0002) break;
    if (h.length === UNDEFINED_LENGTH) throw corrupt(`${path}: File Meta element ${hexTag(h.tag)} has an undefined length`);
    if (h.tag === 0x00020010) transferSyntax = bytes.buffer.toString('latin1', h.value, h.value + h.length).replace(/[\0 ]+$/, '');
    at = h.value + h.length;
    if (at > bytes.buffer.length) throw new NeedMoreBytes(at);
  }
  if (!transferSyntax) throw corrupt(`${path}: the File Meta Information names no Transfer Syntax UID`);
  if (transferSyntax === '1.2.840.10008.1.2.2' || transferSyntax === '1.2.840.10008.1.2.1.99') {
    // The data set itself is big-endian or deflated: not even its header can be walked.
    throw new WsiError('unsupported_compression', `${path}: transfer syntax ${describeSyntax(transferSyntax)} is not supported`);
  }
  const explicit = transferSyntax !== '1.2.840.10008.1.2';

  let perFrame: ValueRange | undefined;
  let extendedOffsetTable: ValueRange | undefined;
  let extendedOffsetTableLengths: ValueRange | undefined;
  let headerEnd: number | undefined;
  for (;;) {
    if (at >= fileSize) {
      // No pixels: a DICOM object of another kind, or a damaged one.
      const dataSet = parseHeader(path, bytes.buffer.subarray(0, headerEnd ?? fileSize));
      return { path, transferSyntax, explicit, dataSet, bytes, perFrame, extendedOffsetTable, extendedOffsetTableLengths };
    }
    const h = structural(path, () => elementHeader(bytes, at, explicit));
    const range = { offset: h.value, length: h.length };
    if (h.tag === Tags.PixelData) {
      headerEnd ??= at;
      if (h.length !== UNDEFINED_LENGTH && h.value + h.length > fileSize) {
        throw corrupt(`${path}: the Pixel Data (${h.length} bytes from offset ${h.value}) runs past the end of the file (${fileSize} bytes); frames are missing`);
      }
      const dataSet = parseHeader(path, bytes.buffer.subarray(0, headerEnd));
      return { path, transferSyntax, explicit, dataSet, bytes, perFrame, extendedOffsetTable, extendedOffsetTableLengths, pixelData: range };
    }
    if (h.tag === Tags.PerFrameFunctionalGroups) {
      perFrame = range;
      headerEnd ??= at;
    } else if (h.tag === Tags.ExtendedOffsetTable || h.tag === Tags.ExtendedOffsetTableLengths) {
      // Left out of what dicom-parser reads: it does not know their VR (OV) and the reader reads them itself.
      headerEnd ??= at;
      if (h.tag === Tags.ExtendedOffsetTable) extendedOffsetTable = range;
      else extendedOffsetTableLengths = range;
    }
    else if (h.tag > Tags.PixelData) throw corrupt(`${path}: no Pixel Data element (found ${hexTag(h.tag)} where it should be)`);
    at = structural(path, () => skipElement(bytes, h, explicit));
    if (at <= h.value - 1 || at > fileSize) throw corrupt(`${path}: element ${hexTag(h.tag)} runs past the end of the file`);
  }
}

/** Structural failures of the walk are the file's fault; running out of bytes read is not. */
function structural<T>(path: string, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof NeedMoreBytes || error instanceof WsiError) throw error;
    throw corrupt(`${path}: damaged DICOM data set (${(error as Error).message})`, error);
  }
}

function parseHeader(path: string, header: Buffer): dicomParser.DataSet {
  try {
    // dicom-parser reads the preamble and File Meta itself, then the data set up to the end of the bytes given.
    return dicomParser.parseDicom(new Uint8Array(header.buffer, header.byteOffset, header.length));
  } catch (error) {
    const reason = typeof error === 'string' ? error : error instanceof Error ? error.message : String((error as { exception?: unknown }).exception ?? error);
    // dicom-parser throws plain objects holding its parser state: only the reason is kept.
    throw corrupt(`${path}: the DICOM header cannot be parsed (${reason})`);
  }
}

/** Let go of the header's bytes and parsed elements once the series is open: an open slide keeps only what it reads frames with. */
export function releaseHeader(header: InstanceHeader): void {
  header.bytes = { buffer: Buffer.alloc(0), base: 0 };
  header.dataSet = undefined;
}
