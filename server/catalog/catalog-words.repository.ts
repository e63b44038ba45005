import type { Knex } from 'knex';
import { wordsOf } from './catalog-words.js';

/** The word index's table (see catalog-words.ts and its migration). */
export const CATALOG_WORDS_TABLE = 'catalog_words';
/** The published slides counted by word and combination of facet values, kept by triggers (see the migration). */
export const CATALOG_WORD_COUNTS_TABLE = 'catalog_word_counts';
/** Rows per INSERT (SQLite's compound SELECT takes at most 500 terms). */
const INSERT_BATCH = 500;

export interface SlideText {
  id: number;
  name: string;
  pathologyInfo: string | null;
}

/** The index rows of some slides, replacing any they had: call it, in the writer's transaction, wherever a slide's name or pathology information is written. */
export async function writeCatalogWords(knex: Knex, slides: readonly SlideText[]): Promise<void> {
  if (slides.length === 0) return;
  const ids = slides.map((slide) => slide.id);
  for (let i = 0; i < ids.length; i += INSERT_BATCH) await knex(CATALOG_WORDS_TABLE).whereIn('slide_id', ids.slice(i, i + INSERT_BATCH)).del();
  const rows = slides.flatMap((slide) => wordsOf(slide.name, slide.pathologyInfo).map((word) => ({ word, slide_id: slide.id })));
  for (let i = 0; i < rows.length; i += INSERT_BATCH) await knex(CATALOG_WORDS_TABLE).insert(rows.slice(i, i + INSERT_BATCH));
}
