import { csvText } from '../lib/csv.js';
import type { ReleasedSlide, Release, Withdrawal } from './release.js';

/** The version of `data/metadata.json`'s shape; a reader refuses versions it does not know. */
export const METADATA_SCHEMA_VERSION = 1;

export interface BagSlide {
  name: string;
  /** Payload paths, relative to `data/`. */
  file: string;
  size: number;
  sha256: string;
  annotation: { xml: string; geojson: string; size: number; sha256: string } | null;
  /** In an incremental bag, which of the slide's files this bag carries (the rest the mirror has from earlier versions). */
  included: { slide: boolean; annotation: boolean };
  metadata: ReleasedSlide['metadata'];
  facts: ReleasedSlide['facts'];
  annotationSummary: unknown;
}

export interface BagWithdrawal {
  name: string;
  reason: string;
  withdrawnAt: string;
  /** The last version that held the slide. */
  lastVersion: string | null;
}

/**
 * The tag file that names the slides of a release which a bag leaves out
 * because they were withdrawn after the release was made (from the dataset,
 * or from this site's catalog). It is a tag file, not payload: the payload
 * is what the bag carries, this is a notice about it, and the signed tag
 * manifest vouches for it. An importing site withdraws the slides it has
 * under these names and checksums.
 */
export const WITHDRAWN_TAG_FILE = 'slidebank-withdrawn.json';

export interface WithdrawnNotice {
  schemaVersion: typeof METADATA_SCHEMA_VERSION;
  withdrawn: WithdrawnSlideNotice[];
}

export interface WithdrawnSlideNotice {
  name: string;
  /** The slide file's SHA-256: a site withdraws its slide of that name only when it is these bytes. */
  sha256: string;
  reason: string;
  /** ISO time; null when it is not known. */
  withdrawnAt: string | null;
}

/** `data/metadata.json`: the whole release as it is served now (without the slides withdrawn since, see WITHDRAWN_TAG_FILE), whatever part of it this bag carries. */
export interface BagMetadata {
  schemaVersion: number;
  dataset: string;
  version: string;
  /** Set in an incremental bag: the version it applies on top of. */
  since: string | null;
  releasedAt: string;
  source: { site: string; url: string; publicKey: string };
  license: string;
  slides: BagSlide[];
  withdrawals: BagWithdrawal[];
}

export function bagSlide(slide: ReleasedSlide, included: BagSlide['included']): BagSlide {
  return {
    name: slide.name,
    file: `slides/${slide.fileName}`,
    size: slide.size,
    sha256: slide.sha256,
    annotation: slide.annotation
      ? { xml: `annotations/${slide.annotation.fileName}`, geojson: `annotations/${slide.name}.geojson`, size: slide.annotation.size, sha256: slide.annotation.sha256 }
      : null,
    included,
    metadata: slide.metadata,
    facts: slide.facts,
    annotationSummary: slide.annotationSummary,
  };
}

export function bagWithdrawal(w: Withdrawal): BagWithdrawal {
  return { name: w.slideName, reason: w.reason, withdrawnAt: w.createdAt.toISOString(), lastVersion: w.releaseVersion };
}

const CSV_COLUMNS = [
  'name', 'file', 'size', 'sha256', 'organ', 'histology', 'stain', 'marker', 'differentiation', 'annotation_method', 'dataset', 'pathology_info',
  'vendor', 'width', 'height', 'levels', 'mpp_x', 'mpp_y', 'objective_power', 'annotation_xml', 'annotation_geojson', 'annotation_sha256', 'in_this_bag',
];

/** `data/metadata.csv`: one row per slide of the release, for spreadsheets; metadata.json is the complete form. */
export function metadataCsv(slides: readonly BagSlide[]): string {
  return csvText(
    slides.map((s) => [
      s.name, s.file, s.size, s.sha256, s.metadata.organ, s.metadata.histology, s.metadata.stain, s.metadata.marker ?? '', s.metadata.differentiation ?? '',
      s.metadata.annotationMethod ?? '', s.metadata.dataset ?? '', s.metadata.pathologyInfo ?? '', s.facts.vendor, s.facts.width, s.facts.height,
      s.facts.levelCount, s.facts.mppX ?? '', s.facts.mppY ?? '', s.facts.objectivePower ?? '', s.annotation?.xml ?? '', s.annotation?.geojson ?? '',
      s.annotation?.sha256 ?? '', s.included.slide ? 'yes' : 'no',
    ]),
    { columns: CSV_COLUMNS },
  );
}

export function licenseText(release: Pick<Release, 'dataset' | 'version'>, site: { name: string; url: string }): string {
  return [
    `${release.dataset} version ${release.version}, from ${site.name} (${site.url})`,
    '',
    'Licence: Creative Commons Attribution-NonCommercial 4.0 International (CC BY-NC 4.0)',
    'https://creativecommons.org/licenses/by-nc/4.0/legalcode',
    '',
    'Data use agreement: these de-identified slides, annotations and metadata may only be used',
    `under a data use agreement (DUA) with ${site.name}: the DUA of the researcher who downloaded`,
    `them (see ${site.url}), or, for a partner site mirroring this dataset, the institutional`,
    `agreement between the partner and ${site.name}. Do not attempt to re-identify any person.`,
    '',
  ].join('\n');
}
