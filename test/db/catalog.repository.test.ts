import { readFileSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { writeCatalogWords } from '../../server/catalog/catalog-words.repository.js';
import { CatalogRepository, type CatalogCriteria, type CatalogSort } from '../../server/catalog/catalog.repository.js';
import { CATALOG_SORTS } from '../../server/catalog/catalog-query.js';
import { CatalogService } from '../../server/catalog/catalog.service.js';
import { createSlideRelease } from '../../server/catalog/slide-release.js';
import { FACETS, type CatalogFilter, type Facet } from '../../server/catalog/filter.js';
import { toDbTime } from '../../server/db/index.js';
import type { Vocabulary } from '../../server/ingest/types.js';
import { packageRoot } from '../../server/package-info.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';

/**
 * The catalog queries on a real database holding a few thousand slides drawn
 * (seeded, so every run is the same) from the real vocabulary, checked against
 * the same rows counted and sorted in JavaScript.
 */

const vocabulary = JSON.parse(readFileSync(path.join(packageRoot, 'config', 'vocabularies.json'), 'utf8')) as Vocabulary;

interface Row {
  id: number;
  name: string;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker: string | null;
  differentiation: string | null;
  annotationMethod: string | null;
  dataset: string | null;
  pathologyInfo: string | null;
  status: 'published' | 'withdrawn';
  fileSize: number;
  createdAt: Date;
  annotated: boolean;
  tumourAreaMm2: number | null;
}

const COUNT = 3000;

/** Phrases with LIKE's wildcards and our escape character in them, and near-misses that an unescaped pattern would also match. */
const PATHOLOGY = [
  null,
  'Gleason 4+3, 60% pattern 4',
  'Ki-67 index 600 per field',
  'tumour_budding high',
  'tumour budding low',
  'margin clear!',
  'ratio 1\\2 of the core',
  'perineural invasion',
  'MSI-high',
];
const DATASETS = ['PAIP2019', 'PAIP2020', 'PAIP2021', null];

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generate(count: number, seed: number): Row[] {
  const random = mulberry32(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const names = new Set<string>();
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    let unique: string;
    do unique = Math.floor(random() * 36 ** 8).toString(36).toUpperCase().padStart(8, '0');
    while (names.has(unique));
    names.add(unique);
    const legacy = random() < 0.02; // registered before the catalog had diagnostic fields
    const foreign = !legacy && random() < 0.01; // a code the vocabulary does not (or no longer) know
    const organ = legacy ? null : foreign ? null : pick(vocabulary.organs);
    const stain = legacy ? null : pick(vocabulary.stains);
    const annotated = !legacy && random() < 0.7;
    rows.push({
      id: i + 1,
      name: `SB1-${unique}-${organ?.code ?? (foreign ? 'XX' : 'NA')}`,
      organ: organ?.code ?? (foreign ? 'XX' : null),
      histology: organ ? pick(organ.histologies).code : foreign ? 'ZZZ' : null,
      stain: stain?.code ?? null,
      marker: stain?.requiresMarker ? pick(vocabulary.markers).code : null,
      differentiation: legacy || random() < 0.2 ? null : pick(vocabulary.differentiations).code,
      annotationMethod: annotated ? pick(vocabulary.annotationMethods).code : null,
      dataset: legacy ? null : pick(DATASETS),
      pathologyInfo: legacy ? null : pick(PATHOLOGY),
      status: random() < 0.1 ? 'withdrawn' : 'published',
      fileSize: 1_000_000 * (1 + Math.floor(random() * 50)), // ties on purpose: the id breaks them
      createdAt: new Date(Date.UTC(2025, 0, 1) + order[i]! * 60_000 + Math.floor(random() * 1000)),
      annotated,
      tumourAreaMm2: annotated ? Math.round(random() * 50_000) / 100 : null,
    });
  }
  return rows;
}

async function insert(database: TestDatabase, rows: Row[]): Promise<void> {
  const records = rows.map((row) => ({
    id: row.id,
    name: row.name,
    file_path: `/slides/${row.name}.svs`,
    file_size: row.fileSize,
    sha256: row.id.toString(16).padStart(64, '0'),
    vendor: 'aperio',
    width: 40_000 + row.id,
    height: 30_000,
    level_count: 4,
    mpp_x: 0.2527,
    mpp_y: 0.2527,
    objective_power: 20,
    status: row.status,
    created_at: toDbTime(row.createdAt),
    updated_at: toDbTime(row.createdAt),
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    marker: row.marker,
    differentiation: row.differentiation,
    pathology_info: row.pathologyInfo,
    annotation_method: row.annotationMethod,
    dataset: row.dataset,
    original_sha256: `e${row.id.toString(16).padStart(63, '0')}`,
    annotation_path: row.annotated ? `annotations/${row.name}.xml` : null,
    annotation_summary: row.annotated
      ? JSON.stringify({ layers: [{ id: 1, name: 'viable tumour', regions: 2, holes: 0 }], regionCount: 2, tumourAreaMm2: row.tumourAreaMm2 })
      : null,
  }));
  await database.db.knex.transaction(async (trx) => {
    for (let i = 0; i < records.length; i += 250) await trx('slides').insert(records.slice(i, i + 250));
    await writeCatalogWords(trx, rows);
  });
}

const rows = generate(COUNT, 20261129);
const published = rows.filter((row) => row.status === 'published');
let database: TestDatabase;
let catalog: CatalogRepository;

test.before(async () => {
  database = await createMigratedTestDatabase();
  await insert(database, rows);
  catalog = new CatalogRepository(database.db.knex);
});

test.after.always(async () => {
  await database?.drop();
});

const FIELD: Record<Facet, keyof Row> = {
  organ: 'organ',
  histology: 'histology',
  stain: 'stain',
  marker: 'marker',
  differentiation: 'differentiation',
  annotationMethod: 'annotationMethod',
  dataset: 'dataset',
};

/** The words of an (ASCII) text, lower-cased. */
const wordsIn = (text: string | null) => (text ?? '').toLowerCase().split(/[^a-z0-9]+/).filter((word) => word !== '');

/**
 * The criteria in JavaScript: a text term matches when each of its words
 * starts a word of the name or pathology information — and, when the term
 * holds anything but letters and digits, the term is in one of them as typed
 * (case aside) — or by code.
 */
function matches(row: Row, criteria: CatalogCriteria): boolean {
  if (row.status !== 'published') return false;
  for (const [facet, values] of Object.entries(criteria.facets) as [Facet, string[]][]) {
    if (!values.includes(row[FIELD[facet]] as string)) return false;
  }
  return criteria.terms.every((term) => {
    const needle = term.text.toLowerCase();
    const own = [...wordsIn(row.name), ...wordsIn(row.pathologyInfo)];
    const words = wordsIn(term.text);
    const byWords = words.length > 0 && words.every((word) => own.some((other) => other.startsWith(word)));
    const typed = /^[a-z0-9]*$/.test(needle) || row.name.toLowerCase().includes(needle) || (row.pathologyInfo ?? '').toLowerCase().includes(needle);
    if (byWords && typed) return true;
    return (Object.entries(term.codes) as [Facet, string[]][]).some(([facet, codes]) => codes.includes(row[FIELD[facet]] as string));
  });
}

function countsInJs(facet: Facet, criteria: CatalogCriteria): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const row of rows) {
    const value = row[FIELD[facet]] as string | null;
    if (value !== null && matches(row, criteria)) counts[value] = (counts[value] ?? 0) + 1;
  }
  return counts;
}

