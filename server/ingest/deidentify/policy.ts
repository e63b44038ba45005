/**
 * What may leave the hospital inside a published slide. Everything is an
 * allow-list: a key or tag not named here is dropped, so a scanner that adds
 * a new field cannot leak it.
 */
import { Tag } from '../../wsi/tiff/tags.js';

/** Slide-engine formats whose files are rewritten with the rules below, their tiles copied byte for byte (`deidentify.ts`). */
export const REWRITTEN_FORMATS: ReadonlySet<string> = new Set(['aperio', 'generic-tiff']);

/**
 * Slide-engine formats de-identification has rules for: the rewritten ones, NDPI, re-tiled into a new TIFF
 * (`ndpi.ts`), and DICOM, published as a series by the PS3.15 Basic Profile (`dicom.ts`, `dicom-policy.ts`).
 * Any other is refused before it is read further.
 */
export const DEIDENTIFIED_FORMATS: ReadonlySet<string> = new Set([...REWRITTEN_FORMATS, 'hamamatsu', 'dicom']);

/** Aperio ImageDescription keys that describe the optics and scan, not the patient, site or operator. */
export const SAFE_APERIO_KEYS: ReadonlySet<string> = new Set([
  'AppMag',
  'MPP',
  'StripeWidth',
  'Left',
  'Top',
  'LineCameraSkew',
  'LineAreaXOffset',
  'LineAreaYOffset',
  'Focus Offset',
  'Exposure Time',
  'Exposure Scale',
  'Gamma',
  'Filtered',
  'ICC Profile',
  'OriginalWidth',
  'OriginalHeight',
  'DisplayColor',
]);

/**
 * Aperio keys known to identify a patient, site or operator (docs/references.md,
 * "Which Aperio fields identify a patient").
 * Their values are searched for in every byte of the output; the allow-list
 * above is what removes them.
 */
export const IDENTIFYING_APERIO_KEYS: readonly (string | RegExp)[] = [
  'Filename',
  'Title',
  'Barcode',
  'ImageID',
  /^CustomField/,
  'Date',
  'Time',
  'Time Zone',
  'User',
  'ScanScope ID',
  'DSR ID',
  'Rack',
  'Slide',
  'Parmset',
];

/** A safe key's value must look like a measurement or setting: short, no path or name characters. */
export const SAFE_VALUE = /^[-+]?[0-9A-Za-z.,: -]{0,64}$/;

/** TIFF tags that describe pixels and layout; the rewriter adds the layout ones itself. */
export const SAFE_TIFF_TAGS: ReadonlySet<number> = new Set([
  Tag.NewSubfileType,
  Tag.BitsPerSample,
  Tag.Compression,
  Tag.Photometric,
  Tag.SamplesPerPixel,
  Tag.PlanarConfig,
  Tag.XResolution,
  Tag.YResolution,
  Tag.ResolutionUnit,
  Tag.Predictor,
  Tag.ExtraSamples,
  Tag.SampleFormat,
  Tag.JPEGTables,
  Tag.YCbCrSubSampling,
  531, // YCbCrPositioning
  Tag.ReferenceBlackWhite,
  Tag.ICCProfile,
  274, // Orientation
  266, // FillOrder
  318, // WhitePoint
  319, // PrimaryChromaticities
  32997, // ImageDepth (SGI), which Aperio writes on every directory
]);

/** Text tags whose values are searched for in the output once they are dropped. */
export const IDENTIFYING_TIFF_TAGS: ReadonlyMap<number, string> = new Map([
  [Tag.DocumentName, 'DocumentName'],
  [Tag.DateTime, 'DateTime'],
  [Tag.Artist, 'Artist'],
  [Tag.HostComputer, 'HostComputer'],
  [285, 'PageName'],
  [Tag.Copyright, 'Copyright'],
]);

/** Values shorter than this occur by chance in compressed pixels; they are removed, but not searched for. */
export const MIN_SCANNED_LENGTH = 5;

export function isIdentifyingAperioKey(key: string): boolean {
  return IDENTIFYING_APERIO_KEYS.some((k) => (typeof k === 'string' ? k === key : k.test(key)));
}
