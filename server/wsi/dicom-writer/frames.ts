/**
 * The frame index: which stored tile becomes frame N of a level's instance,
 * and what is done to its bytes on the way (the JPEG surgery). A function of
 * the slide file and the level only, so that a DICOMweb server can serve
 * frame N of the same instance from the published slide without a copy.
 *
 * Frames follow TILED_FULL order (PS3.3 C.8.12.4.1.3): along each row of
 * tiles, then down the rows. Stored tiles become frames as they are:
 *
 * - JPEG tiles (TIFF compression 7) get the level's JPEGTables spliced in
 *   after SOI, and, where the TIFF says RGB (Aperio's tiles without a colour
 *   transform), an Adobe APP14 marker with transform 0;
 * - JPEG 2000 tiles (Aperio's compressions 33003 and 33005) are raw
 *   codestreams already, copied as they are;
 * - missing tiles (no bytes) of JPEG levels become a JPEG of the background
 *   colour, made without an encoder (codestreams.ts).
 *
 * TIFF tiles are whole tiles, edge tiles included (TIFF 6.0, section 15),
 * which is what TILED_FULL needs. A JPEG tile whose frame header is smaller
 * than the tile (never written by Aperio or the generator) is decoded,
 * padded with white and encoded again, alone of its level, where the level
 * is YCbCr; the other cases are refused with the reason.
 */
import sharp from 'sharp';
import { assembleJpeg } from '../decode/jpeg.js';
import { decodeTiles } from '../decode/tile.js';
import { WsiError } from '../errors.js';
import type { LevelLayout } from '../formats/format.js';
import type { RandomAccessFile } from '../tiff/file.js';
import { Compression, Photometric } from '../tiff/tags.js';
import { jpeg2000Info, jpegFrameInfo, notFullTile, uniformJpeg, type JpegFrameInfo } from './codestreams.js';

export const TransferSyntax = {
  ExplicitLittle: '1.2.840.10008.1.2.1',
  JpegBaseline: '1.2.840.10008.1.2.4.50',
  JpegExtended: '1.2.840.10008.1.2.4.51',
  Jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  Jpeg2000: '1.2.840.10008.1.2.4.91',
} as const;

export type PhotometricInterpretation = 'RGB' | 'YBR_FULL' | 'YBR_FULL_422' | 'YBR_ICT' | 'YBR_RCT';

/** The background of missing tiles: white, as the engine paints what no tile covers. */
export const BACKGROUND: readonly [number, number, number] = [255, 255, 255];

/** How frame N is made. */
export type FrameRecipe =
  | { kind: 'copy'; col: number; row: number; offset: number; length: number }
  | { kind: 'background'; col: number; row: number }
  | { kind: 'level-source'; col: number; row: number };

/** A level's frames: their pixel description and how each is made. */
export interface FramePlan {
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  tilesAcross: number;
  tilesDown: number;
  count: number;
  codec: 'jpeg' | 'jpeg2000';
  transferSyntax: string;
  photometric: PhotometricInterpretation;
  /** Whether the stored pixels went through lossy compression (Lossy Image Compression 01), and the method's code. */
  lossy: boolean;
  lossyMethod: 'ISO_10918_1' | 'ISO_15444_1';
  /** The luma sampling factors of JPEG frames (background frames are made alike). */
  sampling: [number, number];
  /** JPEG surgery: the tables to splice in, and whether the Adobe marker is added. */
  surgery: { tables?: Buffer; adobeRgb: boolean };
  /** Bytes of the stored tiles the frames copy (an estimate for levels read through the format driver). */
  storedBytes: number;
  /** At least the frames' encoded size with item headers and padding: chooses the offset table. */
  maxBytes: number;
  recipe(n: number): FrameRecipe;
}

export interface LevelInput {
  layout: LevelLayout;
  file: RandomAccessFile;
  /** For messages: "level 2". */
  name: string;
}