function sortedInJs(criteria: CatalogCriteria, sort: CatalogSort): number[] {
  const key = (row: Row): string | number =>
    sort.key === 'name' ? row.name : sort.key === 'size' ? row.fileSize : row.createdAt.getTime();
  const sign = sort.direction === 'asc' ? 1 : -1;
  return rows
    .filter((row) => matches(row, criteria))
    .sort((a, b) => {
      const ka = key(a);
      const kb = key(b);
      return sign * (ka < kb ? -1 : ka > kb ? 1 : a.id - b.id);
    })
    .map((row) => row.id);
}

async function allPages(criteria: CatalogCriteria, sort: CatalogSort, limit: number): Promise<{ ids: number[]; totals: number[]; pages: number }> {
  const ids: number[] = [];
  const totals: number[] = [];
  let pages = 0;
  for (let offset = 0; ; offset += limit) {
    const page = await catalog.search(criteria, sort, offset, limit);
    totals.push(page.total);
    if (page.slides.length === 0) break;
    pages++;
    ids.push(...page.slides.map((slide) => slide.id));
  }
  return { ids, totals, pages };
}

const everything: CatalogCriteria = { facets: {}, terms: [] };
const newest: CatalogSort = { key: 'created', direction: 'desc' };

test(`the generated catalog is what the tests assume on ${testDialect}`, (t) => {
  t.true(published.length > 2500 && published.length < COUNT, `${published.length} published`);
  t.true(rows.some((row) => row.organ === null) && rows.some((row) => row.organ === 'XX'));
  for (const phrase of PATHOLOGY) t.true(rows.some((row) => row.pathologyInfo === phrase && row.status === 'published'));
});

