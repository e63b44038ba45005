/**
 * What the catalog records a slide came from: the scanner vendor and the
 * original's format, from the format ingest recognised by the content (and,
 * for a converted slide, OpenSlide's vendor and the format's name).
 */
import type { SlideOrigin } from '../catalog/slides-table.js';
import type { OpenSlideInfo } from './convert.js';

/** The slide engine's format names, with what each says of the original. */
const BY_ENGINE_FORMAT: Readonly<Record<string, { scannerVendor: string; originalFormat: string }>> = {
  aperio: { scannerVendor: 'aperio', originalFormat: 'svs' },
  hamamatsu: { scannerVendor: 'hamamatsu', originalFormat: 'ndpi' },
  'generic-tiff': { scannerVendor: 'generic', originalFormat: 'tiff' },
  // DICOM is manufacturer-neutral: the manufacturer is an attribute of the series, not a format.
  dicom: { scannerVendor: 'dicom', originalFormat: 'dicom' },
};

export function slideOrigin(engineFormat: string | undefined, converted: OpenSlideInfo | undefined): SlideOrigin {
  if (converted) return { scannerVendor: converted.vendor, originalFormat: converted.format };
  return (engineFormat ? BY_ENGINE_FORMAT[engineFormat] : undefined) ?? { scannerVendor: null, originalFormat: engineFormat ?? null };
}
