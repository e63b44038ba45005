import type { TiffDirectory } from '../tiff/directory.js';
import { aperio } from './aperio.js';
import type { SlideFormat } from './format.js';
import { genericTiff } from './generic-tiff.js';
import { hamamatsu } from './hamamatsu.js';

/** Most specific first: a generic driver must not claim a vendor's file. */
export const FORMATS: readonly SlideFormat[] = [hamamatsu, aperio, genericTiff];

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
