import type { Knex } from 'knex';
import { collationKey, dialectOf, fromDbTime } from '../db/index.js';
import { CATALOG_WORD_COUNTS_TABLE, CATALOG_WORDS_TABLE } from './catalog-words.repository.js';
import { prefixRange, wordsOf } from './catalog-words.js';
import { CountsCache } from './counts-cache.js';
import type { Facet } from './filter.js';
import {
  CATALOG_COLUMNS,
  FACET_COLUMNS,
  SLIDES_TABLE,
  STAFF_FACET_COLUMNS,
  annotationSummaryOf,
  geometryOf,
  metadataOf,
  type SlideColumn,
  type SlideGeometry,
  type SlideRowOf,
  type StaffFacet,
  type StoredMetadata,
} from './slides-table.js';

/** One term of a text search: it matches a slide by the words of its name and pathology information (see `whereText`), or by a code whose display name matched. */
export interface TextTerm {
  text: string;
  codes: Partial<Record<Facet, string[]>>;
}

/** Which published slides: values OR-ed within a facet, facets AND-ed, and every term matching somewhere. */
export interface CatalogCriteria {
  facets: Partial<Record<Facet, string[]>>;
  /** What the slides came from (scanner vendor, original format): staff's filters, which the service lets only staff give. */
  origins?: Partial<Record<StaffFacet, string[]>>;
  terms: TextTerm[];
}

/** Matching slides counted by each value of every facet (staff's too), each facet under every condition but its own. */
export interface CatalogCounts {
  total: number;
  facets: Record<Facet | StaffFacet, { value: string; count: number }[]>;
}

export type SortKey = 'name' | 'created' | 'size';
export interface CatalogSort {
  key: SortKey;
  direction: 'asc' | 'desc';
}

const SORT_COLUMNS: Record<SortKey, SlideColumn> = { name: 'name', created: 'created_at', size: 'file_size' };

/** What ingest records about a slide's annotation (see the catalog migration), passed on as stored. */
export interface AnnotationSummary {
  layers: unknown[];
  regionCount: number;
  tumourAreaMm2: number | null;
}

/** A published slide as the catalog shows it: never its file paths nor the original's checksum. */
export interface CatalogSlide extends StoredMetadata, SlideGeometry {
  id: number;
  name: string;
  fileSize: number;
  sha256: string | null;
  hasAnnotation: boolean;
  annotationSummary: AnnotationSummary | null;
  createdAt: Date;
}

export interface GroupCount<K extends string> {
  values: Record<K, string | null>;
  count: number;
}

type CatalogRow = SlideRowOf<typeof CATALOG_COLUMNS> & { has_annotation: number | string | bigint };

/** Whether an annotation file exists, without ever reading its path out of the database. */
const HAS_ANNOTATION = 'CASE WHEN annotation_path IS NULL THEN 0 ELSE 1 END AS has_annotation';

/**
 * Every query of the catalog search over published slides. A text search
 * reads the word index (catalog-words.ts). LIKE escapes with `!`, which means
 * the same on SQLite and MariaDB (a backslash does not: it is an escape
 * inside MariaDB's string literals).
 */
export class CatalogRepository {
  constructor(private readonly knex: Knex) {
    this.caseInsensitive = dialectOf(knex) === 'mariadb';
  }

  async search(criteria: CatalogCriteria, sort: CatalogSort, offset: number, limit: number): Promise<{ slides: CatalogSlide[]; total: number }> {
    const [slides, counts] = await Promise.all([this.page(criteria, sort, offset, limit), this.counts(criteria)]);
    return { slides, total: counts.total };
  }

