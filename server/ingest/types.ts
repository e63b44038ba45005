/** The controlled vocabularies (config/vocabularies.json): codes go into names and the catalog, names to people. */
export interface VocabularyEntry {
  code: string;
  name: string;
}

/** Metadata fields an organ may require beyond organ, histology and stain. */
export type RequirableField = 'differentiation' | 'pathologyInfo' | 'annotationMethod' | 'marker';

export interface OrganEntry extends VocabularyEntry {
  histologies: VocabularyEntry[];
  requiredFields: RequirableField[];
}

export interface StainEntry extends VocabularyEntry {
  requiresMarker: boolean;
}

export interface Vocabulary {
  version: number;
  organs: OrganEntry[];
  stains: StainEntry[];
  markers: VocabularyEntry[];
  differentiations: VocabularyEntry[];
  annotationMethods: VocabularyEntry[];
}

/** The diagnostic facts of one slide, as vocabulary codes; what the catalog publishes. */
export interface SlideMetadata {
  organ: string;
  histology: string;
  stain: string;
  marker: string | null;
  differentiation: string | null;
  /** Further pathological information, free text checked for identifiers before publishing. */
  pathologyInfo: string | null;
  annotationMethod: string | null;
  dataset: string | null;
}
