import type { TiffDirectory } from '../tiff/directory.js';
import { aperio } from './aperio.js';
import { dicom } from './dicom/index.js';
import type { PathSlideFormat, SlideFormat } from './format.js';
import { genericTiff } from './generic-tiff.js';
import { hamamatsu } from './hamamatsu.js';

/** Most specific first: a generic driver must not claim a vendor's file. */
export const FORMATS: readonly SlideFormat[] = [hamamatsu, aperio, genericTiff];

/** Formats that are not TIFF, asked first: each claims its own paths (a DICOM file or a folder of instances). */
export const PATH_FORMATS: readonly PathSlideFormat[] = [dicom];

/** The non-TIFF format that claims `path`, if any. */
export async function pathFormatFor(path: string): Promise<PathSlideFormat | undefined> {
  for (const format of PATH_FORMATS) if (await format.claims(path)) return format;
  return undefined;
}

export interface Detection {
  format?: SlideFormat;
  /** Why each driver before the chosen one (or every driver) declined. */
  declined: { format: string; reason: string }[];
}

export function detectFormat(directories: TiffDirectory[]): Detection {
  const declined: Detection['declined'] = [];
  for (const format of FORMATS) {
    const reason = format.detect(directories);
    if (reason === undefined) return { format, declined };
    declined.push({ format: format.name, reason });
  }
  return { declined };
}
