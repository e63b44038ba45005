/**
 * A small baseline JPEG encoder (ITU T.81) for the NDPI generator: YCbCr
 * without subsampling, the standard Huffman tables of Annex K, IJG's quality scaling, and a
 * restart marker after every `restartInterval` MCUs. sharp's encoder cannot
 * put restart markers in, nor write an image wider than the 65,535 pixels a
 * frame header holds, and NDPI levels need both: the generator encodes each
 * restart interval here and lays them out into one strip.
 *
 * 4:4:4, as NanoZoomer writes its levels: OpenSlide 3.4.1 decodes a restart
 * interval with the strip's own frame header, and with 4:2:0 libjpeg's
 * smooth upsampling would read into the next row of MCUs for context.
 */

/** Zig-zag order: the natural index of the k-th coefficient. */
const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
  15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
];

const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77,
  24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const CHROMA_QUANT = [
  17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
  99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
];

// Annex K.3: code counts per length (1–16) and the symbols.
const DC_LUMA_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_CHROMA_BITS = [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0];
const DC_VALUES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_LUMA_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_LUMA_VALUES = [
  0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1,
  0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
  0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75,
  0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
  0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8,
  0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];
const AC_CHROMA_BITS = [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77];
const AC_CHROMA_VALUES = [
  0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09,
  0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
  0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74,
  0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
  0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6,
  0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

/** AAN's scale factors, folded into the quantisation divisors. */
const AAN = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

/** The MCU of 4:4:4: 8×8 pixels, one block of each component. */
export const MCU_SIDE = 8;

interface HuffmanTable {
  codes: Uint16Array;
  lengths: Uint8Array;
}

function huffmanTable(bits: number[], values: number[]): HuffmanTable {
  const codes = new Uint16Array(256);
  const lengths = new Uint8Array(256);
  let code = 0;
  let k = 0;
  for (let length = 1; length <= 16; length++) {
    for (let i = 0; i < bits[length - 1]!; i++) {
      codes[values[k]!] = code;
      lengths[values[k]!] = length;
      code++;
      k++;
    }
    code <<= 1;
  }
  return { codes, lengths };
}

function scaledQuant(base: number[], quality: number): number[] {
  const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - quality * 2;
  return base.map((q) => Math.min(255, Math.max(1, Math.floor((q * scale + 50) / 100))));
}

/** Writes entropy-coded bits with 0xFF stuffing into a growing buffer. */
class BitWriter {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private length = 0;
  private bits = 0;
  private count = 0;

  write(value: number, size: number): void {
    this.bits = (this.bits << size) | (value & ((1 << size) - 1));
    this.count += size;
    while (this.count >= 8) {
      this.count -= 8;
      this.byte((this.bits >>> this.count) & 0xff);
    }
    this.bits &= (1 << this.count) - 1;
  }

  /** Pad the last byte with ones (T.81 F.1.2.3) and hand the bytes over. */
  finish(): Buffer {
    if (this.count > 0) this.write(0x7f, 8 - this.count);
    const out = Buffer.from(this.buffer.subarray(0, this.length));
    this.length = 0;
    this.bits = 0;
    this.count = 0;
    return out;
  }

  private byte(value: number): void {
    if (this.length + 2 > this.buffer.length) {
      const bigger = Buffer.allocUnsafe(this.buffer.length * 2);
      this.buffer.copy(bigger, 0, 0, this.length);
      this.buffer = bigger;
    }
    this.buffer[this.length++] = value;
    if (value === 0xff) this.buffer[this.length++] = 0;
  }
}

export class BaselineJpegEncoder {
  private readonly lumaQuant: number[];
  private readonly chromaQuant: number[];
  /** Per natural index: 1 / (quantiser × AAN scale × 8). */
  private readonly lumaDivisors = new Float32Array(64);
  private readonly chromaDivisors = new Float32Array(64);
  private readonly dcLuma = huffmanTable(DC_LUMA_BITS, DC_VALUES);
  private readonly dcChroma = huffmanTable(DC_CHROMA_BITS, DC_VALUES);
  private readonly acLuma = huffmanTable(AC_LUMA_BITS, AC_LUMA_VALUES);
  private readonly acChroma = huffmanTable(AC_CHROMA_BITS, AC_CHROMA_VALUES);
  private readonly writer = new BitWriter();
  private readonly quantised = new Int32Array(64);
  private readonly y = new Float32Array(64);
  private readonly cb = new Float32Array(64);
  private readonly cr = new Float32Array(64);

  constructor(quality: number) {
    this.lumaQuant = scaledQuant(LUMA_QUANT, quality);
    this.chromaQuant = scaledQuant(CHROMA_QUANT, quality);
    for (let row = 0; row < 8; row++) {
      for (let col = 0; col < 8; col++) {
        const i = row * 8 + col;
        this.lumaDivisors[i] = 1 / (this.lumaQuant[i]! * AAN[row]! * AAN[col]! * 8);
        this.chromaDivisors[i] = 1 / (this.chromaQuant[i]! * AAN[row]! * AAN[col]! * 8);
      }
    }
  }

  /**
   * SOI, quantisation tables, the frame header (a side past 65,535 is
   * written as 0, as NDPI does), Huffman tables, DRI and the scan header:
   * every byte before the first interval's data.
   */
  header(width: number, height: number, restartInterval: number): Buffer {
    const parts: Buffer[] = [Buffer.from([0xff, 0xd8])];
    const dqt = Buffer.alloc(4 + 2 * 65);
    dqt.writeUInt16BE(0xffdb, 0);
    dqt.writeUInt16BE(2 + 2 * 65, 2);
    [this.lumaQuant, this.chromaQuant].forEach((table, t) => {
      dqt[4 + t * 65] = t;
      for (let k = 0; k < 64; k++) dqt[5 + t * 65 + k] = table[ZIGZAG[k]!]!;
    });
    parts.push(dqt);
    const side = (value: number) => (value > 0xffff ? 0 : value);
    const sof = Buffer.from([0xff, 0xc0, 0, 17, 8, 0, 0, 0, 0, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
    sof.writeUInt16BE(side(height), 5);
    sof.writeUInt16BE(side(width), 7);
    parts.push(sof);
    for (const [klass, id, bits, values] of [
      [0, 0, DC_LUMA_BITS, DC_VALUES],
      [1, 0, AC_LUMA_BITS, AC_LUMA_VALUES],
      [0, 1, DC_CHROMA_BITS, DC_VALUES],
      [1, 1, AC_CHROMA_BITS, AC_CHROMA_VALUES],
    ] as const) {
      const segment = Buffer.alloc(4 + 1 + 16 + values.length);
      segment.writeUInt16BE(0xffc4, 0);
      segment.writeUInt16BE(segment.length - 2, 2);
      segment[4] = (klass << 4) | id;
      bits.forEach((b, i) => (segment[5 + i] = b));
      values.forEach((v, i) => (segment[21 + i] = v));
      parts.push(segment);
    }
    if (restartInterval > 0) parts.push(Buffer.from([0xff, 0xdd, 0, 4, restartInterval >> 8, restartInterval & 0xff]));
    parts.push(Buffer.from([0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]));
    return Buffer.concat(parts);
  }

  /**
   * One restart interval: the MCUs of an 8-row band of RGB pixels (`stride`
   * bytes a row) from column `x` for `mcus` MCUs, with fresh DC predictions,
   * padded to a whole byte. The caller pads the band to whole MCUs.
   */
  interval(band: Buffer, stride: number, x: number, mcus: number): Buffer {
    const dc = [0, 0, 0];
    for (let m = 0; m < mcus; m++) {
      this.loadMcu(band, stride, x + m * MCU_SIDE);
      dc[0] = this.encodeBlock(this.y, this.lumaDivisors, dc[0]!, this.dcLuma, this.acLuma);
      dc[1] = this.encodeBlock(this.cb, this.chromaDivisors, dc[1]!, this.dcChroma, this.acChroma);
      dc[2] = this.encodeBlock(this.cr, this.chromaDivisors, dc[2]!, this.dcChroma, this.acChroma);
    }
    return this.writer.finish();
  }

  /** An 8×8 MCU as level-shifted Y, Cb and Cr. */
  private loadMcu(band: Buffer, stride: number, x: number): void {
    for (let r = 0; r < 8; r++) {
      let at = r * stride + x * 3;
      for (let c = 0; c < 8; c++, at += 3) {
        const R = band[at]!;
        const G = band[at + 1]!;
        const B = band[at + 2]!;
        const k = r * 8 + c;
        this.y[k] = 0.299 * R + 0.587 * G + 0.114 * B - 128;
        this.cb[k] = -0.168736 * R - 0.331264 * G + 0.5 * B;
        this.cr[k] = 0.5 * R - 0.418688 * G - 0.081312 * B;
      }
    }
  }

  /** Forward DCT (AAN), quantisation and Huffman coding of one block; returns its DC for the next prediction. */
  private encodeBlock(data: Float32Array, divisors: Float32Array, previousDc: number, dcTable: HuffmanTable, acTable: HuffmanTable): number {
    fdct(data);
    const q = this.quantised;
    for (let k = 0; k < 64; k++) {
      const i = ZIGZAG[k]!;
      q[k] = Math.round(data[i]! * divisors[i]!);
    }
    const w = this.writer;
    const diff = q[0]! - previousDc;
    const dcSize = bitSize(diff);
    w.write(dcTable.codes[dcSize]!, dcTable.lengths[dcSize]!);
    if (dcSize > 0) w.write(diff < 0 ? diff - 1 : diff, dcSize);
    let last = 63;
    while (last > 0 && q[last] === 0) last--;
    let run = 0;
    for (let k = 1; k <= last; k++) {
      const value = q[k]!;
      if (value === 0) {
        run++;
        continue;
      }
      while (run >= 16) {
        w.write(acTable.codes[0xf0]!, acTable.lengths[0xf0]!);
        run -= 16;
      }
      const size = bitSize(value);
      const symbol = (run << 4) | size;
      w.write(acTable.codes[symbol]!, acTable.lengths[symbol]!);
      w.write(value < 0 ? value - 1 : value, size);
      run = 0;
    }
    if (last < 63) w.write(acTable.codes[0]!, acTable.lengths[0]!);
    return q[0]!;
  }
}

function bitSize(value: number): number {
  let magnitude = Math.abs(value);
  let size = 0;
  while (magnitude > 0) {
    size++;
    magnitude >>= 1;
  }
  return size;
}

/** In-place forward DCT of an 8×8 block (the float AAN algorithm; outputs scaled by 8 × AAN factors). */
function fdct(d: Float32Array): void {
  for (let pass = 0; pass < 2; pass++) {
    const step = pass === 0 ? 1 : 8;
    const stride = pass === 0 ? 8 : 1;
    for (let line = 0; line < 8; line++) {
      const o = line * stride;
      const d0 = d[o]!;
      const d1 = d[o + step]!;
      const d2 = d[o + 2 * step]!;
      const d3 = d[o + 3 * step]!;
      const d4 = d[o + 4 * step]!;
      const d5 = d[o + 5 * step]!;
      const d6 = d[o + 6 * step]!;
      const d7 = d[o + 7 * step]!;
      const tmp0 = d0 + d7;
      const tmp7 = d0 - d7;
      const tmp1 = d1 + d6;
      const tmp6 = d1 - d6;
      const tmp2 = d2 + d5;
      const tmp5 = d2 - d5;
      const tmp3 = d3 + d4;
      const tmp4 = d3 - d4;
      let tmp10 = tmp0 + tmp3;
      const tmp13 = tmp0 - tmp3;
      let tmp11 = tmp1 + tmp2;
      let tmp12 = tmp1 - tmp2;
      d[o] = tmp10 + tmp11;
      d[o + 4 * step] = tmp10 - tmp11;
      const z1 = (tmp12 + tmp13) * 0.707106781;
      d[o + 2 * step] = tmp13 + z1;
      d[o + 6 * step] = tmp13 - z1;
      tmp10 = tmp4 + tmp5;
      tmp11 = tmp5 + tmp6;
      tmp12 = tmp6 + tmp7;
      const z5 = (tmp10 - tmp12) * 0.382683433;
      const z2 = 0.5411961 * tmp10 + z5;
      const z4 = 1.306562965 * tmp12 + z5;
      const z3 = tmp11 * 0.707106781;
      const z11 = tmp7 + z3;
      const z13 = tmp7 - z3;
      d[o + 5 * step] = z13 + z2;
      d[o + 3 * step] = z13 - z2;
      d[o + step] = z11 + z4;
      d[o + 7 * step] = z11 - z4;
    }
  }
}
