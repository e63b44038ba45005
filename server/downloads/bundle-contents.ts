import { displayName, type VocabularyField } from '../catalog/vocabulary.js';
import type { Vocabulary } from '../ingest/types.js';
import { csvText } from '../lib/csv.js';
import type { DownloadableSlide } from './downloads.repository.js';
import { formatBytes } from './limits.js';
import type { FileKind } from './manifest.js';

/**
 * The small files of a ZIP bundle, made in memory before the first byte is
 * sent: `README.txt`, `metadata.csv`, `metadata.json` and
 * `manifest-sha256.txt`.
 */

export const LICENCE = {
  name: 'Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0)',
  id: 'CC-BY-NC-4.0',
  url: 'https://creativecommons.org/licenses/by-nc/4.0/',
} as const;

/** A file of a selection, on disk and in the bundle. */
export interface SelectedFile {
  slide: DownloadableSlide;
  kind: FileKind;
  /** Path inside the bundle (and under `slidebank fetch --out`). */
  path: string;
  /** Absolute path on this server; never shown to clients. */
  file: string;
  size: number;
  /** Lower-case hex: from the catalog for slides, computed for annotations. */
  sha256: string | null;
  mtime: Date;
}

/** A slide with the files that go with it. */
export interface SelectedSlide {
  slide: DownloadableSlide;
  files: SelectedFile[];
}

export interface BundleDescription {
  /** The canonical filter expression, or the slide ids, as asked for. */
  selection: { filter: string } | { slides: number[] };
  createdAt: Date;
  /** Who the bundle is for: the user id, for the record. */
  userId: number | null;
  /** The data use agreement the download falls under, as text for the README. */
  duaReference: string;
  /** The address the server was reached at, for the README. */
  origin: string;
}

export const BUNDLE_PATHS = {
  readme: 'README.txt',
  csv: 'metadata.csv',
  json: 'metadata.json',
  manifest: 'manifest-sha256.txt',
} as const;

/** Where a slide's files go in a bundle; the slide keeps its own extension (.svs, or .tif for generic TIFF). */
export function bundlePath(slide: Pick<DownloadableSlide, 'name' | 'filePath'>, kind: FileKind): string {
  if (kind === 'annotation') return `annotations/${slide.name}.xml`;
  const extension = /\.(svs|tiff?)$/i.exec(slide.filePath)?.[0].toLowerCase() ?? '.svs';
  return `slides/${slide.name}${extension}`;
}

type NamedField = 'organ' | 'histology' | 'stain' | 'marker' | 'differentiation' | 'annotationMethod';
const NAMED_FIELDS: [NamedField, VocabularyField][] = [
  ['organ', 'organ'],
  ['histology', 'histology'],
  ['stain', 'stain'],
  ['marker', 'marker'],
  ['differentiation', 'differentiation'],
  ['annotationMethod', 'annotationMethod'],
];

/** Each slide's catalog record with codes and their display names, dimensions, resolution and checksums. */
export function metadataRecords(slides: SelectedSlide[], vocabulary: Vocabulary) {
  return slides.map(({ slide, files }) => {
    const slideFile = files.find((f) => f.kind === 'slide')!;
    const annotation = files.find((f) => f.kind === 'annotation');
    const coded = Object.fromEntries(
      NAMED_FIELDS.map(([key, field]) => {
        const code = slide[key];
        const name = code === null ? null : displayName(vocabulary, field, code, field === 'histology' ? (slide.organ ?? undefined) : undefined);
        return [key, code === null ? null : { code, name }];
      }),
    ) as Record<NamedField, { code: string; name: string } | null>;
    return {
      id: slide.id,
      name: slide.name,
      ...coded,
      dataset: slide.dataset,
      pathologyInfo: slide.pathologyInfo,
      width: slide.width,
      height: slide.height,
      levelCount: slide.levelCount,
      mpp: slide.mppX === null && slide.mppY === null ? null : { x: slide.mppX, y: slide.mppY },
      objectivePower: slide.objectivePower,
      /** What the slide came from: the scanner vendor and the original's format (null for slides ingested before they were recorded). */
      scannerVendor: slide.scannerVendor,
      originalFormat: slide.originalFormat,
      slideFile: { path: slideFile.path, size: slideFile.size, sha256: slideFile.sha256 },
      annotationFile: annotation ? { path: annotation.path, size: annotation.size, sha256: annotation.sha256 } : null,
      annotation: slide.annotationSummary ?? null,
    };
  });
}

export type MetadataRecord = ReturnType<typeof metadataRecords>[number];

const CSV_COLUMNS = [
  'id',
  'name',
  'organ',
  'organ_name',
  'histology',
  'histology_name',
  'stain',
  'stain_name',
  'marker',
  'marker_name',
  'differentiation',
  'differentiation_name',
  'annotation_method',
  'annotation_method_name',
  'dataset',
  'pathology_info',
  'width',
  'height',
  'level_count',
  'mpp_x',
  'mpp_y',
  'objective_power',
  'slide_file',
  'slide_size',
  'slide_sha256',
  'annotation_file',
  'annotation_size',
  'annotation_sha256',
  'scanner_vendor',
  'original_format',
] as const;

