/**
 * The de-identified copy of a Hamamatsu NDPI: a tiled pyramidal TIFF whose
 * pixels are the original's JPEG data, not re-encoded.
 *
 * A level is one JPEG strip with a restart marker after every interval of
 * MCUs; a tile of the copy is a block of whole restart intervals: side by
 * side in one MCU row, and from consecutive MCU rows. It is re-wrapped with
 * the strip's frame and scan headers (its own size in the frame header,
 * restart markers renumbered) by the slide engine's `ndpi-jpeg.ts`. The
 * entropy-coded data are copied, never decoded, so the copy decodes to
 * exactly the original's pixels. The quantisation and Huffman tables go into
 * JPEGTables once per level (TIFF Technical Note 2).
 *
 * A tile holds as many whole intervals side by side as make it a multiple of
 * 16 pixels wide (TIFF's rule for tiles) and, where intervals are narrow,
 * about 256 pixels: intervals 240 pixels wide make tiles of one, 200 pixels
 * wide of two (an MCU is 8 or 16 pixels wide, so two intervals always are a
 * multiple of 16), 8 pixels wide of 32. Intervals past the right edge repeat
 * the last one of the row; those pixels lie outside the image.
 *
 * A level that has no restart markers, or whose intervals are not a multiple
 * of 16 pixels wide and so wide that two exceed what a JPEG decoder takes
 * (65,500 pixels), is re-encoded from the engine's decoding instead, and the
 * report says so. Where the scanner left a step of
 * more than 4× between two stored levels, levels between them are made by
 * libjpeg-turbo's scaled decoding (the engine's 1/2, 1/4 and 1/8 levels of a
 * stored level) and encoded as JPEG.
 *
 * Nothing of the original but pixels and resolution is carried: not the
 * macro image (nor any other directory), not Hamamatsu's private tags (the
 * serial number, the property map with its dates, the reference, the
 * offsets from the slide's centre), not DateTime, Make, Model or Software,
 * and of the JPEG headers only what decoding needs.
 */
import { open, rm, stat } from 'node:fs/promises';
import { sha256File } from '../../lib/hashing.js';
import { encodeJpeg } from '../../wsi/generate/jpeg-tables.js';
import { openStoredStrips, type StoredStrip } from '../../wsi/formats/hamamatsu.js';
import { assembleIntervals, JPEG_MAX_SIDE, withoutTables } from '../../wsi/formats/ndpi-jpeg.js';
import { detectFormat } from '../../wsi/formats/registry.js';
import { mppFromResolution } from '../../wsi/formats/tiff-properties.js';
import { Slide } from '../../wsi/slide.js';
import { readDirectories, type TiffDirectory } from '../../wsi/tiff/directory.js';
import { RandomAccessFile } from '../../wsi/tiff/file.js';
import { LAYOUT_TAGS } from '../../wsi/tiff/rewrite.js';
import { Compression, Photometric, TiffWriter } from '../../wsi/tiff/writer.js';
import { DeidentifyError, type DeidentifyOptions, type DeidentifyResult, type DirectoryReport, type PublishedLevel } from './deidentify.js';
import { collectIdentifiers } from './identifiers.js';
import { SAFE_TIFF_TAGS } from './policy.js';

/** A re-tiled tile holds at most this many pixels: a tile of wider intervals is fewer rows tall (at least 16). */
const MAX_TILE_PIXELS = 512 * 512;
/** Re-tiled tiles of narrow intervals hold as many side by side as fit in this width. */
const RETILED_WIDTH = 256;
/** Tiles of levels that are re-encoded or made by scaled decoding. */
const ENCODED_TILE = 256;
/** The largest step between two levels of the copy. */
const MAX_STEP = 4;

/** A level of the copy and where its tiles come from. */
interface PlannedLevel {
  width: number;
  height: number;
  /** Re-tiled from this strip's restart intervals… */
  strip?: StoredStrip;
  /** …or decoded from this level of the engine's reading of the original and encoded. */
  engineLevel?: number;
  report: PublishedLevel;
}

