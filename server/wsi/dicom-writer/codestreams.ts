/**
 * What the writer needs to know of a stored tile's codestream without
 * decoding it (the JPEG frame header, the JPEG 2000 SIZ and COD segments),
 * and a background frame made without an encoder.
 */
import { WsiError } from '../errors.js';

export interface JpegFrameInfo {
  /** SOF marker: 0xc0 baseline, 0xc1 extended sequential, … */
  process: number;
  width: number;
  height: number;
  bits: number;
  /** Per component: horizontal and vertical sampling factors. */
  sampling: [h: number, v: number][];
  /** The Adobe APP14 marker's colour transform (0 none, 1 YCbCr), where the stream has one. */
  adobeTransform?: number;
}

/** The frame header of a complete JPEG (tables already spliced in); undefined when it has none before the first scan. */
export function jpegFrameInfo(jpeg: Buffer): JpegFrameInfo | undefined {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return undefined;
  let i = 2;
  let adobeTransform: number | undefined;
  while (i + 4 <= jpeg.length) {
    if (jpeg[i] !== 0xff) return undefined;
    const marker = jpeg[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return undefined;
    const length = jpeg.readUInt16BE(i + 2);
    if (marker === 0xee && length >= 14 && jpeg.toString('latin1', i + 4, i + 9) === 'Adobe') adobeTransform = jpeg[i + 15];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 10 > jpeg.length) return undefined;
      const count = jpeg[i + 9]!;
      if (i + 10 + 3 * count > jpeg.length) return undefined;
      const sampling: [number, number][] = [];
      for (let c = 0; c < count; c++) {
        const factors = jpeg[i + 11 + 3 * c]!;
        sampling.push([factors >> 4, factors & 0x0f]);
      }
      // The APP14 marker, where present, comes before the frame header.
      return { process: marker, bits: jpeg[i + 4]!, height: jpeg.readUInt16BE(i + 5), width: jpeg.readUInt16BE(i + 7), sampling, ...(adobeTransform === undefined ? {} : { adobeTransform }) };
    }
    i += 2 + length;
  }
  return undefined;
}

export interface Jpeg2000Info {
  width: number;
  height: number;
  components: number;
  /** COD: the multiple component transform is applied. */
  mct: boolean;
  /** COD: the 5-3 reversible wavelet (lossless-capable) rather than the 9-7 irreversible one. */
  reversible: boolean;
}

/** The image size, component count and coding style of a raw JPEG 2000 codestream (ISO 15444-1 A.5.1, A.6.1). */
export function jpeg2000Info(codestream: Buffer): Jpeg2000Info | undefined {
  if (codestream.length < 4 || codestream.readUInt16BE(0) !== 0xff4f || codestream.readUInt16BE(2) !== 0xff51) return undefined;
  let i = 2;
  let size: Omit<Jpeg2000Info, 'mct' | 'reversible'> | undefined;
  while (i + 4 <= codestream.length) {
    const marker = codestream.readUInt16BE(i);
    const length = codestream.readUInt16BE(i + 2);
    if (marker === 0xff51 && i + 40 <= codestream.length) {
      const xsiz = codestream.readUInt32BE(i + 6);
      const ysiz = codestream.readUInt32BE(i + 10);
      const xosiz = codestream.readUInt32BE(i + 14);
      const yosiz = codestream.readUInt32BE(i + 18);
      size = { width: xsiz - xosiz, height: ysiz - yosiz, components: codestream.readUInt16BE(i + 38) };
    } else if (marker === 0xff52 && size && i + 14 <= codestream.length) {
      return { ...size, mct: codestream[i + 8] === 1, reversible: codestream[i + 13] === 1 };
    } else if (marker === 0xff90 || marker === 0xff93) {
      return undefined;
    }
    i += 2 + length;
  }
  return undefined;
}

/**
 * A baseline JPEG of one colour, `width`×`height`, without an encoder: every
 * 8×8 block holds only its DC coefficient, so the stream is a few bytes per
 * block. Quantisation tables of ones make the DC exact, so it decodes to
 * exactly `colour`. `sampling` gives the luma factors (2,2 for 4:2:0, 2,1
 * for 4:2:2, 1,1 for 4:4:4); `rgb` writes the samples as RGB with an Adobe
 * marker (transform 0), as the copied Aperio RGB tiles are, instead of
 * converting them to YCbCr.
 */