  /**
   * One page of the matching slides, read in the sort's order from its index
   * (see the catalog-counts migration): first the page's ids, which the index
   * holds, so that the rows an offset skips are never read; then those rows.
   * Given how many slides match (`matching`, from `counts`), a page past
   * them is not looked for, and on SQLite a filter that matches few slides
   * reads them from its facet's index and sorts them, rather than walking
   * the sort's index past the many that do not match (see `sorts`).
   */
  async page(criteria: CatalogCriteria, sort: CatalogSort, offset: number, limit: number, matching?: number): Promise<CatalogSlide[]> {
    if (matching !== undefined && offset >= matching) return [];
    const column = SORT_COLUMNS[sort.key];
    const filtered = this.conditions(criteria).length > 0;
    const sorted = matching !== undefined && filtered && criteria.terms.length === 0 && (await this.sorts(matching, offset + limit));
    const order = (name: string) => (sorted ? this.knex.raw('+??', [name]) : name) as string;
    const ids = (
      (await this.published(criteria, (await this.walks(criteria, offset + limit, matching)) ? 'walk' : 'any')
        .select('id')
        .orderBy([
          { column: order(column), order: sort.direction },
          { column: order('id'), order: sort.direction },
        ])
        .offset(offset)
        .limit(limit)) as { id: number }[]
    ).map((row) => Number(row.id));
    if (ids.length === 0) return [];
    const rows = (await this.knex(SLIDES_TABLE).whereIn('id', ids).select(CATALOG_COLUMNS).select(this.knex.raw(HAS_ANNOTATION))) as CatalogRow[];
    const byId = new Map(rows.map((row) => [Number(row.id), row]));
    // A slide withdrawn between the two reads is left out.
    return ids.flatMap((id) => {
      const row = byId.get(id);
      return row ? [toSlide(row)] : [];
    });
  }

  /**
   * Whether a page of a facet filter is better found by reading the slides
   * it matches and sorting them than by walking the sort's index (reading
   * about `end` × published / matching entries of it). SQLite's planner
   * walks the index whatever the filter's share; MariaDB's weighs it itself.
   */
  private async sorts(matching: number, end: number): Promise<boolean> {
    if (this.caseInsensitive) return false;
    const { total: published } = await this.counts({ facets: {}, terms: [] });
    return matching * matching * SORT_COST_RATIO < end * published;
  }

  /**
   * Whether a page of a text search is better found by walking the sort's
   * index, testing each slide against the words (cheap per slide: the index
   * holds the id), than by reading every slide the words match and sorting
   * them (dear per slide): the walk reads about `end` × slides / matches
   * index entries. MariaDB's planner weighs this itself; SQLite's takes the
   * words' slides first whatever their number, so it is told. How many
   * match is taken from the counts when the caller has them.
   */
  private async walks(criteria: CatalogCriteria, end: number, matching?: number): Promise<boolean> {
    const texts = criteria.terms.filter((term) => !hasCodes(term)).map(textOf);
    if (this.caseInsensitive || texts.length === 0 || texts.some((text) => text.words.length === 0)) return false;
    if (matching !== undefined) {
      const { total: published } = await this.counts({ facets: {}, terms: [] });
      return matching * matching * WALK_COST_RATIO > end * published;
    }
    const words = [...new Set(texts.flatMap((text) => text.words))];
    const [matches] = (await this.knex.from(this.slidesWithWords(words).as('matched')).count({ n: '*' })) as { n: number | string }[];
    const [slides] = (await this.knex(SLIDES_TABLE).max({ n: 'id' })) as { n: number | string | null }[];
    const m = Number(matches?.n ?? 0);
    return m * m * WALK_COST_RATIO > end * Number(slides?.n ?? 0);
  }

  /**
   * The total and every facet's counts from one read: the combinations of
   * facet values of the published slides with how many slides have each —
   * kept in `catalog_counts` by triggers, and with text to match, narrowed
   * by the word index (see `combinations`) — filtered and summed here.
   */
  async counts(criteria: CatalogCriteria): Promise<CatalogCounts> {
    const version = await this.countsVersion(criteria.terms);
    if (version === undefined) return this.sum(criteria, await this.combinations(criteria.terms));
    return this.summed.get(JSON.stringify([criteria.facets, criteria.origins ?? {}, criteria.terms]), version.all, async () =>
      this.sum(criteria, await this.combinations(criteria.terms, version)),
    );
  }