/** One row per slide; a cell that a spreadsheet would run as a formula (= + - @) is prefixed with ' (metadata.json has the values as they are). */
export function metadataCsv(records: MetadataRecord[]): string {
  const rows = records.map((r) => ({
    id: r.id,
    name: r.name,
    organ: r.organ?.code ?? '',
    organ_name: r.organ?.name ?? '',
    histology: r.histology?.code ?? '',
    histology_name: r.histology?.name ?? '',
    stain: r.stain?.code ?? '',
    stain_name: r.stain?.name ?? '',
    marker: r.marker?.code ?? '',
    marker_name: r.marker?.name ?? '',
    differentiation: r.differentiation?.code ?? '',
    differentiation_name: r.differentiation?.name ?? '',
    annotation_method: r.annotationMethod?.code ?? '',
    annotation_method_name: r.annotationMethod?.name ?? '',
    dataset: r.dataset ?? '',
    pathology_info: r.pathologyInfo ?? '',
    width: r.width,
    height: r.height,
    level_count: r.levelCount,
    mpp_x: r.mpp?.x ?? '',
    mpp_y: r.mpp?.y ?? '',
    objective_power: r.objectivePower ?? '',
    slide_file: r.slideFile.path,
    slide_size: r.slideFile.size,
    slide_sha256: r.slideFile.sha256 ?? '',
    annotation_file: r.annotationFile?.path ?? '',
    annotation_size: r.annotationFile?.size ?? '',
    annotation_sha256: r.annotationFile?.sha256 ?? '',
    scanner_vendor: r.scannerVendor ?? '',
    original_format: r.originalFormat ?? '',
  }));
  return csvText(rows, { columns: CSV_COLUMNS });
}

export function metadataJson(records: MetadataRecord[], description: BundleDescription): string {
  return `${JSON.stringify(
    {
      format: 'slidebank-bundle',
      version: 1,
      createdAt: description.createdAt.toISOString(),
      selection: description.selection,
      licence: LICENCE,
      slides: records,
    },
    null,
    2,
  )}\n`;
}

/** `sha256sum -c` format: `<hex>  <path>`, one line per file, sorted by path. */
export function sha256Manifest(entries: { path: string; sha256: string }[]): string {
  return [...entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => `${e.sha256}  ${e.path}\n`)
    .join('');
}

export function readme(slides: SelectedSlide[], description: BundleDescription): string {
  const files = slides.flatMap((s) => s.files);
  const bytes = files.reduce((sum, f) => sum + f.size, 0);
  const annotated = slides.filter((s) => s.files.some((f) => f.kind === 'annotation')).length;
  const selection =
    'filter' in description.selection
      ? `catalog filter "${description.selection.filter}"`
      : `slide ids ${description.selection.slides.join(', ')}`;
  return [
    'Slidebank download',
    '==================',
    '',
    `Created:   ${description.createdAt.toISOString()} by ${description.origin}`,
    `For:       ${description.userId === null ? 'an unidentified user' : `Slidebank user #${description.userId}`}`,
    `Selection: ${selection}`,
    `Contents:  ${slides.length} slide(s), ${annotated} with annotations; ${files.length} file(s), ${formatBytes(bytes)} (${bytes} bytes)`,
    '',
    'Licence and terms of use',
    '------------------------',
    `The images, annotations and metadata in this archive are licensed under the`,
    `${LICENCE.name}:`,
    `${LICENCE.url}`,
    '',
    'You received them under a data use agreement, which binds you beyond the licence:',
    `    ${description.duaReference}`,
    'Use the data only for the research that agreement names; do not try to identify',
    'any person; do not pass the data on; report your use as the agreement requires.',
    '',
    'Contents',
    '--------',
    'slides/               the de-identified whole-slide images (Aperio SVS; label and macro',
    '                      images removed), named by the Slidebank nomenclature',
    'annotations/          the pathologists\' annotations of those slides (Aperio ImageScope XML)',
    'metadata.csv          one row per slide: vocabulary codes and their names, dimensions,',
    '                      microns per pixel, file names, sizes and SHA-256 checksums,',
    '                      the scanner vendor and the original\'s format',
    '                      (cells starting with = + - @ are prefixed with \' for spreadsheets)',
    'metadata.json         the same, with the values as they are and annotation summaries',
    'manifest-sha256.txt   the SHA-256 of every other file in this archive',
    '',
    'Check the files after unpacking:',
    '    sha256sum -c manifest-sha256.txt',
    'The checksums of the slides are the ones recorded when they were published, not',
    'recomputed for this archive: a match proves the copy is the published file.',
    '',
  ].join('\n');
}