/** Plan a level's frames, reading the header of its first stored tile to learn what its JPEGs hold. */
export async function planLevel({ layout, file, name }: LevelInput): Promise<FramePlan> {
  const dir = layout.directory;
  const { tileWidth, tileHeight, tilesAcross, tilesDown } = dir;
  const count = tilesAcross * tilesDown;
  const base = { width: layout.width, height: layout.height, tileWidth, tileHeight, tilesAcross, tilesDown, count };
  const at = (n: number) => ({ col: n % tilesAcross, row: Math.floor(n / tilesAcross) });

  if (layout.source) {
    if (layout.source.decodeTiles) throw new WsiError('unsupported_format', `${name} is not stored in the file (it is decoded from a larger level) and cannot be copied`);
    // Complete JPEGs already (NDPI's blocks of restart intervals, DICOM frames); RGB ones get the Adobe marker where they lack it.
    const adobeRgb = dir.photometric === Photometric.RGB;
    const probe = assembleJpeg(await layout.source.readTile(file, 0, 0), undefined, adobeRgb);
    const info = probeJpeg(probe, name);
    const approx = probe.length * count * 2;
    return { ...base, ...jpegPixels(info, adobeRgb, name), surgery: { adobeRgb }, storedBytes: probe.length * count, maxBytes: approx, recipe: (n) => ({ kind: 'level-source', ...at(n) }) };
  }

  if (!dir.tiled) throw new WsiError('unsupported_format', `${name} is not tiled`);
  const recipe = (n: number): FrameRecipe => {
    const length = dir.byteCounts[n]!;
    return length > 0 ? { kind: 'copy', ...at(n), offset: dir.offsets[n]!, length } : { kind: 'background', ...at(n) };
  };
  const first = dir.byteCounts.findIndex((length) => length > 0);
  if (first < 0) throw new WsiError('unsupported_format', `${name} has no stored tiles`);
  const probe = await file.read(dir.offsets[first]!, dir.byteCounts[first]!, `tile ${first} of ${name}`);
  let stored = 0;
  for (const length of dir.byteCounts) stored += length;

  if (dir.compression === Compression.JPEG) {
    const adobeRgb = dir.photometric === Photometric.RGB;
    const info = probeJpeg(assembleJpeg(probe, dir.jpegTables, adobeRgb), name);
    const extra = (dir.jpegTables?.length ?? 0) + 16 + 8 + 1;
    const background = uniformJpeg(tileWidth, tileHeight, BACKGROUND, [info.sampling[0]![0], info.sampling[0]![1]], adobeRgb).length;
    return {
      ...base,
      ...jpegPixels(info, adobeRgb, name),
      surgery: { ...(dir.jpegTables ? { tables: dir.jpegTables } : {}), adobeRgb },
      storedBytes: stored,
      maxBytes: stored + count * Math.max(extra, background + 9),
      recipe,
    };
  }
  if (dir.compression === Compression.AperioJP2kRGB || dir.compression === Compression.AperioJP2kYCbCr) {
    const info = jpeg2000Info(probe);
    if (!info) throw new WsiError('unsupported_format', `${name}: its first tile is not a JPEG 2000 codestream`);
    if (info.components !== 3) throw new WsiError('unsupported_format', `${name}: JPEG 2000 tiles of ${info.components} components are not supported`);
    if (dir.byteCounts.some((length) => length === 0)) {
      throw new WsiError('unsupported_format', `${name} has missing JPEG 2000 tiles, which cannot be filled without a JPEG 2000 encoder`);
    }
    const ycbcr = dir.compression === Compression.AperioJP2kYCbCr;
    if (ycbcr && info.mct) throw new WsiError('unsupported_format', `${name}: YCbCr JPEG 2000 tiles with a component transform are not supported`);
    const photometric: PhotometricInterpretation = ycbcr ? 'YBR_FULL' : info.mct ? (info.reversible ? 'YBR_RCT' : 'YBR_ICT') : 'RGB';
    return {
      ...base,
      codec: 'jpeg2000',
      // The 5-3 wavelet can be lossless; the 9-7 one never is.
      transferSyntax: info.reversible ? TransferSyntax.Jpeg2000Lossless : TransferSyntax.Jpeg2000,
      photometric,
      lossy: !info.reversible,
      lossyMethod: 'ISO_15444_1',
      sampling: [1, 1],
      surgery: { adobeRgb: false },
      storedBytes: stored,
      maxBytes: stored + count * 9,
      recipe,
    };
  }
  throw new WsiError('unsupported_compression', `${name} is stored with TIFF compression ${dir.compression}; only JPEG and JPEG 2000 tiles can be copied into DICOM without recompression`);
}

function probeJpeg(jpeg: Buffer, name: string): JpegFrameInfo {
  const info = jpegFrameInfo(jpeg);
  if (!info) throw new WsiError('corrupt', `${name}: its first tile has no JPEG frame header`);
  if (info.sampling.length !== 3) throw new WsiError('unsupported_format', `${name}: JPEG tiles of ${info.sampling.length} components are not supported`);
  if (info.bits !== 8) throw new WsiError('unsupported_format', `${name}: ${info.bits}-bit JPEG tiles are not supported`);
  if (info.process !== 0xc0 && info.process !== 0xc1) throw new WsiError('unsupported_compression', `${name}: JPEG process ${info.process.toString(16)} (not sequential DCT) is not supported`);
  return info;
}

function jpegPixels(info: JpegFrameInfo, adobeRgb: boolean, name: string) {
  const [[h, v], cb, cr] = info.sampling as [[number, number], [number, number], [number, number]];
  if (cb[0] !== 1 || cb[1] !== 1 || cr[0] !== 1 || cr[1] !== 1) throw new WsiError('unsupported_format', `${name}: JPEG chroma sampling ${info.sampling.join(' ')} is not supported`);
  const rgb = adobeRgb || info.adobeTransform === 0;
  // PS3.5 8.2.1: YBR_FULL_422 for subsampled chroma (4:2:2 and 4:2:0 alike), YBR_FULL without subsampling, RGB for components without a colour transform.
  const photometric: PhotometricInterpretation = rgb ? 'RGB' : h > 1 || v > 1 ? 'YBR_FULL_422' : 'YBR_FULL';
  if (rgb && (h !== 1 || v !== 1)) throw new WsiError('unsupported_format', `${name}: subsampled RGB JPEG tiles are not supported`);
  return {
    codec: 'jpeg' as const,
    transferSyntax: info.process === 0xc0 ? TransferSyntax.JpegBaseline : TransferSyntax.JpegExtended,
    photometric,
    lossy: true,
    lossyMethod: 'ISO_10918_1' as const,
    sampling: [h, v] as [number, number],
  };
}