  /**
   * The version of what a search's counts are summed from (see
   * counts-cache.ts): the sum of `changes` over catalog_counts, then over
   * each of the terms' words' ranges of catalog_word_counts, which every
   * change to a published slide having such a word writes. Undefined for
   * terms matched otherwise than by whole words (a word-less or typed term),
   * whose counts are not kept.
   */
  private async countsVersion(terms: TextTerm[]): Promise<CountsVersion | undefined> {
    const texts = terms.map(textOf);
    if (texts.some((text) => text.words.length === 0 || NOT_A_WORD.test(text.text))) return undefined;
    const words = [...new Set(texts.flatMap((text) => text.words))];
    const sums = [
      this.knex(COUNTS_TABLE).sum({ n: 'changes' }),
      ...words.map(prefixRange).map(({ from, to }) => this.knex(CATALOG_WORD_COUNTS_TABLE).where('word', '>=', from).andWhere('word', '<', to).sum({ n: 'changes' })),
    ];
    const [row] = (await this.knex.select(Object.fromEntries(sums.map((sum, i) => [`v${i}`, sum])))) as Record<string, number | string | null>[];
    const [counts, ...byWord] = sums.map((_, i) => String(row?.[`v${i}`] ?? 0));
    return { all: [counts, ...byWord].join(' '), counts: counts!, words: new Map(words.map((word, i) => [word, byWord[i]!])) };
  }

  /** The total and every facet's counts, summed from the combinations. */
  private sum(criteria: CatalogCriteria, combinations: Combination[]): CatalogCounts {
    const conditions = this.conditions(criteria);
    const matches = (combination: Combination, except?: CountedColumn) =>
      conditions.every(([column, keys]) => {
        if (column === except) return true;
        const value = combination.values[column];
        return value !== null && keys.has(this.key(value));
      });
    const total = combinations.reduce((sum, combination) => (matches(combination) ? sum + combination.count : sum), 0);
    const facets = Object.fromEntries(
      COUNTED_FACETS.map((facet) => {
        const counted = new Map<string, { value: string; count: number }>();
        const column = COUNTED_COLUMNS[facet];
        for (const combination of combinations) {
          const value = combination.values[column];
          if (value === null || !matches(combination, column)) continue;
          const key = this.key(value);
          const entry = counted.get(key);
          if (entry) entry.count += combination.count;
          else counted.set(key, { value, count: combination.count });
        }
        return [facet, [...counted.values()]];
      }),
    ) as CatalogCounts['facets'];
    return { total, facets };
  }

  /**
   * The ids of the published slides matching, by name (then id), when at
   * most `limit` match; when more do, only how many (`ids` is null), so that
   * a caller refuses a selection too large without reading it.
   */
  async publishedIds(criteria: CatalogCriteria, limit: number): Promise<{ ids: number[] | null; total: number }> {
    if (criteria.terms.length === 0) {
      // Counted from catalog_counts at once: a selection too large is refused without reading its ids.
      const { total } = await this.counts(criteria);
      if (total > limit) return { ids: null, total };
    }
    const rows = (await this.published(criteria)
      .select('id')
      .orderBy([
        { column: 'name', order: 'asc' },
        { column: 'id', order: 'asc' },
      ])
      .limit(limit + 1)) as { id: number }[];
    if (rows.length <= limit) return { ids: rows.map((row) => row.id), total: rows.length };
    return { ids: null, total: (await this.counts(criteria)).total };
  }

  async findPublished(id: number): Promise<CatalogSlide | undefined> {
    const row = (await this.knex(SLIDES_TABLE)
      .where({ id, status: 'published' })
      .select(CATALOG_COLUMNS)
      .select(this.knex.raw(HAS_ANNOTATION))
      .first()) as CatalogRow | undefined;
    return row ? toSlide(row) : undefined;
  }

  async isPublished(id: number): Promise<boolean> {
    return (await this.knex(SLIDES_TABLE).where({ id, status: 'published' }).first('id')) !== undefined;
  }

  /** How many matching slides carry each value of a facet (slides without one are not counted); staff's facets too. */
  async facetCounts(facet: Facet | StaffFacet, criteria: CatalogCriteria): Promise<{ value: string; count: number }[]> {
    const counted = (await this.counts(criteria)).facets[facet];
    // `counts` counts a facet without its own condition; here that condition applies too.
    const own = facet in STAFF_FACET_COLUMNS ? criteria.origins?.[facet as StaffFacet] : criteria.facets[facet as Facet];
    if (own === undefined) return counted;
    const keys = new Set(own.map((value) => this.key(value)));
    return counted.filter(({ value }) => keys.has(this.key(value)));
  }

