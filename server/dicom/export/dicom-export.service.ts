import { stat } from 'node:fs/promises';
import path from 'node:path';
import { version } from '../../package-info.js';
import { exportSlideAsDicom, type ExportResult } from '../../wsi/dicom-writer/index.js';
import type { DicomExportRepository, ExportableSlide } from './dicom-export.repository.js';
import { copyPublishedSeries } from './published-series.js';

export class DicomExportError extends Error {}

export interface DicomExportSettings {
  /** The slide store (paths.slides): catalog file paths are relative to it. */
  slideStore: string;
  /** dicom.uidRoot: empty for 2.25 UIDs. */
  uidRoot: string;
}

/**
 * Published slides as DICOM whole-slide series (server/wsi/dicom-writer):
 * the catalog gives the file, the published name (the Container Identifier)
 * and the publication date; the UIDs derive from the slide's id and checksum,
 * so a slide exported twice names the same study, series and instances.
 */
export class DicomExportService {
  constructor(
    private readonly slides: DicomExportRepository,
    private readonly settings: DicomExportSettings,
  ) {}

  async slide(id: number): Promise<ExportableSlide> {
    const slide = await this.slides.findSlide(id);
    if (!slide) throw new DicomExportError(`no slide ${id}`);
    if (slide.status !== 'published') throw new DicomExportError(`slide ${id} (${slide.name}) is ${slide.status}, not published`);
    return slide;
  }

  /** Write slide `id` as one DICOM series into `outDir`. */
  async exportSlide(id: number, outDir: string, onProgress?: (done: number, total: number) => void): Promise<{ slide: ExportableSlide; result: ExportResult }> {
    const slide = await this.slide(id);
    const file = path.resolve(this.settings.slideStore, slide.filePath);
    // A slide ingested from DICOM is published as a de-identified series already: its instances are what is exported.
    if ((await stat(file)).isDirectory()) return { slide, result: await copyPublishedSeries(file, outDir) };
    const result = await exportSlideAsDicom(file, outDir, {
      name: slide.name,
      published: slide.publishedAt,
      softwareVersion: version,
      uidKey: uidKey(slide),
      ...(this.settings.uidRoot ? { uidRoot: this.settings.uidRoot } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
    return { slide, result };
  }
}

/** The name the UIDs derive from: the slide's id and the checksum of its published file. */
export function uidKey(slide: Pick<ExportableSlide, 'id' | 'sha256' | 'fileSize'>): string {
  return `slidebank-slide:${slide.id}:${slide.sha256 ?? `size-${slide.fileSize}`}`;
}