export async function deidentifyNdpi(input: string, output: string, options: DeidentifyOptions): Promise<DeidentifyResult> {
  const file = await RandomAccessFile.open(input);
  let slide: Slide | undefined;
  try {
    const directories = await readDirectories(file);
    if (detectFormat(directories).format?.name !== 'hamamatsu') throw new DeidentifyError('not a Hamamatsu NDPI file');
    const { strips } = await openStoredStrips(file, directories);
    slide = await Slide.open(input);
    const plan = planPyramid(strips, slide);
    const base = strips[0]!.directory;
    const mpp = mppFromResolution(base);

    const writer = await TiffWriter.create(output);
    try {
      const total = plan.reduce((sum, level) => sum + level.width * level.height, 0);
      let done = 0;
      for (const [i, level] of plan.entries()) {
        const pixelsPerCm = mpp ? { x: 10_000 / (mpp.x * (base.width / level.width)), y: 10_000 / (mpp.y * (base.height / level.height)) } : undefined;
        if (level.strip) await writeRetiled(writer, file, level.strip, i, pixelsPerCm);
        else await writeEncoded(writer, slide, level.engineLevel!, level, i, pixelsPerCm, options.quality ?? 90);
        done += level.width * level.height;
        options.onProgress?.(done, total);
      }
      await writer.close();
    } catch (error) {
      await writer.abort();
      await rm(output, { force: true });
      throw error;
    }
    const handle = await open(output, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    return {
      vendor: 'generic-tiff',
      sourceFormat: 'hamamatsu',
      size: (await stat(output)).size,
      sha256: await sha256File(output),
      tiffFormat: writer.format ?? 'classic',
      directories: directoryReports(directories, strips, plan),
      identifiers: collectIdentifiers(directories, options.originalName),
      expectedLevels: plan.map((l) => ({ width: l.width, height: l.height })),
      levels: plan.map((l) => l.report),
    };
  } finally {
    await slide?.close();
    await file.close();
  }
}

/** Why a strip's restart intervals cannot be re-tiled, if they cannot. */
function retileProblem(strip: StoredStrip): string | undefined {
  if (!strip.intervals) return 'its JPEG strip has no restart markers';
  const width = intervalsPerTile(strip) * strip.intervalWidth;
  if (width > JPEG_MAX_SIDE) {
    return `its restart intervals are ${strip.intervalWidth} pixels wide, not a multiple of 16 as TIFF tiles must be, and two side by side (${width} pixels) are wider than a JPEG decoder takes (${JPEG_MAX_SIDE})`;
  }
  return undefined;
}

/** Restart intervals side by side in a re-tiled tile: a multiple of 16 pixels wide, about RETILED_WIDTH, no more than the row needs. */
function intervalsPerTile(strip: StoredStrip): number {
  // An interval is a whole number of MCUs, each 8 or 16 pixels wide: two intervals are always a multiple of 16.
  const unit = strip.intervalWidth % 16 === 0 ? 1 : 2;
  const units = Math.max(1, Math.min(Math.floor(RETILED_WIDTH / (unit * strip.intervalWidth)), Math.ceil(strip.across / unit)));
  return unit * units;
}

/** Tile height for tiles `width` pixels wide: square up to MAX_TILE_PIXELS, a multiple of 16. */
function retiledHeight(width: number): number {
  return Math.min(width, Math.max(16, Math.floor(MAX_TILE_PIXELS / width / 16) * 16));
}

/** The stored levels, each re-tiled (or re-encoded), with levels made between any two more than 4× apart. */
function planPyramid(strips: StoredStrip[], slide: Slide): PlannedLevel[] {
  const plan: PlannedLevel[] = [];
  const engineLevelOfWidth = (width: number) => slide.levels.findIndex((l) => l.width === width);
  for (const [k, strip] of strips.entries()) {
    const { width, height } = strip.directory;
    const problem = retileProblem(strip);
    if (problem === undefined) {
      const perTile = intervalsPerTile(strip);
      const tileWidth = perTile * strip.intervalWidth;
      const note = perTile > 1 ? `${perTile} restart intervals of ${strip.intervalWidth}×${strip.intervalHeight} pixels side by side per tile` : null;
      plan.push({
        width,
        height,
        strip,
        report: { width, height, tileWidth, tileHeight: retiledHeight(tileWidth), from: `stored level ${k}`, how: 're-tiled', note },
      });
    } else {
      plan.push({
        width,
        height,
        engineLevel: engineLevelOfWidth(width),
        report: { width, height, tileWidth: ENCODED_TILE, tileHeight: ENCODED_TILE, from: `stored level ${k}`, how: 're-encoded', note: `re-encoded: ${problem}` },
      });
    }
    const next = strips[k + 1]?.directory;
    let current = plan.at(-1)!.width;
    while (next && current / next.width > MAX_STEP) {
      // The engine's smallest level that is still at most 4× below the current one.
      const candidates = slide.levels.map((l, i) => ({ ...l, i })).filter((l) => l.width < current && l.width > next.width && l.width * MAX_STEP >= current);
      const chosen = candidates.at(-1);
      if (!chosen) break;
      plan.push({
        width: chosen.width,
        height: chosen.height,
        engineLevel: chosen.i,
        report: {
          width: chosen.width,
          height: chosen.height,
          tileWidth: ENCODED_TILE,
          tileHeight: ENCODED_TILE,
          from: `stored level ${k} at 1/${Math.round(width / chosen.width)}`,
          how: 'scaled decoding',
          note: 'not stored by the scanner: made by scaled JPEG decoding and encoded',
        },
      });
      current = chosen.width;
    }
  }
  return plan;
}

/** A level whose tiles are blocks of the strip's restart intervals, re-wrapped: whole intervals wide, whole MCU rows tall. */
async function writeRetiled(writer: TiffWriter, file: RandomAccessFile, strip: StoredStrip, index: number, pixelsPerCm: { x: number; y: number } | undefined): Promise<void> {
  const { directory, across, down, intervalWidth, intervalHeight } = strip;
  const intervals = strip.intervals!;
  const { tables, header } = withoutTables(strip.header);
  const perTile = intervalsPerTile(strip);
  const tileWidth = perTile * intervalWidth;
  const tileHeight = retiledHeight(tileWidth);
  const rowsPerTile = tileHeight / intervalHeight;
  const tilesAcross = Math.ceil(across / perTile);
  const image = writer.beginImage({
    width: directory.width,
    height: directory.height,
    tile: { width: tileWidth, height: tileHeight },
    compression: Compression.JPEG,
    photometric: directory.photometric === Photometric.RGB ? Photometric.RGB : Photometric.YCbCr,
    newSubfileType: index === 0 ? 0 : 1,
    jpegTables: tables,
    ycbcrSubsampling: strip.header.subsampling,
    pixelsPerCm,
  });
  const tilesDown = Math.ceil(directory.height / tileHeight);
  for (let row = 0; row < tilesDown; row++) {
    const firstRow = row * rowsPerTile;
    const lastRow = Math.min(firstRow + rowsPerTile, down) - 1;
    // Whole rows of intervals follow each other in the file: one read for the band.
    const band = await intervals.read(firstRow * across, lastRow * across + across - 1);
    for (let col = 0; col < tilesAcross; col++) {
      const first = col * perTile;
      const last = Math.min(first + perTile, across) - 1;
      const block: Buffer[][] = [];
      for (let r = 0; r <= lastRow - firstRow; r++) {
        const row = band.slice(r * across + first, r * across + last + 1);
        // Intervals past the right edge repeat the last of the row, and rows past the bottom edge the last row
        // (the tile must be whole; those pixels lie outside the image).
        while (row.length < perTile) row.push(row.at(-1)!);
        block.push(row);
      }
      while (block.length < rowsPerTile) block.push(block.at(-1)!);
      await image.write(assembleIntervals(header, block, tileWidth, tileHeight));
    }
  }
  image.end();
}

/** A level decoded from the engine's reading of the original and encoded as JPEG tiles. */
async function writeEncoded(
  writer: TiffWriter,
  slide: Slide,
  engineLevel: number,
  level: PlannedLevel,
  index: number,
  pixelsPerCm: { x: number; y: number } | undefined,
  quality: number,
): Promise<void> {
  if (engineLevel < 0) throw new DeidentifyError(`level ${level.width}×${level.height} cannot be decoded`);
  const T = ENCODED_TILE;
  const image = writer.beginImage({
    width: level.width,
    height: level.height,
    tile: { width: T, height: T },
    compression: Compression.JPEG,
    photometric: Photometric.YCbCr,
    newSubfileType: index === 0 ? 0 : 1,
    ycbcrSubsampling: [2, 2],
    pixelsPerCm,
  });
  const across = Math.ceil(level.width / T);
  const tile = Buffer.alloc(T * T * 3);
  for (let y = 0; y < level.height; y += T) {
    const band = await slide.readRegion(engineLevel, 0, y, across * T, T);
    for (let col = 0; col < across; col++) {
      for (let r = 0; r < T; r++) band.data.copy(tile, r * T * 3, (r * band.width + col * T) * 3, (r * band.width + col * T + T) * 3);
      const { tables, stream } = await encodeJpeg(tile, T, T, quality);
      image.setJpegTables(tables);
      await image.write(stream);
    }
  }
  image.end();
}

/** What became of each directory of the original. */
function directoryReports(directories: TiffDirectory[], strips: StoredStrip[], plan: PlannedLevel[]): DirectoryReport[] {
  return directories.map((directory) => {
    const planned = plan.find((l) => l.strip?.directory === directory || (l.report.how === 're-encoded' && strips.some((s) => s.directory === directory && s.directory.width === l.width)));
    const isMacro = !planned && directory.tags.get(65421) !== undefined && (directory.tags.get(65421) as number[])[0] === -1;
    return {
      index: directory.index,
      role: planned ? 'level' : isMacro ? 'macro' : 'unrecognised',
      width: directory.width,
      height: directory.height,
      action: planned ? (planned.report.how === 're-tiled' ? 're-tiled' : 're-encoded') : 'removed',
      // Every tag that could carry more than pixels and layout: none of them is written.
      droppedTags: planned ? [...directory.tags.keys()].filter((tag) => !SAFE_TIFF_TAGS.has(tag) && !LAYOUT_TAGS.has(tag)) : [],
      keptDescriptionKeys: [],
      droppedDescriptionKeys: [],
      droppedHeaderLines: 0,
    };
  });
}
