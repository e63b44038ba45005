/**
 * A slide file as a DICOM whole-slide series: one instance per pyramid level
 * (frames copied from the stored tiles, see frames.ts) and one for the
 * thumbnail, in one series of one study.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { WsiError } from '../errors.js';
import type { SlideLayout } from '../formats/format.js';
import { detectFormat, pathFormatFor } from '../formats/registry.js';
import { Slide } from '../slide.js';
import { readDirectories } from '../tiff/directory.js';
import { RandomAccessFile } from '../tiff/file.js';
import { Tag } from '../tiff/tags.js';
import { instanceAttributes, WSM_SOP_CLASS, type InstanceDescription, type SlideDescription } from './attributes.js';
import { OffsetTableOverflow, writeInstanceFile, type OffsetTableChoice, type WrittenInstance } from './file-writer.js';
import { planLevel, readFrames, TransferSyntax, type FramePlan, type LevelInput } from './frames.js';
import { seriesUids, type SeriesUids } from './uids.js';

/** The thumbnail's longer side at most, as the tile routes serve it. */
export const THUMBNAIL_MAX = 1024;
const THUMBNAIL_QUALITY = 90;
/** Stored bytes read for one batch of frames. */
const BATCH_BYTES = 8 * 1024 * 1024;

/** An open slide file, ready to describe and to read frames from. */
export interface DicomSource {
  path: string;
  file: RandomAccessFile;
  layout: SlideLayout;
  slide: Slide;
  levels: LevelInput[];
  close(): Promise<void>;
}

/**
 * Open a slide for export: a TIFF slide (SVS, generic tiled TIFF, NDPI), or
 * a DICOM series (a folder or file, as DICOM ingest publishes them), whose
 * JPEG frames the DICOM driver hands out as they are stored.
 */
export async function openDicomSource(file: string): Promise<DicomSource> {
  const slide = await Slide.open(file);
  let raf: RandomAccessFile | undefined;
  let layout: SlideLayout | undefined;
  try {
    const byPath = await pathFormatFor(file);
    if (byPath) {
      ({ file: raf, layout } = await byPath.open(file));
    } else {
      raf = await RandomAccessFile.open(file);
      const directories = await readDirectories(raf);
      const { format } = detectFormat(directories);
      if (!format) throw new WsiError('unsupported_format', `${file}: not a supported slide`);
      layout = format.open ? await format.open(raf, directories) : format.layout(directories);
    }
    const opened = raf;
    const own = layout;
    return {
      path: file,
      file: raf,
      layout,
      slide,
      levels: layout.levels.map((level, i) => ({ layout: level, file: opened, name: `level ${i}` })),
      async close() {
        await own.close?.();
        await opened.close();
        await slide.close();
      },
    };
  } catch (error) {
    await layout?.close?.();
    await raf?.close();
    await slide.close();
    throw error;
  }
}

let srgb: Promise<Buffer> | undefined;

/** libvips's sRGB profile, for slides that carry none. */
export function srgbProfile(): Promise<Buffer> {
  return (srgb ??= (async () => {
    const jpeg = await sharp({ create: { width: 1, height: 1, channels: 3, background: 'white' } }).withIccProfile('srgb').jpeg().toBuffer();
    const { icc } = await sharp(jpeg).metadata();
    if (!icc) throw new Error('libvips gave no sRGB profile');
    return icc;
  })());
}

export interface DescribeOptions {
  name: string;
  published: Date;
  softwareVersion: string;
}

/** The series-wide description of the slide. */
export async function describeSlide(source: DicomSource, options: DescribeOptions): Promise<SlideDescription> {
  const icc = source.layout.levels[0]?.directory.tags.get(Tag.ICCProfile);
  const own = Buffer.isBuffer(icc) && icc.length > 128 ? icc : undefined;
  return {
    name: options.name,
    width: source.slide.width,
    height: source.slide.height,
    mpp: source.slide.mpp,
    objectivePower: source.slide.objectivePower,
    iccProfile: own ?? (await srgbProfile()),
    iccIsSrgb: !own,
    published: options.published,
    softwareVersion: options.softwareVersion,
  };
}

export function levelInstance(plan: FramePlan, level: number): InstanceDescription {
  return {
    kind: 'volume',
    instanceNumber: level + 1,
    original: level === 0,
    width: plan.width,
    height: plan.height,
    tileWidth: plan.tileWidth,
    tileHeight: plan.tileHeight,
    frames: plan.count,
    photometric: plan.photometric,
    lossy: plan.lossy,
    lossyMethod: plan.lossyMethod,
    compressionRatio: (plan.tileWidth * plan.tileHeight * 3 * plan.count) / Math.max(1, plan.storedBytes),
  };
}

/** The engine's thumbnail (the stored one, or the smallest level), at most THUMBNAIL_MAX pixels a side, as one JPEG frame. */
export async function thumbnailFrame(slide: Slide): Promise<{ jpeg: Buffer; width: number; height: number }> {
  let image;
  if (slide.associatedImages.includes('thumbnail')) image = await slide.readAssociated('thumbnail');
  else {
    const level = slide.levels.length - 1;
    const { width, height } = slide.levels[level]!;
    image = await slide.readRegion(level, 0, 0, width, height);
  }
  let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  if (Math.max(image.width, image.height) > THUMBNAIL_MAX) pipeline = pipeline.resize(THUMBNAIL_MAX, THUMBNAIL_MAX, { fit: 'inside', kernel: 'lanczos3' });
  const { data, info } = await pipeline.jpeg({ quality: THUMBNAIL_QUALITY, chromaSubsampling: '4:2:0' }).toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height };
}

