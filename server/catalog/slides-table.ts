import { fromDbJson } from '../db/index.js';
import type { Facet } from './filter.js';

/**
 * The slides table (the 02-slides and 03-catalog migrations): its name, its
 * columns, the row the drivers return, the column lists each kind of read
 * selects, and the mappers from a row's column groups to the objects
 * repositories hand out. A new column is added here (and in a migration);
 * the groups carry it to every read and write of the group.
 */
export const SLIDES_TABLE = 'slides';

/** A row as the drivers return it: MariaDB gives a BIGINT as a string, and a DATETIME as a Date. */
export interface SlideRow {
  id: number;
  /** The nomenclature name, unique across the catalog. */
  name: string;
  /** Relative to the slide store (config paths.slides), or absolute. */
  file_path: string;
  file_size: number | string;
  /** SHA-256 of the published file, as ingest recorded it. */
  sha256: string | null;
  vendor: string;
  width: number;
  height: number;
  level_count: number;
  mpp_x: number | null;
  mpp_y: number | null;
  objective_power: number | null;
  status: string;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  pathology_info: string | null;
  annotation_method: string | null;
  dataset: string | null;
  /** SHA-256 of the original as it arrived, so that a second ingest of it is recognised. */
  original_sha256: string | null;
  /** The scrubbed Aperio XML, relative to the slide store; null when the slide has none. */
  annotation_path: string | null;
  /** JSON text: what ingest recorded about the annotation (annotations/summary.ts). */
  annotation_summary: unknown;
  /** The scanner vendor of the original (aperio, hamamatsu, dicom, OpenSlide's vendor of a converted slide, generic); null for slides from before it was recorded. */
  scanner_vendor: string | null;
  /** The original's format (svs, ndpi, tiff, dicom, mrxs, vms, …); null for slides from before it was recorded. */
  original_format: string | null;
  created_at: string | Date;
  updated_at: string | Date;
}

export type SlideColumn = keyof SlideRow;

/** The values of the status column; the catalog, tiles and downloads show published slides only. */
export const SLIDE_STATUSES = ['published', 'withdrawn'] as const;
export type SlideStatus = (typeof SLIDE_STATUSES)[number];

/** The row a read of these columns gives. */
export type SlideRowOf<Columns extends readonly SlideColumn[]> = Pick<SlideRow, Columns[number]>;

/** Where the published file is, its size and checksum. */
export const FILE_COLUMNS = ['file_path', 'file_size', 'sha256'] as const satisfies readonly SlideColumn[];
/** What the slide reader found in the file, but for its vendor. */
export const GEOMETRY_COLUMNS = ['width', 'height', 'level_count', 'mpp_x', 'mpp_y', 'objective_power'] as const satisfies readonly SlideColumn[];
export const FACT_COLUMNS = ['vendor', ...GEOMETRY_COLUMNS] as const satisfies readonly SlideColumn[];
/** The diagnostic metadata: vocabulary codes, the dataset, and free text. */
export const METADATA_COLUMNS = [
  'organ',
  'histology',
  'stain',
  'marker',
  'differentiation',
  'pathology_info',
  'annotation_method',
  'dataset',
] as const satisfies readonly SlideColumn[];
export const ANNOTATION_COLUMNS = ['annotation_path', 'annotation_summary'] as const satisfies readonly SlideColumn[];
/** What the slide came from: shown to staff only, and in downloads' metadata. */
export const ORIGIN_COLUMNS = ['scanner_vendor', 'original_format'] as const satisfies readonly SlideColumn[];

export const SLIDE_COLUMNS = [
  'id',
  'name',
  ...FILE_COLUMNS,
  ...FACT_COLUMNS,
  'status',
  ...METADATA_COLUMNS,
  'original_sha256',
  ...ANNOTATION_COLUMNS,
  ...ORIGIN_COLUMNS,
  'created_at',
  'updated_at',
] as const satisfies readonly SlideColumn[];
// Fails to compile when SlideRow gains a column that SLIDE_COLUMNS lacks.
const _everyColumn: [Exclude<SlideColumn, (typeof SLIDE_COLUMNS)[number]>] extends [never] ? true : false = true;

/** The column of each catalog facet. */
export const FACET_COLUMNS: Record<Facet, (typeof METADATA_COLUMNS)[number]> = {
  organ: 'organ',
  histology: 'histology',
  stain: 'stain',
  marker: 'marker',
  differentiation: 'differentiation',
  annotationMethod: 'annotation_method',
  dataset: 'dataset',
};

/** The catalog's facets that only staff see: what the slides came from. */
export const STAFF_FACET_COLUMNS = { scannerVendor: 'scanner_vendor', originalFormat: 'original_format' } as const satisfies Record<string, (typeof ORIGIN_COLUMNS)[number]>;
export type StaffFacet = keyof typeof STAFF_FACET_COLUMNS;
export const STAFF_FACETS = Object.keys(STAFF_FACET_COLUMNS) as StaffFacet[];

