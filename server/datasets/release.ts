import type { SlideMetadata } from '../ingest/types.js';

/** What a release froze of one slide: enough to export it byte for byte later and to describe it without the catalog. */
export interface ReleasedSlide {
  /** The slide's id on the releasing site (the export's download URLs use it). */
  id: number;
  /** The nomenclature name. */
  name: string;
  /** The file's name in the bag and in a mirror's slide store: `<name>.svs`. */
  fileName: string;
  size: number;
  sha256: string;
  /** The released annotation, copied aside at release time (see DatasetsService.release). */
  annotation: { fileName: string; size: number; sha256: string } | null;
  metadata: SlideMetadata;
  facts: { vendor: string; width: number; height: number; levelCount: number; mppX: number | null; mppY: number | null; objectivePower: number | null };
  annotationSummary: unknown;
}

export interface Release {
  id: number;
  datasetId: number;
  dataset: string;
  version: string;
  createdAt: Date;
  createdBy: string;
  slides: ReleasedSlide[];
}

export interface Withdrawal {
  id: number;
  slideId: number;
  slideName: string;
  /** The last release that held the slide. */
  releaseVersion: string | null;
  reason: string;
  createdAt: Date;
}

export interface Dataset {
  id: number;
  name: string;
  description: string | null;
  createdAt: Date;
}
