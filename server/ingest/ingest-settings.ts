import type { DeidentifyResult, PublishedLevel } from './deidentify/deidentify.js';
import type { DicomReport } from './deidentify/dicom.js';
import type { Verification } from './deidentify/verify.js';
import type { Vocabulary } from './types.js';

/** What every step of one slide's ingest shares: the settings it runs under, and the report it fills in. */
export interface IngestSettings {
  paths: { slides: string; quarantine: string; originals: string; thumbnails: string };
  keepOriginals: boolean;
  /** Move the original out of its folder afterwards (the inbox); a CLI ingest leaves the curator's folder alone. */
  takeOriginals: boolean;
  linkageKey: string;
  textPatterns: RegExp[];
  vocabulary: Vocabulary;
  /** How slides only OpenSlide reads are converted (the defaults when absent). */
  conversion?: ConversionSettings;
}

/** What was removed and what was checked: shown to curators; holds no identifying value. */
export interface IngestReport {
  directories?: DeidentifyResult['directories'];
  annotation?: { removed: string[]; layers: number; regions: number } | null;
  checks?: Verification['checks'];
  metadataProblems?: string[];
  tiffFormat?: string;
  /** The original's format as the slide engine recognised it by its content (aperio, generic-tiff, hamamatsu), whatever its extension. */
  originalFormat?: string;
  /** How each level of the published file was made, where it is not a byte-for-byte copy of the original's (an NDPI's). */
  levels?: PublishedLevel[];
  sha256?: string;
  /** A DICOM original: the profile applied, each instance copied or not, and the attributes renamed, emptied, dummied and removed (names, never values). */
  dicom?: DicomReport;
  /** Set when the original was converted into a TIFF (a format only OpenSlide reads): its pixels were re-encoded. */
  conversion?: ConversionReport;
  error?: string;
}

/** How ingest converts a slide only OpenSlide reads (`ingest.converter` and the `ingest.conversion*` settings). */
export interface ConversionSettings {
  /** The converter's command (`vips`), or a path to it. */
  converter: string;
  /** JPEG quality of the converted tiles. */
  quality: number;
  timeoutSeconds: number;
  /** The converter's address space, in MiB. */
  memoryMegabytes: number;
}

/** The de-identification report's account of a conversion: that the pixels were re-encoded, from what, and how. */
export interface ConversionReport {
  reEncoded: true;
  vendor: string;
  format: string;
  tool: string;
  quality: number;
  /** What was dropped with the vendor's container: associated images, the properties. */
  dropped: string[];
}
