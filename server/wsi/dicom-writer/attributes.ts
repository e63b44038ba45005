/**
 * The attributes of each instance of a slide's DICOM series: VL Whole Slide
 * Microscopy Image (PS3.3 A.32.8), one instance per pyramid level and one
 * for the thumbnail, TILED_FULL without per-frame functional groups. A pure
 * function of the slide's description, the instance and the UIDs: the file
 * writer and a DICOMweb server's metadata make the same attributes from it.
 * Pixel Data (and the offset tables) are not among them: see file-writer.ts.
 */
import { bytes, code, decimalString, numbers, sequence, text, type Dataset } from './elements.js';
import type { PhotometricInterpretation } from './frames.js';
import type { SeriesUids } from './uids.js';

export const WSM_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';

/** What the series says about the slide, the same for every instance. */
export interface SlideDescription {
  /** The slide's published name: Container Identifier and Specimen Identifier. */
  name: string;
  /** Level 0's size in pixels. */
  width: number;
  height: number;
  /** Microns per pixel at level 0; undefined when the slide does not record it (1 µm is written then, and `pixelSpacingKnown` is false). */
  mpp: { x: number; y: number } | undefined;
  objectivePower: number | undefined;
  /** The slide's ICC profile, or sRGB's (`iccIsSrgb`) when it has none. */
  iccProfile: Buffer;
  iccIsSrgb: boolean;
  /** When the slide was published: the Study, Series, Content and Acquisition dates. */
  published: Date;
  softwareVersion: string;
}

/** One instance: a pyramid level, or the thumbnail. */
export interface InstanceDescription {
  kind: 'volume' | 'thumbnail';
  /** 1-based, in the series: the levels from the largest, then the thumbnail. */
  instanceNumber: number;
  /** The base level (level 0) is the ORIGINAL image; every other is DERIVED. */
  original: boolean;
  width: number;
  height: number;
  tileWidth: number;
  tileHeight: number;
  frames: number;
  photometric: PhotometricInterpretation;
  lossy: boolean;
  lossyMethod: 'ISO_10918_1' | 'ISO_15444_1';
  /** Uncompressed over compressed size of the frames (Lossy Image Compression Ratio), when lossy. */
  compressionRatio: number;
}

/** Imaged depth: unknown for scanned slides; 1 µm is what other converters record. */
const IMAGED_DEPTH_MICRONS = 1;

