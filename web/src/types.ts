/** The API's answers as the portal reads them (see docs/api.md). */

export const FACETS = ['organ', 'histology', 'stain', 'marker', 'differentiation', 'annotationMethod', 'dataset'] as const;
export type Facet = (typeof FACETS)[number];

export const FACET_LABELS: Record<Facet, string> = {
  organ: 'Organ',
  histology: 'Histology',
  stain: 'Stain',
  marker: 'IHC marker',
  differentiation: 'Differentiation',
  annotationMethod: 'Annotation method',
  dataset: 'Dataset',
};

export interface FacetCount {
  value: string;
  name: string;
  count: number;
}

export interface AnnotationLayerSummary {
  id: number;
  name: string;
  colour?: string;
}

export interface SlideItem {
  id: number;
  name: string;
  organ: string | null;
  organName: string | null;
  histology: string | null;
  histologyName: string | null;
  stain: string | null;
  stainName: string | null;
  marker: string | null;
  markerName: string | null;
  differentiation: string | null;
  differentiationName: string | null;
  annotationMethod: string | null;
  annotationMethodName: string | null;
  dataset: string | null;
  pathologyInfo: string | null;
  width: number;
  height: number;
  levelCount: number;
  mpp: { x: number | null; y: number | null } | null;
  objectivePower: number | null;
  fileSize: number;
  sha256: string | null;
  hasAnnotation: boolean;
  annotation: { layers?: AnnotationLayerSummary[]; regionCount?: number; tumourAreaMm2?: number } | null;
  createdAt: string;
  thumbnails: { small: string; large: string };
  tiles: string;
}

export interface SearchResult {
  items: SlideItem[];
  total: number;
  page: number | null;
  pageSize: number;
  facets: Record<Facet, FacetCount[]>;
}

/** A toolbox job as `GET /api/jobs` and `GET /api/jobs/:id` answer it (docs/api.md "Toolbox jobs"). */
export interface ToolboxJob {
  id: number;
  type: ToolboxJobType;
  slideId: number;
  parameters: Record<string, unknown>;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  progress: number;
  message: string | null;
  attempts: number;
  maxAttempts: number;
  error: string | null;
  results: { name: string; size: number; url: string }[];
  owner: { id: number; email: string } | null;
  createdAt: string;
}
export type ToolboxJobType = 'tissue-mask' | 'xml-masks' | 'patches' | 'stitch' | 'heatmap';

/** A release as `GET /api/datasets` lists it (docs/api.md "Site exchange"). */
export interface DatasetRelease {
  version: string;
  releasedAt: string;
  slides: number;
  slideBytes: number;
  annotations: number;
  /** Withdrawals recorded up to the release (its full bag lists them). */
  withdrawals: number;
  /** Slides of the release withdrawn since (from the dataset or the catalog): its bags leave them out. */
  withdrawnAfter: number;
}

export interface DatasetSummary {
  name: string;
  description: string | null;
  createdAt: string;
  members: number;
  withdrawals: number;
  /** Oldest first. */
  releases: DatasetRelease[];
}

/** `GET /api/site`: this site as partners see it. */
export interface SiteInfo {
  name: string;
  publicUrl: string;
  signingKey: { algorithm: string; publicKey: string; fingerprint: string };
}