export function uniformJpeg(width: number, height: number, colour: readonly [number, number, number], sampling: readonly [number, number], rgb: boolean): Buffer {
  const [h, v] = rgb ? [1, 1] : sampling;
  const [r, g, b] = colour;
  const samples = rgb
    ? [r, g, b]
    : [0.299 * r + 0.587 * g + 0.114 * b, -0.168736 * r - 0.331264 * g + 0.5 * b + 128, 0.5 * r - 0.418688 * g - 0.081312 * b + 128].map((s) => Math.min(255, Math.max(0, Math.round(s))));
  const parts: Buffer[] = [Buffer.from([0xff, 0xd8])];
  if (rgb) parts.push(Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]));
  const dqt = Buffer.alloc(4 + 65, 1);
  dqt.writeUInt16BE(0xffdb, 0);
  dqt.writeUInt16BE(2 + 65, 2);
  dqt[4] = 0;
  parts.push(dqt);
  const sof = Buffer.from([0xff, 0xc0, 0, 17, 8, 0, 0, 0, 0, 3, 1, (h << 4) | v, 0, 2, 0x11, 0, 3, 0x11, 0]);
  if (rgb) [sof[10], sof[13], sof[16]] = [0x52, 0x47, 0x42];
  sof.writeUInt16BE(height, 5);
  sof.writeUInt16BE(width, 7);
  parts.push(sof);
  parts.push(huffmanSegment(0x00, DC_BITS, DC_VALUES), huffmanSegment(0x10, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0x00]));
  const sos = Buffer.from([0xff, 0xda, 0, 12, 3, 1, 0, 2, 0, 3, 0, 0, 63, 0]);
  if (rgb) [sos[5], sos[7], sos[9]] = [0x52, 0x47, 0x42];
  parts.push(sos);

  const bits = new BitWriter();
  const mcusAcross = Math.ceil(width / (8 * h));
  const mcusDown = Math.ceil(height / (8 * v));
  const first = [true, true, true];
  for (let m = 0; m < mcusAcross * mcusDown; m++) {
    for (let c = 0; c < 3; c++) {
      const blocks = c === 0 ? h * v : 1;
      for (let k = 0; k < blocks; k++) {
        // DC = 8 × (sample − 128), exact with a quantiser of 1; later blocks repeat it (a difference of 0).
        const diff = first[c] ? 8 * (samples[c]! - 128) : 0;
        first[c] = false;
        const size = diff === 0 ? 0 : Math.floor(Math.log2(Math.abs(diff))) + 1;
        bits.write(DC_CODES.codes[size]!, DC_CODES.lengths[size]!);
        if (size > 0) bits.write(diff < 0 ? diff - 1 + (1 << size) : diff, size);
        // End of block: the only AC symbol, coded '0'.
        bits.write(0, 1);
      }
    }
  }
  parts.push(bits.finish(), Buffer.from([0xff, 0xd9]));
  return Buffer.concat(parts);
}

// The DC table of T.81 Annex K.3 (categories 0 to 11), and its canonical codes.
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const DC_CODES = canonicalCodes(DC_BITS, DC_VALUES);

function canonicalCodes(counts: number[], values: number[]): { codes: number[]; lengths: number[] } {
  const codes: number[] = [];
  const lengths: number[] = [];
  let code = 0;
  let k = 0;
  counts.forEach((count, i) => {
    for (let n = 0; n < count; n++, k++, code++) {
      codes[values[k]!] = code;
      lengths[values[k]!] = i + 1;
    }
    code <<= 1;
  });
  return { codes, lengths };
}

function huffmanSegment(classAndId: number, counts: number[], values: number[]): Buffer {
  const segment = Buffer.alloc(4 + 1 + 16 + values.length);
  segment.writeUInt16BE(0xffc4, 0);
  segment.writeUInt16BE(segment.length - 2, 2);
  segment[4] = classAndId;
  counts.forEach((c, i) => (segment[5 + i] = c));
  values.forEach((v, i) => (segment[21 + i] = v));
  return segment;
}

class BitWriter {
  private readonly bytes: number[] = [];
  private current = 0;
  private count = 0;

  write(value: number, length: number): void {
    for (let bit = length - 1; bit >= 0; bit--) {
      this.current = (this.current << 1) | ((value >> bit) & 1);
      if (++this.count === 8) this.flush();
    }
  }

  finish(): Buffer {
    if (this.count > 0) this.write(0x7f, 8 - this.count);
    return Buffer.from(this.bytes);
  }

  private flush(): void {
    this.bytes.push(this.current);
    if (this.current === 0xff) this.bytes.push(0);
    this.current = 0;
    this.count = 0;
  }
}

export function notFullTile(what: string, width: number, height: number, tileWidth: number, tileHeight: number): WsiError {
  return new WsiError('unsupported_format', `${what} is ${width}×${height}, not the full ${tileWidth}×${tileHeight} tile DICOM's TILED_FULL needs, and cannot be padded without re-encoding`);
}
