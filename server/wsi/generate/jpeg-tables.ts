/** JPEG for TIFF: tiles encoded with shared tables, split into JPEGTables and abbreviated streams (TIFF Technical Note 2). */
import sharp from 'sharp';

export interface AbbreviatedJpeg {
  /** SOI, the DQT and DHT segments, EOI: the JPEGTables tag. */
  tables: Buffer;
  /** SOI, SOF, SOS, entropy-coded data, EOI: one tile or strip. */
  stream: Buffer;
}

/** Split a complete JPEG into its tables and an abbreviated stream; APPn and COM are dropped. */
export function abbreviateJpeg(jpeg: Buffer): AbbreviatedJpeg {
  if (jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG stream');
  const tables: Buffer[] = [];
  const kept: Buffer[] = [];
  let i = 2;
  for (;;) {
    if (i + 4 > jpeg.length || jpeg[i] !== 0xff) throw new Error('malformed JPEG stream');
    const marker = jpeg[i + 1]!;
    if (marker === 0xda) break;
    const end = i + 2 + jpeg.readUInt16BE(i + 2);
    const segment = jpeg.subarray(i, end);
    if (marker === 0xdb || marker === 0xc4) tables.push(segment);
    else if (!(marker >= 0xe0 && marker <= 0xef) && marker !== 0xfe) kept.push(segment);
    i = end;
  }
  const SOI = Buffer.from([0xff, 0xd8]);
  const EOI = Buffer.from([0xff, 0xd9]);
  return { tables: Buffer.concat([SOI, ...tables, EOI]), stream: Buffer.concat([SOI, ...kept, jpeg.subarray(i)]) };
}

export async function encodeJpeg(raw: Buffer, width: number, height: number, quality: number): Promise<AbbreviatedJpeg> {
  const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality, optimiseCoding: false, chromaSubsampling: '4:2:0' })
    .toBuffer();
  return abbreviateJpeg(jpeg);
}