  /**
   * The published slides' combinations of facet values with how many of their
   * slides the terms match. A term matches every slide of a combination that
   * has one of its codes; the others only by their words. So each combination
   * counts all its slides (from catalog_counts) when every term matches it by
   * a code, and otherwise the slides whose words match the terms it leaves
   * unmatched, grouped from the word index: one query per such set of terms.
   */
  private async combinations(terms: TextTerm[], version?: CountsVersion): Promise<Combination[]> {
    const all = version === undefined ? await this.countedCombinations() : await this.allCombinations.get('', version.counts, () => this.countedCombinations());
    if (terms.length === 0) return all;
    if (terms.length > MAX_SPLIT_TERMS) return this.groupedCombinations(this.published({ facets: {}, terms }));
    const unmatched = all.map((combination) => terms.flatMap((term, i) => (this.matchesByCode(term, combination) ? [] : [i])));
    const byWords = new Map<string, Map<string, number>>();
    for (const indexes of unmatched) {
      const set = indexes.join(',');
      if (indexes.length === 0 || byWords.has(set)) continue;
      byWords.set(set, new Map());
      const texts = indexes.map((i) => textOf(terms[i]!));
      // A term without a letter or digit matches no slide by its text.
      if (texts.some((text) => text.words.length === 0)) continue;
      const counted = byWords.get(set)!;
      const combinations =
        (texts.length === 1 ? await this.keptWordCombinations(texts[0]!, version) : undefined) ??
        (await this.groupedCombinations(this.published({ facets: {}, terms: texts.map((text) => ({ text: text.text, codes: {} })) }, 'drive')));
      for (const combination of combinations) counted.set(this.combinationKey(combination.values), combination.count);
    }
    return all.flatMap((combination, i) => {
      const indexes = unmatched[i]!;
      if (indexes.length === 0) return [combination];
      const count = byWords.get(indexes.join(','))!.get(this.combinationKey(combination.values)) ?? 0;
      return count > 0 ? [{ values: combination.values, count }] : [];
    });
  }

  /** The published slides counted by combination, as catalog_counts keeps them. */
  private async countedCombinations(): Promise<Combination[]> {
    const columns = Object.values(COUNTED_COLUMNS);
    const rows = (await this.knex(COUNTS_TABLE).where('slides', '>', 0).select(columns).select({ count: 'slides' })) as CombinationRow[];
    return rows.map(toCombination);
  }

  /** `wordCombinations`, kept while the word's range of catalog_word_counts is unchanged (its version from `countsVersion`). */
  private keptWordCombinations(text: TermText, version?: CountsVersion): Promise<Combination[] | undefined> {
    const [word] = text.words;
    const wordVersion = text.words.length === 1 ? version?.words.get(word!) : undefined;
    if (wordVersion === undefined) return this.wordCombinations(text);
    return this.wordCombinationsKept.get(word!, wordVersion, () => this.wordCombinations(text));
  }

  /**
   * A one-word term's slides counted by combination, read from
   * catalog_word_counts: exact when the stored words it starts are one word
   * (a slide counts once under each of its words, so two words could count
   * it twice); undefined otherwise, and for a term that must appear as typed.
   */
  private async wordCombinations(text: TermText): Promise<Combination[] | undefined> {
    if (text.words.length !== 1 || NOT_A_WORD.test(text.text)) return undefined;
    const { from, to } = prefixRange(text.words[0]!);
    const words = await this.knex(CATALOG_WORD_COUNTS_TABLE).where('word', '>=', from).andWhere('word', '<', to).distinct('word').limit(2);
    if (words.length > 1) return undefined;
    const columns = Object.values(COUNTED_COLUMNS);
    const rows = (await this.knex(CATALOG_WORD_COUNTS_TABLE)
      .where('word', '>=', from)
      .andWhere('word', '<', to)
      .andWhere('slides', '>', 0)
      .select('word', ...columns)
      .select({ count: 'slides' })) as (CombinationRow & { word: string })[];
    // A word written between the two reads: counted from the slides instead.
    if (new Set(rows.map((row) => row.word)).size > 1) return undefined;
    return rows.map(toCombination);
  }

