import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import { WsiError } from '../../errors.js';
import { blank, paint } from '../../decode/pixels.js';
import type { TiffDirectory } from '../../tiff/directory.js';
import { RandomAccessFile } from '../../tiff/file.js';
import { Compression, Photometric, Tag } from '../../tiff/tags.js';
import { levelProperties, type AssociatedName, type LevelLayout, type PathSlideFormat, type SlideLayout } from '../format.js';
import { isDicomFile } from './dataset.js';
import { decodeFrame } from './decode.js';
import { openDicomSeries, type DicomImage, type DicomSeries } from './series.js';
import { describeSyntax } from './syntax.js';

export { openDicomSeries, type DicomImage, type DicomSeries } from './series.js';

/**
 * DICOM whole-slide images (VL Whole Slide Microscopy Image Storage): a
 * folder holding a series' instances, or one DICOM file. See docs/dicom.md.
 */
export const dicom: PathSlideFormat = {
  name: 'dicom',

  async claims(path) {
    let folder: boolean;
    try {
      folder = (await stat(path)).isDirectory();
    } catch {
      return false;
    }
    if (folder) return true;
    const file = await RandomAccessFile.open(path);
    try {
      return await isDicomFile(file);
    } finally {
      await file.close();
    }
  },

  async open(path) {
    const series = await openDicomSeries(path);
    try {
      const levels = await Promise.all(series.levels.map((image, i) => levelLayout(series, image, i)));
      const associated = new Map<AssociatedName, TiffDirectory>();
      const images = new Map<number, DicomImage>();
      for (const [name, image] of series.associated) {
        const index = 1000 + images.size;
        images.set(index, image);
        associated.set(name, gridDirectory(index, image, Compression.None, Photometric.RGB));
      }
      const file = series.file;
      const layout: SlideLayout = {
        vendor: 'dicom',
        levels,
        associated,
        properties: properties(series, levels),
        readAssociated: (_file, directory) => encodeWhole(images.get(directory.index)!),
        close: () => series.close(file),
      };
      return { file, layout };
    } catch (error) {
      await series.close();
      throw error;
    }
  },
};

/**
 * A level as the slide engine reads levels: a grid of tiles. JPEG levels of
 * colour tiles that are all present keep their stored JPEG frames as tiles
 * (sent as they are, and decoded by libjpeg-turbo at reduced sizes); every
 * other level decodes its frames itself (`decodeTiles`).
 */
async function levelLayout(series: DicomSeries, image: DicomImage, index: number): Promise<LevelLayout> {
  const base = series.levels[0]!;
  const { format, grid, frames } = image;
  const storedJpeg = format.coding === 'jpeg' && format.samples === 3 && grid.missing === 0;
  const readTile = async (_file: RandomAccessFile, col: number, row: number) => {
    const frame = grid.frameAt(col, row);
    return frame < 0 ? Buffer.alloc(0) : frames.read(frame);
  };
  let directory: TiffDirectory;
  if (storedJpeg) {
    const rgb = format.photometric === 'RGB';
    directory = gridDirectory(index, image, Compression.JPEG, rgb ? Photometric.RGB : Photometric.YCbCr);
    if (!rgb) directory.tags.set(Tag.YCbCrSubSampling, jpegSubsampling(await frames.read(grid.frameAt(0, 0)), image.instances[0]!.header.path));
  } else {
    directory = gridDirectory(index, image, format.coding === 'jpeg2000' ? Compression.AperioJP2kRGB : Compression.None, Photometric.RGB);
  }
  return {
    directory,
    width: image.width,
    height: image.height,
    downsample: (base.width / image.width + base.height / image.height) / 2,
    source: storedJpeg ? { readTile } : { readTile, decodeTiles: (tiles) => Promise.all(tiles.map((t) => decodeFrame(t, format))) },
  };
}