test(`every published slide is listed once, withdrawn ones never, and the total says so on ${testDialect}`, async (t) => {
  const { ids, totals, pages } = await allPages(everything, newest, 200);
  t.is(pages, Math.ceil(published.length / 200));
  t.deepEqual(new Set(totals), new Set([published.length]), 'every page, the one past the end too, tells the same total');
  t.deepEqual([...ids].sort((a, b) => a - b), published.map((row) => row.id));
  t.deepEqual(ids, sortedInJs(everything, newest));
});

test(`pages of an odd size tile the sorted list exactly on ${testDialect}`, async (t) => {
  const criteria: CatalogCriteria = { facets: { stain: ['IHC'] }, terms: [] };
  const sort: CatalogSort = { key: 'size', direction: 'asc' };
  const expected = sortedInJs(criteria, sort);
  const { ids, pages } = await allPages(criteria, sort, 37);
  t.is(pages, Math.ceil(expected.length / 37));
  t.deepEqual(ids, expected);
  const last = await catalog.search(criteria, sort, Math.floor(expected.length / 37) * 37, 37);
  t.is(last.slides.length, expected.length % 37 || 37);
  const past = await catalog.search(criteria, sort, expected.length + 1000, 37);
  t.deepEqual(past.slides, []);
  t.is(past.total, expected.length);
});

for (const sort of [
  { key: 'name', direction: 'asc' },
  { key: 'name', direction: 'desc' },
  { key: 'created', direction: 'asc' },
  { key: 'created', direction: 'desc' },
  { key: 'size', direction: 'asc' },
  { key: 'size', direction: 'desc' },
] as CatalogSort[]) {
  test(`sorting by ${sort.direction === 'desc' ? '-' : ''}${sort.key}, ties broken by id, on ${testDialect}`, async (t) => {
    const criteria: CatalogCriteria = { facets: { organ: ['LV', 'KI'] }, terms: [] };
    const page = await catalog.search(criteria, sort, 0, 200);
    const expected = sortedInJs(criteria, sort);
    t.is(page.total, expected.length);
    t.deepEqual(page.slides.map((slide) => slide.id), expected.slice(0, 200));
    const second = await catalog.search(criteria, sort, 200, 200);
    t.deepEqual(second.slides.map((slide) => slide.id), expected.slice(200, 400));
  });
}

const facetCases: [string, CatalogCriteria][] = [
  ['no condition', everything],
  ['organ CO or LV', { facets: { organ: ['CO', 'LV'] }, terms: [] }],
  ['IHC with Ki-67 or p53 in PAIP2020', { facets: { stain: ['IHC'], marker: ['KI67', 'P53'], dataset: ['PAIP2020'] }, terms: [] }],
  ['AI-assisted, moderately differentiated, with "budding"', { facets: { annotationMethod: ['A'], differentiation: ['MD'] }, terms: [{ text: 'budding', codes: {} }] }],
  ['a code no slide has', { facets: { organ: ['NOPE'] }, terms: [] }],
];

for (const [title, criteria] of facetCases) {
  test(`facet counts match the rows counted in JavaScript (${title}) on ${testDialect}`, async (t) => {
    for (const facet of FACETS) {
      const counted = await catalog.facetCounts(facet, criteria);
      t.deepEqual(Object.fromEntries(counted.map(({ value, count }) => [value, count])), countsInJs(facet, criteria), facet);
      t.true(counted.every(({ count }) => typeof count === 'number'));
    }
    const { total } = await catalog.search(criteria, newest, 0, 1);
    t.is(total, rows.filter((row) => matches(row, criteria)).length);
  });
}

const searches: [string, number | null][] = [
  // [term, how many phrases it should hit (null: check by JS only)]
  ['60%', 1],
  ['_', 1],
  ['%', 1],
  ['!', 1],
  ['r!', 1],
  ['\\', 1],
  ['1\\2', 1],
  ['GLEASON', 1],
  ['budding', 2],
  ['tumour_b', 1],
  ['SB1-', null],
];