export function thumbnailInstance(levelCount: number, width: number, height: number, jpegBytes: number): InstanceDescription {
  return {
    kind: 'thumbnail',
    instanceNumber: levelCount + 1,
    original: false,
    width,
    height,
    tileWidth: width,
    tileHeight: height,
    frames: 1,
    photometric: 'YBR_FULL_422',
    lossy: true,
    lossyMethod: 'ISO_10918_1',
    compressionRatio: (width * height * 3) / jpegBytes,
  };
}

/** A level's frames in batches of about BATCH_BYTES of stored tiles, the next batch read while the last is written. */
export async function* levelFrames(input: LevelInput, plan: FramePlan): AsyncGenerator<Buffer[]> {
  const batches: [number, number][] = [];
  let start = 0;
  let bytes = 0;
  for (let n = 0; n < plan.count; n++) {
    const recipe = plan.recipe(n);
    bytes += recipe.kind === 'copy' ? recipe.length : 4096;
    if (bytes >= BATCH_BYTES || n - start >= 4095) {
      batches.push([start, n + 1 - start]);
      start = n + 1;
      bytes = 0;
    }
  }
  if (start < plan.count) batches.push([start, plan.count - start]);
  let next = batches[0] ? readFrames(input, plan, ...batches[0]) : undefined;
  for (let i = 0; i < batches.length; i++) {
    const current = next!;
    next = batches[i + 1] ? readFrames(input, plan, ...batches[i + 1]!) : undefined;
    // Keep a rejected read-ahead from going unhandled while the current batch is written.
    next?.catch(() => {});
    yield await current;
  }
}

export interface ExportOptions extends DescribeOptions {
  /** A stable name of the slide's content (its id and checksum): the UIDs derive from it. */
  uidKey: string;
  uidRoot?: string;
  offsetTable?: OffsetTableChoice;
  onProgress?: (done: number, total: number) => void;
}

export interface ExportedInstance {
  file: string;
  kind: 'volume' | 'thumbnail';
  level?: number;
  sopInstanceUid: string;
  transferSyntax: string;
  photometric: string;
  frames: number;
  bytes: number;
  offsetTable: WrittenInstance['offsetTable'];
}

export interface ExportResult {
  studyInstanceUid: string;
  seriesInstanceUid: string;
  instances: ExportedInstance[];
}

/**
 * Write `file` as a DICOM series into `outDir`: `level-<N>.dcm` for each
 * pyramid level and `thumbnail.dcm`. Every level is planned before anything
 * is written, so a slide that cannot be copied is refused with nothing left behind.
 */
export async function exportSlideAsDicom(file: string, outDir: string, options: ExportOptions): Promise<ExportResult> {
  const source = await openDicomSource(file);
  try {
    const description = await describeSlide(source, options);
    const uids = seriesUids(options.uidKey, options.uidRoot);
    const plans = await Promise.all(source.levels.map((level) => planLevel(level)));
    const total = plans.reduce((sum, p) => sum + p.count, 0) + 1;
    let done = 0;
    await mkdir(outDir, { recursive: true });
    const instances: ExportedInstance[] = [];
    for (const [level, plan] of plans.entries()) {
      const instance = levelInstance(plan, level);
      const target = path.join(outDir, `level-${level}.dcm`);
      const before = done;
      const write = (offsetTable: OffsetTableChoice) =>
        writeInstanceFile(target, {
          sopClassUid: WSM_SOP_CLASS,
          sopInstanceUid: uids.instance(instance.instanceNumber),
          transferSyntax: plan.transferSyntax,
          dataset: instanceAttributes(description, instance, uids),
          frameCount: plan.count,
          maxFrameBytes: plan.maxBytes,
          frames: levelFrames(source.levels[level]!, plan),
          offsetTable,
          onFrames: (n) => options.onProgress?.((done = before + n), total),
        });
      // Levels read through a format driver have their size estimated: past 4 GiB after all, they are written again with the extended table.
      const written = await write(options.offsetTable ?? 'auto').catch((error: unknown) => {
        if (error instanceof OffsetTableOverflow) return write('extended');
        throw error;
      });
      instances.push(exported(target, instance, uids, plan.transferSyntax, written, level));
    }
    const thumbnail = await thumbnailFrame(source.slide);
    const instance = thumbnailInstance(plans.length, thumbnail.width, thumbnail.height, thumbnail.jpeg.length);
    const target = path.join(outDir, 'thumbnail.dcm');
    const written = await writeInstanceFile(target, {
      sopClassUid: WSM_SOP_CLASS,
      sopInstanceUid: uids.instance(instance.instanceNumber),
      transferSyntax: TransferSyntax.JpegBaseline,
      dataset: instanceAttributes(description, instance, uids),
      frameCount: 1,
      maxFrameBytes: thumbnail.jpeg.length + 16,
      frames: (async function* () {
        yield [thumbnail.jpeg];
      })(),
      offsetTable: 'basic',
    });
    options.onProgress?.(total, total);
    instances.push(exported(target, instance, uids, TransferSyntax.JpegBaseline, written));
    return { studyInstanceUid: uids.study, seriesInstanceUid: uids.series, instances };
  } finally {
    await source.close();
  }
}

function exported(
  file: string,
  instance: InstanceDescription,
  uids: SeriesUids,
  transferSyntax: string,
  written: WrittenInstance,
  level?: number,
): ExportedInstance {
  return {
    file,
    kind: instance.kind,
    ...(level === undefined ? {} : { level }),
    sopInstanceUid: uids.instance(instance.instanceNumber),
    transferSyntax,
    photometric: instance.photometric,
    frames: instance.frames,
    bytes: written.bytes,
    offsetTable: written.offsetTable,
  };
}