/** A published slide as the catalog shows it: never its file's or annotation's path, nor the original's checksum (`has_annotation` is computed beside it). */
export const CATALOG_COLUMNS = [
  'id',
  'name',
  ...METADATA_COLUMNS,
  ...GEOMETRY_COLUMNS,
  'file_size',
  'sha256',
  'annotation_summary',
  'created_at',
] as const satisfies readonly SlideColumn[];
/** A published slide as downloads need it: its files, what the catalog says about them, and its metadata. */
export const DOWNLOAD_COLUMNS = ['id', 'name', ...FILE_COLUMNS, ...GEOMETRY_COLUMNS, ...METADATA_COLUMNS, ...ANNOTATION_COLUMNS, ...ORIGIN_COLUMNS] as const satisfies readonly SlideColumn[];
/** A slide of any status in the curators' list. */
export const MANAGED_COLUMNS = ['id', 'name', 'status', 'organ', 'histology', 'stain', 'dataset', 'file_size', 'created_at', 'updated_at'] as const satisfies readonly SlideColumn[];
/** What the annotation review needs to know of a slide. */
export const REVIEWED_COLUMNS = ['id', 'name', 'status', 'width', 'height', 'mpp_x', 'mpp_y', 'organ', 'annotation_path', 'annotation_method'] as const satisfies readonly SlideColumn[];
/** A local slide that an import compares with a bag's slide of the same name. */
export const LOCAL_COLUMNS = ['id', 'name', ...FILE_COLUMNS, 'status', 'annotation_path'] as const satisfies readonly SlideColumn[];
export const STATUS_COLUMNS = ['id', 'status'] as const satisfies readonly SlideColumn[];

/** The file's columns as an object's fields. */
export interface StoredFile {
  filePath: string;
  fileSize: number;
  sha256: string | null;
}

export interface SlideGeometry {
  width: number;
  height: number;
  levelCount: number;
  mppX: number | null;
  mppY: number | null;
  objectivePower: number | null;
}

export interface StoredFacts extends SlideGeometry {
  vendor: string;
}

/** The metadata as stored: a slide from before ingest recorded metadata has none. */
export interface StoredMetadata {
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  /** Further pathological information, free text checked for identifiers before publishing. */
  pathologyInfo: string | null;
  annotationMethod: string | null;
  dataset: string | null;
}

/** What a slide came from, as ingest recorded it (null where it did not). */
export interface SlideOrigin {
  scannerVendor: string | null;
  originalFormat: string | null;
}

export function originOf(row: SlideRowOf<typeof ORIGIN_COLUMNS>): SlideOrigin {
  return { scannerVendor: row.scanner_vendor, originalFormat: row.original_format };
}

export function originColumns(origin: SlideOrigin): SlideRowOf<typeof ORIGIN_COLUMNS> {
  return { scanner_vendor: origin.scannerVendor, original_format: origin.originalFormat };
}

export function fileOf(row: SlideRowOf<typeof FILE_COLUMNS>): StoredFile {
  return { filePath: row.file_path, fileSize: Number(row.file_size), sha256: row.sha256 };
}

export function fileColumns(file: StoredFile): SlideRowOf<typeof FILE_COLUMNS> {
  return { file_path: file.filePath, file_size: file.fileSize, sha256: file.sha256 };
}

export function geometryOf(row: SlideRowOf<typeof GEOMETRY_COLUMNS>): SlideGeometry {
  return {
    width: row.width,
    height: row.height,
    levelCount: row.level_count,
    mppX: row.mpp_x,
    mppY: row.mpp_y,
    objectivePower: row.objective_power,
  };
}

export function factsOf(row: SlideRowOf<typeof FACT_COLUMNS>): StoredFacts {
  return { vendor: row.vendor, ...geometryOf(row) };
}

export function factsColumns(facts: StoredFacts): SlideRowOf<typeof FACT_COLUMNS> {
  return {
    vendor: facts.vendor,
    width: facts.width,
    height: facts.height,
    level_count: facts.levelCount,
    mpp_x: facts.mppX,
    mpp_y: facts.mppY,
    objective_power: facts.objectivePower,
  };
}

export function metadataOf(row: SlideRowOf<typeof METADATA_COLUMNS>): StoredMetadata {
  return {
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    marker: row.marker,
    differentiation: row.differentiation,
    pathologyInfo: row.pathology_info,
    annotationMethod: row.annotation_method,
    dataset: row.dataset,
  };
}

export function metadataColumns(metadata: StoredMetadata): SlideRowOf<typeof METADATA_COLUMNS> {
  return {
    organ: metadata.organ,
    histology: metadata.histology,
    stain: metadata.stain,
    marker: metadata.marker,
    differentiation: metadata.differentiation,
    pathology_info: metadata.pathologyInfo,
    annotation_method: metadata.annotationMethod,
    dataset: metadata.dataset,
  };
}

/** The stored annotation summary, parsed; null when there is none. */
export function annotationSummaryOf<T = unknown>(row: SlideRowOf<['annotation_summary']>): T | null {
  return row.annotation_summary == null ? null : fromDbJson<T>(row.annotation_summary);
}

/** An annotation summary as the column stores it. */
export function summaryColumn(summary: unknown): string | null {
  return summary === null || summary === undefined ? null : JSON.stringify(summary);
}