  /** The slides of a query counted by combination. */
  private async groupedCombinations(query: Knex.QueryBuilder): Promise<Combination[]> {
    const columns = Object.values(COUNTED_COLUMNS);
    return ((await query.select(columns).count({ count: '*' }).groupBy(columns)) as CombinationRow[]).map(toCombination);
  }

  /** Whether a term's codes take in every slide of a combination. */
  private matchesByCode(term: TextTerm, combination: Combination): boolean {
    return (Object.entries(term.codes) as [Facet, string[] | undefined][]).some(([facet, codes]) => {
      const value = combination.values[FACET_COLUMNS[facet]];
      return value !== null && codes !== undefined && codes.some((code) => this.key(code) === this.key(value));
    });
  }

  /** A combination as the database tells it from another (see `key`). */
  private combinationKey(values: Record<CountedColumn, string | null>): string {
    // Values joined by a unit separator; a missing value as a NUL, which no stored value is.
    return COUNTED_LIST.map((column) => (values[column] === null ? '\u0000' : this.key(values[column]))).join('\u001f');
  }

  /** Each facet condition as the column and the set of keys (see `key`) it accepts. */
  private conditions(criteria: CatalogCriteria): [CountedColumn, Set<string>][] {
    const given: [CountedColumn, string[] | undefined][] = [
      ...(Object.entries(criteria.facets) as [Facet, string[] | undefined][]).map(([facet, values]) => [FACET_COLUMNS[facet], values] as [CountedColumn, string[] | undefined]),
      ...(Object.entries(criteria.origins ?? {}) as [StaffFacet, string[] | undefined][]).map(([facet, values]) => [STAFF_FACET_COLUMNS[facet], values] as [CountedColumn, string[] | undefined]),
    ];
    return given.filter((entry): entry is [CountedColumn, string[]] => entry[1] !== undefined).map(([column, values]) => [column, new Set(values.map((value) => this.key(value)))]);
  }

  /** A value as the database compares it: MariaDB's collation ignores case, accents and trailing spaces; SQLite compares the bytes. */
  private key(value: string): string {
    if (!this.caseInsensitive) return value;
    let key = this.keys.get(value);
    if (key === undefined) {
      // Facet values are few (codes, datasets, vendors): each is folded once, not once per combination and search.
      if (this.keys.size >= MAX_FOLDED_VALUES) this.keys.clear();
      key = collationKey(value);
      this.keys.set(value, key);
    }
    return key;
  }

  private readonly keys = new Map<string, string>();

  /** Searches' counts, and catalog_counts as read, while the count tables are unchanged. */
  private readonly summed = new CountsCache<CatalogCounts>(MAX_KEPT_COUNTS);
  private readonly allCombinations = new CountsCache<Combination[]>(1);
  private readonly wordCombinationsKept = new CountsCache<Combination[] | undefined>(MAX_KEPT_WORDS);

  /** MariaDB's collation: values compare by their `key`. */
  private readonly caseInsensitive: boolean;

  /** Published slides counted by combinations of facet values, missing values included (as null). */
  async countBy<K extends Facet>(facets: K[]): Promise<GroupCount<K>[]> {
    const columns = facets.map((facet) => FACET_COLUMNS[facet]);
    const rows = (await this.knex(SLIDES_TABLE)
      .where({ status: 'published' })
      .select(columns)
      .count({ count: '*' })
      .groupBy(columns)) as (Record<string, string | null> & { count: number | string })[];
    return rows.map((row) => ({
      values: Object.fromEntries(facets.map((facet) => [facet, row[FACET_COLUMNS[facet]] ?? null])) as Record<K, string | null>,
      count: Number(row.count),
    }));
  }