/** Frames of `plan` from `first`, `count` of them, as the bytes each frame item holds (before padding). */
export async function readFrames(input: LevelInput, plan: FramePlan, first: number, count: number): Promise<Buffer[]> {
  const recipes = Array.from({ length: count }, (_, i) => plan.recipe(first + i));
  const data = await readStored(input, recipes);
  return Promise.all(recipes.map((recipe, i) => makeFrame(input, plan, recipe, data[i])));
}

/** One frame's bytes. */
export async function readFrame(input: LevelInput, plan: FramePlan, n: number): Promise<Buffer> {
  const [frame] = await readFrames(input, plan, n, 1);
  return frame!;
}

/** Stored bytes of the copied tiles, read in runs where tiles lie one after another in the file (as scanners write them). */
async function readStored({ file, layout, name }: LevelInput, recipes: FrameRecipe[]): Promise<(Buffer | undefined)[]> {
  const out: (Buffer | undefined)[] = new Array(recipes.length);
  const runs: { start: number; end: number; offset: number; length: number }[] = [];
  recipes.forEach((r, i) => {
    if (r.kind !== 'copy') return;
    const last = runs[runs.length - 1];
    if (last && last.end === i && last.offset + last.length === r.offset && last.length + r.length <= 32 * 1024 * 1024) {
      last.end = i + 1;
      last.length += r.length;
    } else {
      runs.push({ start: i, end: i + 1, offset: r.offset, length: r.length });
    }
  });
  await Promise.all(
    runs.map(async (run) => {
      const bytes = await file.read(run.offset, run.length, `tiles of ${name}`);
      let at = 0;
      for (let i = run.start; i < run.end; i++) {
        const r = recipes[i] as Extract<FrameRecipe, { kind: 'copy' }>;
        out[i] = bytes.subarray(at, at + r.length);
        at += r.length;
      }
    }),
  );
  await Promise.all(
    recipes.map(async (r, i) => {
      if (r.kind === 'level-source') out[i] = await layout.source!.readTile(file, r.col, r.row);
    }),
  );
  return out;
}

async function makeFrame(input: LevelInput, plan: FramePlan, recipe: FrameRecipe, stored: Buffer | undefined): Promise<Buffer> {
  const what = `tile (${recipe.col}, ${recipe.row}) of ${input.name}`;
  if (recipe.kind === 'background') return uniformJpeg(plan.tileWidth, plan.tileHeight, BACKGROUND, plan.sampling, plan.photometric === 'RGB');
  if (plan.codec === 'jpeg2000') {
    const info = jpeg2000Info(stored!);
    if (!info) throw new WsiError('corrupt', `${what} is not a JPEG 2000 codestream`);
    if (info.width !== plan.tileWidth || info.height !== plan.tileHeight) throw notFullTile(what, info.width, info.height, plan.tileWidth, plan.tileHeight);
    return stored!;
  }
  const jpeg = assembleJpeg(stored!, plan.surgery.tables, plan.surgery.adobeRgb);
  const info = jpegFrameInfo(jpeg);
  if (!info) throw new WsiError('corrupt', `${what} has no JPEG frame header`);
  const [h, v] = info.sampling[0] ?? [0, 0];
  if (info.width === plan.tileWidth && info.height === plan.tileHeight && h === plan.sampling[0] && v === plan.sampling[1] && info.sampling.length === 3) return jpeg;
  return reencode(input, plan, recipe, stored!, info, what);
}

/** A tile that is not a whole tile like its level's others, decoded, padded with white and encoded again (YCbCr levels only). */
async function reencode(input: LevelInput, plan: FramePlan, recipe: FrameRecipe, stored: Buffer, info: JpegFrameInfo, what: string): Promise<Buffer> {
  const subsampling = plan.sampling[0] === 2 && plan.sampling[1] === 2 ? '4:2:0' : plan.sampling[0] === 1 && plan.sampling[1] === 1 ? '4:4:4' : undefined;
  if (plan.photometric === 'RGB' || !subsampling || recipe.kind !== 'copy') throw notFullTile(what, info.width, info.height, plan.tileWidth, plan.tileHeight);
  const [image] = await decodeTiles(input.layout.directory, [stored]);
  const width = Math.min(image!.width, plan.tileWidth);
  const height = Math.min(image!.height, plan.tileHeight);
  return sharp(image!.data, { raw: { width: image!.width, height: image!.height, channels: 3 } })
    .extract({ left: 0, top: 0, width, height })
    .extend({ right: plan.tileWidth - width, bottom: plan.tileHeight - height, background: { r: BACKGROUND[0], g: BACKGROUND[1], b: BACKGROUND[2] } })
    .jpeg({ quality: 95, chromaSubsampling: subsampling })
    .toBuffer();
}
