import { WsiError } from '../errors.js';

const SOI = Buffer.from([0xff, 0xd8]);
/**
 * Adobe APP14 with transform 0: "these three components are RGB, not YCbCr".
 * Aperio writes RGB samples without a colour transform and without any marker
 * saying so; decoders then assume YCbCr and the colours come out wrong.
 */
const ADOBE_RGB = Buffer.from([0xff, 0xee, 0x00, 0x0e, 0x41, 0x64, 0x6f, 0x62, 0x65, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00, 0x00]);

/**
 * A self-contained JPEG from a TIFF tile: the shared JPEGTables spliced in
 * after SOI, and the Adobe marker added when the TIFF says RGB. The result is
 * what the passthrough path sends to browsers and what the decoder reads.
 */
export function assembleJpeg(tile: Buffer, tables: Buffer | undefined, rgbWithoutTransform: boolean): Buffer {
  if (tile.length < 4 || tile[0] !== 0xff || tile[1] !== 0xd8) {
    throw new WsiError('decode_failed', 'JPEG tile data does not start with a JPEG marker');
  }
  const parts: Buffer[] = [SOI];
  if (rgbWithoutTransform && !hasMarker(tile, 0xee)) parts.push(ADOBE_RGB);
  if (tables && tables.length > 4) {
    // JPEGTables is itself SOI … EOI around DQT/DHT segments: keep what is between.
    const end = tables[tables.length - 2] === 0xff && tables[tables.length - 1] === 0xd9 ? tables.length - 2 : tables.length;
    parts.push(tables.subarray(2, end));
  }
  parts.push(tile.subarray(2));
  return Buffer.concat(parts);
}

/** Whether an APPn/marker segment appears before the first scan. */
function hasMarker(jpeg: Buffer, marker: number): boolean {
  let i = 2;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const code = jpeg[i + 1]!;
    if (code === marker) return true;
    if (code === 0xda) return false;
    i += 2 + jpeg.readUInt16BE(i + 2);
  }
  return false;
}