  /** How many slides are published, their files' total size in bytes, and how many have an annotation. */
  async totals(): Promise<{ slides: number; bytes: number; annotated: number }> {
    const [row] = (await this.knex(SLIDES_TABLE)
      .where({ status: 'published' })
      .count({ slides: '*' })
      .sum({ bytes: 'file_size' })
      .select(this.knex.raw('SUM(CASE WHEN annotation_path IS NULL THEN 0 ELSE 1 END) AS annotated'))) as {
      slides: number | string;
      bytes: number | string | null;
      annotated: number | string | null;
    }[];
    return { slides: Number(row?.slides ?? 0), bytes: Number(row?.bytes ?? 0), annotated: Number(row?.annotated ?? 0) };
  }

  /**
   * The published slides matching. The terms matched by their words alone are
   * matched together, by one chain of the word index's ranges (the slides
   * having every word); a term that also matches by codes is its words or
   * its codes. `walk` (SQLite) asks for the page to be found by walking the
   * sort's index and testing each slide against the words, rather than by
   * sorting every slide the words match (see `page`); `drive` for the slides
   * to be read from the words' matches, joined, which MariaDB's planner
   * otherwise may not do for a chain of several words.
   */
  private published(criteria: CatalogCriteria, plan: 'walk' | 'drive' | 'any' = 'any'): Knex.QueryBuilder {
    const byWords = criteria.terms.filter((term) => !hasCodes(term)).map(textOf);
    const drive = plan === 'drive' && byWords.length > 0 && byWords.every((text) => text.words.length > 0);
    // Joined in this order: CROSS JOIN keeps it on SQLite, STRAIGHT_JOIN on MariaDB.
    const query = drive
      ? this.knex
          .from(
            this.knex.raw(`(?) AS matched ${this.caseInsensitive ? 'STRAIGHT_JOIN' : 'CROSS JOIN'} ?? ON ?? = ??`, [
              this.slidesWithWords([...new Set(byWords.flatMap((text) => text.words))]).distinct(),
              SLIDES_TABLE,
              `${SLIDES_TABLE}.id`,
              'matched.slide_id',
            ]),
          )
          .where({ status: 'published' })
      : this.knex(SLIDES_TABLE).where({ status: 'published' });
    for (const [facet, values] of Object.entries(criteria.facets) as [Facet, string[] | undefined][]) {
      if (values !== undefined) query.whereIn(FACET_COLUMNS[facet], values);
    }
    for (const [facet, values] of Object.entries(criteria.origins ?? {}) as [StaffFacet, string[] | undefined][]) {
      if (values !== undefined) query.whereIn(STAFF_FACET_COLUMNS[facet], values);
    }
    const id = plan === 'walk' ? this.knex.raw('+??', ['id']) : 'id';
    if (drive) this.whereTyped(query, byWords);
    else if (byWords.length > 0) this.whereText(query, byWords, id);
    for (const term of criteria.terms.filter(hasCodes)) {
      query.where((matches) => {
        matches.where((text) => this.whereText(text, [textOf(term)], id));
        for (const [facet, codes] of Object.entries(term.codes) as [Facet, string[] | undefined][]) {
          if (codes && codes.length > 0) matches.orWhereIn(FACET_COLUMNS[facet], codes);
        }
      });
    }
    return query;
  }

  /**
   * Terms' texts: the slide has, for each of the terms' words, a word that
   * starts with it (a range of the word index, which the database seeks); a
   * term with anything but letters and digits in it (`3+4=7`, `LIV_HCC`,
   * `60%`) must also appear as typed, case aside. A term without a letter or
   * digit matches no slide by its text.
   */
  private whereText(query: Knex.QueryBuilder, texts: TermText[], id: string | Knex.Raw): void {
    const words = [...new Set(texts.flatMap((text) => text.words))];
    if (texts.some((text) => text.words.length === 0)) {
      query.whereRaw('1 = 0');
      return;
    }
    query.whereIn(id as string, this.slidesWithWords(words));
    this.whereTyped(query, texts);
  }