/** A directory describing an image's tile grid (the frames' coding is the DICOM decoder's business). */
function gridDirectory(index: number, image: DicomImage, compression: number, photometric: number): TiffDirectory {
  return {
    index,
    offset: 0,
    width: image.width,
    height: image.height,
    tiled: true,
    tileWidth: image.tileWidth,
    tileHeight: image.tileHeight,
    tilesAcross: image.grid.across,
    tilesDown: image.grid.down,
    compression,
    photometric,
    samplesPerPixel: 3,
    bitsPerSample: 8,
    planarConfig: 1,
    predictor: 1,
    newSubfileType: 0,
    description: '',
    offsets: new Float64Array(0),
    byteCounts: new Float64Array(0),
    tags: new Map(),
    tagTypes: new Map(),
  };
}

/** The chroma subsampling of a YCbCr JPEG frame, from its start-of-frame segment, as TIFF's YCbCrSubSampling. */
function jpegSubsampling(jpeg: Buffer, path: string): number[] {
  let i = 2;
  while (i + 4 <= jpeg.length && jpeg[i] === 0xff) {
    const marker = jpeg[i + 1]!;
    const length = jpeg.readUInt16BE(i + 2);
    if (marker === 0xc0 || marker === 0xc1) {
      const components = jpeg[i + 9]!;
      if (components !== 3 || i + 10 + 9 > jpeg.length) break;
      const sampling = (c: number) => jpeg[i + 10 + c * 3 + 1]!;
      const [y, cb] = [sampling(0), sampling(1)];
      return [(y >> 4) / (cb >> 4) || 1, (y & 15) / (cb & 15) || 1];
    }
    if (marker === 0xda) break;
    i += 2 + length;
  }
  throw new WsiError('decode_failed', `${path}: the first JPEG frame has no baseline start-of-frame for three components`);
}

/** An associated image, all its tiles decoded and clipped, as PNG for sharp to read. */
async function encodeWhole(image: DicomImage): Promise<Buffer> {
  const out = blank(image.width, image.height);
  for (let row = 0; row < image.grid.down; row++) {
    for (let col = 0; col < image.grid.across; col++) {
      const frame = image.grid.frameAt(col, row);
      if (frame < 0) continue;
      const tile = await decodeFrame(await image.frames.read(frame), image.format);
      paint(out, tile, col * image.tileWidth, row * image.tileHeight);
    }
  }
  return sharp(out.data, { raw: { width: out.width, height: out.height, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

/**
 * OpenSlide's standard properties and `dicom.*` ones. Identifying attributes
 * (manufacturer, model, serial number, UIDs, patient and dates) are not
 * properties: they stay in the series' `identifying` record.
 */
function properties(series: DicomSeries, levels: LevelLayout[]): Record<string, string> {
  const level0 = series.levels[0]!;
  const base = level0.instances[0]!;
  const out: Record<string, string> = {
    'openslide.vendor': 'dicom',
    ...levelProperties(levels),
    'dicom.transfer-syntax': describeSyntax(base.header.transferSyntax),
    'dicom.photometric-interpretation': base.photometric,
    'dicom.dimension-organization-type': base.organization,
    'dicom.image-type': base.imageType.join('\\'),
    'dicom.instances': String(series.instances.length),
    'dicom.optical-path-count': String(series.opticalPathCount),
    'dicom.optical-path': series.opticalPath.id,
    'dicom.focal-planes': String(base.focalPlanes),
    'dicom.focal-plane': '1',
  };
  if (series.opticalPath.description) out['dicom.optical-path-description'] = series.opticalPath.description;
  if (series.opticalPathCount > 1) out['dicom.optical-path-choice'] = `the first of ${series.opticalPathCount} optical paths is shown; the others are not read`;
  if (level0.grid.missing > 0) out['dicom.missing-tiles'] = String(level0.grid.missing);
  if (base.pixelSpacing) {
    // Pixel Spacing is (row, column) in millimetres: column spacing is the width of a pixel.
    out['openslide.mpp-x'] = String(round(base.pixelSpacing[1] * 1000));
    out['openslide.mpp-y'] = String(round(base.pixelSpacing[0] * 1000));
  }
  const power = series.opticalPath.objectiveLensPower ?? base.opticalPaths.find((p) => p.objectiveLensPower)?.objectiveLensPower;
  if (power) out['openslide.objective-power'] = String(power);
  return out;
}

/** Millimetres to microns without binary noise (0.000499 mm is 0.499 µm, not 0.49899999999999994). */
const round = (v: number) => Number(v.toPrecision(12));