for (const [text, phrases] of searches) {
  test(`text search for ${JSON.stringify(text)} takes the characters literally on ${testDialect}`, async (t) => {
    const criteria: CatalogCriteria = { facets: {}, terms: [{ text, codes: {} }] };
    const expected = sortedInJs(criteria, newest);
    if (phrases !== null) {
      const hit = PATHOLOGY.filter((phrase) => phrase?.toLowerCase().includes(text.toLowerCase()));
      t.is(hit.length, phrases, `${JSON.stringify(text)} is in ${phrases} phrase(s)`);
      // A term without a letter or digit matches no slide by its text.
      if (wordsIn(text).length === 0) t.is(expected.length, 0);
      else t.true(expected.length > 0 && expected.length < published.length / 2);
    }
    const found = await catalog.search(criteria, newest, 0, 200);
    t.is(found.total, expected.length);
    t.deepEqual(found.slides.map((slide) => slide.id), expected.slice(0, 200));
  });
}

test(`several terms must all match, each by name, pathology information or one of its codes, on ${testDialect}`, async (t) => {
  const criteria: CatalogCriteria = {
    facets: { dataset: ['PAIP2019', 'PAIP2021'] },
    terms: [
      { text: 'high', codes: {} },
      { text: 'hepatocellular', codes: { histology: ['HCC'] } },
    ],
  };
  const expected = sortedInJs(criteria, newest);
  t.true(expected.length > 5);
  const found = await catalog.search(criteria, newest, 0, 200);
  t.deepEqual(found.slides.map((slide) => slide.id), expected);
  t.true(found.slides.every((slide) => slide.histology === 'HCC' && /high/i.test(slide.pathologyInfo ?? '')));
});

test(`one slide is read with its annotation summary and nothing of its files on ${testDialect}`, async (t) => {
  const row = published.find((r) => r.annotated && r.marker !== null)!;
  const slide = await catalog.findPublished(row.id);
  t.like(slide, {
    id: row.id,
    name: row.name,
    organ: row.organ,
    histology: row.histology,
    stain: row.stain,
    marker: row.marker,
    annotationMethod: row.annotationMethod,
    dataset: row.dataset,
    pathologyInfo: row.pathologyInfo,
    width: 40_000 + row.id,
    levelCount: 4,
    mppX: 0.2527,
    objectivePower: 20,
    fileSize: row.fileSize,
    hasAnnotation: true,
  });
  t.is(slide?.createdAt.toISOString(), row.createdAt.toISOString());
  t.deepEqual(slide?.annotationSummary, {
    layers: [{ id: 1, name: 'viable tumour', regions: 2, holes: 0 }],
    regionCount: 2,
    tumourAreaMm2: row.tumourAreaMm2,
  });
  const keys = Object.keys(slide!);
  for (const secret of ['filePath', 'file_path', 'annotationPath', 'annotation_path', 'originalSha256', 'original_sha256']) {
    t.false(keys.includes(secret), secret);
  }

  const bare = published.find((r) => !r.annotated)!;
  t.like(await catalog.findPublished(bare.id), { hasAnnotation: false, annotationSummary: null });

  const withdrawn = rows.find((r) => r.status === 'withdrawn')!;
  t.is(await catalog.findPublished(withdrawn.id), undefined);
  t.false(await catalog.isPublished(withdrawn.id));
  t.true(await catalog.isPublished(row.id));
  t.is(await catalog.findPublished(COUNT + 1), undefined);
});

test(`published slides are counted by organ × histology and organ × annotation method, missing values included, on ${testDialect}`, async (t) => {
  for (const facets of [['organ', 'histology'], ['organ', 'annotationMethod']] as Facet[][]) {
    const expected: Record<string, number> = {};
    for (const row of published) {
      const key = facets.map((facet) => String(row[FIELD[facet]])).join('|');
      expected[key] = (expected[key] ?? 0) + 1;
    }
    const groups = await catalog.countBy(facets);
    t.deepEqual(
      Object.fromEntries(groups.map((group) => [facets.map((facet) => String(group.values[facet])).join('|'), group.count])),
      expected,
    );
    t.true(groups.some((group) => group.values.organ === null), 'slides without an organ are counted too');
  }
});