  /** The terms with anything but letters and digits in them, as typed. */
  private whereTyped(query: Knex.QueryBuilder, texts: TermText[]): void {
    for (const text of texts.filter((text) => NOT_A_WORD.test(text.text))) {
      const pattern = `%${text.text.replace(/[!%_]/g, '!$&')}%`;
      query.where((typed) => {
        typed.whereRaw(`name LIKE ? ESCAPE '!'`, [pattern]).orWhereRaw(`pathology_info LIKE ? ESCAPE '!'`, [pattern]);
      });
    }
  }

  /**
   * The ids of the slides (of any status) having, for every one of `words`,
   * a word starting with it: the index's ranges, each tested against the
   * next (on SQLite, `+slide_id` keeps its planner from looking up each of
   * the next range's slides' words instead).
   */
  private slidesWithWords(words: string[]): Knex.QueryBuilder {
    const [first, ...rest] = words;
    const { from, to } = prefixRange(first!);
    const query = this.knex(CATALOG_WORDS_TABLE).where('word', '>=', from).andWhere('word', '<', to).select('slide_id');
    if (rest.length > 0) query.whereIn((this.caseInsensitive ? 'slide_id' : this.knex.raw('+??', ['slide_id'])) as string, this.slidesWithWords(rest));
    return query;
  }
}

const COUNTS_TABLE = 'catalog_counts';

/** What a search's counts were summed from (see `countsVersion`): all of it, catalog_counts alone, and each word's range. */
interface CountsVersion {
  all: string;
  counts: string;
  words: ReadonlyMap<string, string>;
}
/** Searches whose counts are kept (see counts-cache.ts): each is a few kilobytes. */
const MAX_KEPT_COUNTS = 1000;
/** Words whose combinations are kept (see `keptWordCombinations`): each is at most catalog_counts' rows, a few thousand in a large catalog. */
const MAX_KEPT_WORDS = 64;
/** Folded facet values kept (see `key`); far more than a catalog's distinct values. */
const MAX_FOLDED_VALUES = 10_000;
const COUNTED_COLUMNS = { ...FACET_COLUMNS, ...STAFF_FACET_COLUMNS } as const;
type CountedColumn = (typeof COUNTED_COLUMNS)[keyof typeof COUNTED_COLUMNS];
const COUNTED_FACETS = Object.keys(COUNTED_COLUMNS) as (Facet | StaffFacet)[];
const COUNTED_LIST = Object.values(COUNTED_COLUMNS);

/** How many index entries a walk reads for the cost of reading one matching slide and sorting it (measured on SQLite: about 15). */
const WALK_COST_RATIO = 15;
/** The same for a walk that tests a facet filter on the entries of the sort's index, which holds the facets (measured on SQLite: about 40). */
const SORT_COST_RATIO = 40;

function hasCodes(term: TextTerm): boolean {
  return Object.values(term.codes).some((codes) => codes !== undefined && codes.length > 0);
}

/** Terms up to which a search's counts are summed per combination (see `combinations`); more are grouped from the matching slides at once. */
const MAX_SPLIT_TERMS = 3;

interface Combination {
  values: Record<CountedColumn, string | null>;
  count: number;
}

type CombinationRow = Record<CountedColumn, string | null> & { count: number | string };

function toCombination(row: CombinationRow): Combination {
  const values = {} as Record<CountedColumn, string | null>;
  // catalog_counts stores a missing value as '' (see its migration).
  for (const column of COUNTED_LIST) values[column] = row[column] === '' ? null : row[column];
  return { values, count: Number(row.count) };
}

/** A character that is not part of a word (see catalog-words.ts). */
const NOT_A_WORD = /[^\p{L}\p{M}\p{N}]/u;

interface TermText {
  text: string;
  words: string[];
}

function textOf(term: TextTerm): TermText {
  return { text: term.text, words: wordsOf(term.text) };
}

function toSlide(row: CatalogRow): CatalogSlide {
  return {
    id: row.id,
    name: row.name,
    ...metadataOf(row),
    ...geometryOf(row),
    fileSize: Number(row.file_size),
    sha256: row.sha256,
    hasAnnotation: Number(row.has_annotation) === 1,
    annotationSummary: annotationSummaryOf<AnnotationSummary>(row),
    createdAt: fromDbTime(row.created_at),
  };
}