export function instanceAttributes(slide: SlideDescription, instance: InstanceDescription, uids: SeriesUids): Dataset {
  const mpp = slide.mpp ?? { x: 1, y: 1 };
  // Pixel spacing in mm: row spacing (vertical) first, then column spacing (PS3.3 10.7.1.3).
  const spacingX = (mpp.x * slide.width) / instance.width / 1000;
  const spacingY = (mpp.y * slide.height) / instance.height / 1000;
  const imageType = [instance.original ? 'ORIGINAL' : 'DERIVED', 'PRIMARY', instance.kind === 'volume' ? 'VOLUME' : 'THUMBNAIL', instance.original ? 'NONE' : 'RESAMPLED'];
  const date = dicomDate(slide.published);
  const time = dicomTime(slide.published);

  const opticalPath: Dataset = [
    text(0x0048_0106, 'SH', '1'),
    text(0x0048_0107, 'ST', 'Brightfield'),
    sequence(0x0022_0016, code('111744', 'DCM', 'Brightfield illumination')),
    sequence(0x0048_0108, code('414298005', 'SCT', 'Full Spectrum')),
    bytes(0x0028_2000, 'OB', slide.iccProfile),
    ...(slide.iccIsSrgb ? [text(0x0028_2002, 'CS', 'SRGB')] : []),
    ...(slide.objectivePower ? [text(0x0048_0112, 'DS', decimalString(slide.objectivePower))] : []),
  ];

  const shared: Dataset = [
    sequence(0x0028_9110, [
      text(0x0028_0030, 'DS', decimalString(spacingY), decimalString(spacingX)),
      text(0x0018_0050, 'DS', decimalString(IMAGED_DEPTH_MICRONS / 1000)),
    ]),
    sequence(0x0040_0710, [text(0x0008_9007, 'CS', ...imageType)]),
    sequence(0x0048_0207, [text(0x0048_0106, 'SH', '1')]),
  ];

  return [
    // SOP Common
    text(0x0008_0005, 'CS', 'ISO_IR 192'),
    text(0x0008_0201, 'SH', '+0000'),
    text(0x0008_0016, 'UI', WSM_SOP_CLASS),
    text(0x0008_0018, 'UI', uids.instance(instance.instanceNumber)),
    // Patient (de-identified: empty type 2 attributes) and de-identification
    text(0x0010_0010, 'PN'),
    text(0x0010_0020, 'LO'),
    text(0x0010_0030, 'DA'),
    text(0x0010_0040, 'CS'),
    text(0x0012_0062, 'CS', 'YES'),
    text(0x0012_0063, 'LO', 'Slidebank de-identified slide'),
    // General Study
    text(0x0020_000d, 'UI', uids.study),
    text(0x0008_0020, 'DA', date),
    text(0x0008_0030, 'TM', time),
    text(0x0008_0090, 'PN'),
    text(0x0020_0010, 'SH'),
    text(0x0008_0050, 'SH'),
    // General Series, Whole Slide Microscopy Series
    text(0x0008_0060, 'CS', 'SM'),
    text(0x0020_000e, 'UI', uids.series),
    text(0x0020_0011, 'IS', '1'),
    text(0x0008_0021, 'DA', date),
    text(0x0008_0031, 'TM', time),
    // Frame of Reference
    text(0x0020_0052, 'UI', uids.frameOfReference),
    text(0x0020_1040, 'LO', 'SLIDE_CORNER'),
    // General and Enhanced General Equipment
    text(0x0008_0070, 'LO', 'Slidebank'),
    text(0x0008_1090, 'LO', 'slidebank dicom export'),
    text(0x0018_1000, 'LO', 'slidebank'),
    text(0x0018_1020, 'LO', slide.softwareVersion),
    // General Image, Multi-frame Functional Groups
    text(0x0020_0013, 'IS', String(instance.instanceNumber)),
    text(0x0008_0023, 'DA', date),
    text(0x0008_0033, 'TM', time),
    text(0x0008_002a, 'DT', `${date}${time}`),
    text(0x0028_0008, 'IS', String(instance.frames)),
    text(0x0028_0301, 'CS', 'NO'),
    text(0x0028_2110, 'CS', instance.lossy ? '01' : '00'),
    ...(instance.lossy ? [text(0x0028_2112, 'DS', decimalString(Number(instance.compressionRatio.toFixed(2)))), text(0x0028_2114, 'CS', instance.lossyMethod)] : []),
    // Whole Slide Microscopy Image
    text(0x0008_0008, 'CS', ...imageType),
    numbers(0x0048_0001, 'FL', (mpp.x * slide.width) / 1000),
    numbers(0x0048_0002, 'FL', (mpp.y * slide.height) / 1000),
    numbers(0x0048_0003, 'FL', IMAGED_DEPTH_MICRONS),
    numbers(0x0048_0006, 'UL', instance.width),
    numbers(0x0048_0007, 'UL', instance.height),
    numbers(0x0048_0303, 'UL', 1),
    sequence(0x0048_0008, [text(0x0040_072a, 'DS', '0'), text(0x0040_073a, 'DS', '0')]),
    // The slide's x axis runs along the image's rows, its y axis down its columns: rows along -x would need a rotated slide.
    text(0x0048_0102, 'DS', '0', '-1', '0', '-1', '0', '0'),
    text(0x0008_9206, 'CS', 'VOLUME'),
    text(0x0048_0010, 'CS', 'NO'),
    text(0x0048_0011, 'CS', 'AUTO'),
    text(0x0048_0012, 'CS', 'NO'),
    // Image Pixel
    numbers(0x0028_0002, 'US', 3),
    text(0x0028_0004, 'CS', instance.photometric),
    numbers(0x0028_0006, 'US', 0),
    numbers(0x0028_0010, 'US', instance.tileHeight),
    numbers(0x0028_0011, 'US', instance.tileWidth),
    numbers(0x0028_0100, 'US', 8),
    numbers(0x0028_0101, 'US', 8),
    numbers(0x0028_0102, 'US', 7),
    numbers(0x0028_0103, 'US', 0),
    // Multi-frame Dimension: TILED_FULL, indexed by the plane position's column and row
    sequence(0x0020_9221, [text(0x0020_9164, 'UI', uids.dimensionOrganization)]),
    sequence(
      0x0020_9222,
      [text(0x0020_9164, 'UI', uids.dimensionOrganization), numbers(0x0020_9165, 'AT', 0x0048_021e), numbers(0x0020_9167, 'AT', 0x0048_021a)],
      [text(0x0020_9164, 'UI', uids.dimensionOrganization), numbers(0x0020_9165, 'AT', 0x0048_021f), numbers(0x0020_9167, 'AT', 0x0048_021a)],
    ),
    text(0x0020_9311, 'CS', 'TILED_FULL'),
    sequence(0x5200_9229, shared),
    // Acquisition Context
    sequence(0x0040_0555),
    // Specimen
    text(0x0040_0512, 'LO', slide.name),
    sequence(0x0040_0513),
    sequence(0x0040_0518, code('433466003', 'SCT', 'Microscope slide')),
    sequence(0x0040_0560, [
      text(0x0040_0551, 'LO', slide.name),
      text(0x0040_0554, 'UI', uids.specimen),
      sequence(0x0040_0562),
      sequence(0x0040_0610),
    ]),
    // Optical Path
    numbers(0x0048_0302, 'UL', 1),
    sequence(0x0048_0105, opticalPath),
  ];
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');
const dicomDate = (d: Date) => `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}`;
const dicomTime = (d: Date) => `${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