// The service over the real repository: the faceting rule and the vocabulary.

const service = () => new CatalogService(catalog, vocabulary, '/nonexistent', createSlideRelease(database.db));
/** A search's first page, newest first, as the catalog route hands it over. */
const firstPage = (filter: CatalogFilter, limit = 24) => ({ filter, sort: CATALOG_SORTS['-created'], offset: 0, limit });

test(`each facet is counted under every condition but its own on ${testDialect}`, async (t) => {
  const result = await service().search(firstPage({ organ: ['CO', 'lv'], stain: ['IHC'], annotationMethod: ['A'], q: 'budding' }));
  const facets: Partial<Record<Facet, string[]>> = { organ: ['CO', 'LV'], stain: ['IHC'], annotationMethod: ['A'] };
  const terms = [{ text: 'budding', codes: {} }];
  t.is(result.total, rows.filter((row) => matches(row, { facets, terms })).length);
  for (const facet of FACETS) {
    const { [facet]: _own, ...others } = facets;
    const expected = countsInJs(facet, { facets: others, terms });
    for (const value of facets[facet] ?? []) expected[value] ??= 0;
    t.deepEqual(Object.fromEntries(result.facets[facet].map(({ value, count }) => [value, count])), expected, facet);
  }
  t.deepEqual(
    result.facets.organ.map(({ value, name }) => [value, name]),
    [['LV', 'Liver'], ['CO', 'Colon'], ['PR', 'Prostate'], ['PB', 'Pancreas and biliary tract'], ['KI', 'Kidney'], ['XX', 'XX']].filter(([code]) =>
      result.facets.organ.some((entry) => entry.value === code),
    ),
    'vocabulary order, unknown codes after and named by their code',
  );
  t.true(result.facets.stain.some(({ value }) => value === 'HE'), 'ticking IHC leaves H&E counted');
});

test(`text search finds slides by the display names of their codes on ${testDialect}`, async (t) => {
  const byName = await service().search(firstPage({ q: 'hepatocellular' }, 200));
  t.is(byName.total, published.filter((row) => row.histology === 'HCC').length);
  const byOrgan = await service().search(firstPage({ q: 'kidney' }, 1));
  t.is(byOrgan.total, published.filter((row) => row.organ === 'KI').length);
  const byMarker = await service().search(firstPage({ q: 'ki-67' }));
  t.is(byMarker.total, published.filter((row) => row.marker === 'KI67' || /ki-67/i.test(row.pathologyInfo ?? '')).length);
  t.true(byMarker.items.some((item) => item.marker !== 'KI67'), 'the pathology information matches too');
});

test(`the ids a filter selects (downloads, datasets): by name, all of them up to the limit, only their number beyond, on ${testDialect}`, async (t) => {
  const byName: CatalogSort = { key: 'name', direction: 'asc' };
  const criteria: CatalogCriteria = { facets: { organ: ['LV', 'KI'] }, terms: [{ text: 'high', codes: {} }] };
  const expected = sortedInJs(criteria, byName);
  t.true(expected.length > 10);
  t.deepEqual(await catalog.publishedIds(criteria, expected.length), { ids: expected, total: expected.length }, 'exactly the limit');
  t.deepEqual(await catalog.publishedIds(criteria, 100_000), { ids: expected, total: expected.length });
  t.deepEqual(await catalog.publishedIds(criteria, expected.length - 1), { ids: null, total: expected.length }, 'one past the limit');
  t.deepEqual(await catalog.publishedIds(everything, 100_000), { ids: sortedInJs(everything, byName), total: published.length }, 'never a withdrawn slide');
  t.deepEqual(await catalog.publishedIds({ facets: { organ: ['NOPE'] }, terms: [] }, 10), { ids: [], total: 0 });
});

test(`the service selects the same slides as its search shows for a filter: codes in any case, words by vocabulary names, on ${testDialect}`, async (t) => {
  const filter: CatalogFilter = { organ: ['lv', 'CO'], q: 'hepatocellular high' };
  const search = await service().search({ filter, sort: CATALOG_SORTS.name, offset: 0, limit: 200 });
  t.true(search.total > 5 && search.total < 200);
  t.deepEqual(await service().publishedIds(filter, 200), { ids: search.items.map((item) => item.id), total: search.total });
  t.deepEqual(await service().publishedIds(filter, search.total - 1), { ids: null, total: search.total });
});
