/**
 * The words of the catalog's word index (`catalog_words`, see its migration
 * and catalog-words.repository.ts): every word of a slide's name and
 * pathology information, one row per (word, slide), so that a text search
 * finds its slides by seeking the index instead of reading every slide's
 * text.
 *
 * A word is a run of letters, digits and combining marks, taken from the text
 * in Unicode normal form C, lower-cased by JavaScript (never by the database,
 * so that both databases hold and compare the same bytes), and cut to
 * MAX_WORD_LENGTH characters. `SB1-LV-HCC-IHC_KI67-MD-00-00-7QX4…` gives
 * sb1, lv, hcc, ihc, ki67, md, 00 and 7qx4…; `Gleason score 3+4=7` gives
 * gleason, score, 3, 4 and 7.
 *
 * Every writer of a slide's name or pathology information writes its words in
 * the same transaction (`writeCatalogWords`, catalog-words.repository.ts); a
 * deleted slide's words go with it (the foreign key cascades). Words are kept
 * for slides of every status: the search reads only published slides.
 */

/** Characters kept of a word (and of a searched word): longer words are cut, and match by their first characters. */
export const MAX_WORD_LENGTH = 64;
const WORD = /[\p{L}\p{M}\p{N}]+/gu;

/** The distinct words of some texts, in order of first appearance. */
export function wordsOf(...texts: (string | null | undefined)[]): string[] {
  const words = new Set<string>();
  for (const text of texts) {
    if (!text) continue;
    for (const [word] of text.normalize('NFC').toLowerCase().matchAll(WORD)) words.add(cut(word));
  }
  return [...words];
}

function cut(word: string): string {
  const characters = Array.from(word);
  return characters.length <= MAX_WORD_LENGTH ? word : characters.slice(0, MAX_WORD_LENGTH).join('');
}

/**
 * The range of stored words that start with `prefix`: `word >= from AND word
 * < to`, in code point order, which is how SQLite's BINARY collation and the
 * column's utf8mb4_bin on MariaDB compare. `to` is `prefix` with its last
 * character replaced by the next code point.
 */
export function prefixRange(prefix: string): { from: string; to: string } {
  const characters = Array.from(prefix);
  const last = characters.pop();
  if (last === undefined) throw new Error('an empty word has no prefix range');
  let next = last.codePointAt(0)! + 1;
  // Surrogate code points are not characters: the next one after U+D7FF is U+E000.
  if (next >= 0xd800 && next <= 0xdfff) next = 0xe000;
  return { from: prefix, to: characters.join('') + String.fromCodePoint(next) };
}
