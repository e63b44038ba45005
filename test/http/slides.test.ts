import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import sharp from 'sharp';
import { writeCatalogWords } from '../../server/catalog/catalog-words.repository.js';
import { thumbnailPath } from '../../server/catalog/thumbnails.js';
import { toDbTime } from '../../server/db/index.js';
import { viewerFetch } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';

/** The catalog API through HTTP, on a handful of slides whose every answer is written out below. */

interface Seed {
  id: number;
  name: string;
  organ: string | null;
  histology: string | null;
  stain: string | null;
  marker?: string;
  differentiation?: string;
  annotationMethod?: string;
  dataset?: string;
  pathologyInfo?: string;
  status?: 'withdrawn';
  fileSize: number;
  created: string;
  tumourAreaMm2?: number;
}

const SEEDS: Seed[] = [
  { id: 1, name: 'SB1-LV-HCC-HE-A1', organ: 'LV', histology: 'HCC', stain: 'HE', differentiation: 'MD', annotationMethod: 'M', dataset: 'PAIP2019', pathologyInfo: 'Edmondson grade II', fileSize: 500, created: '2026-01-01T00:00:00.000Z', tumourAreaMm2: 12.5 },
  { id: 2, name: 'SB1-LV-HCC-IHC-B2', organ: 'LV', histology: 'HCC', stain: 'IHC', marker: 'KI67', differentiation: 'PD', annotationMethod: 'A', dataset: 'PAIP2019', pathologyInfo: '30% Ki-67_positive', fileSize: 300, created: '2026-01-02T00:00:00.000Z', tumourAreaMm2: 40 },
  { id: 3, name: 'SB1-CO-ADC-HE-C3', organ: 'CO', histology: 'ADC', stain: 'HE', differentiation: 'WD', annotationMethod: 'M', dataset: 'PAIP2020', pathologyInfo: 'MSI-high', fileSize: 900, created: '2026-01-03T00:00:00.000Z', tumourAreaMm2: 3 },
  { id: 4, name: 'SB1-CO-ADC-IHC-D4', organ: 'CO', histology: 'ADC', stain: 'IHC', marker: 'CDX2', differentiation: 'MD', dataset: 'PAIP2020', fileSize: 300, created: '2026-01-04T00:00:00.000Z' },
  { id: 5, name: 'SB1-PR-ADC-HE-E5', organ: 'PR', histology: 'ADC', stain: 'HE', annotationMethod: 'M', pathologyInfo: 'Gleason 4+3 (300 cores)', fileSize: 700, created: '2026-01-05T00:00:00.000Z', tumourAreaMm2: 1 },
  { id: 6, name: 'SB1-KI-RCC-HE-F6', organ: 'KI', histology: 'RCC', stain: 'HE', annotationMethod: 'A', dataset: 'PAIP2021', pathologyInfo: 'clear cell', fileSize: 100, created: '2026-01-06T00:00:00.000Z', tumourAreaMm2: 8 },
  { id: 7, name: 'SB1-LV-HCC-HE-G7', organ: 'LV', histology: 'HCC', stain: 'HE', annotationMethod: 'M', dataset: 'PAIP2019', status: 'withdrawn', fileSize: 800, created: '2026-01-07T00:00:00.000Z', tumourAreaMm2: 2 },
  { id: 8, name: 'LEGACY-H8', organ: 'XX', histology: 'ZZZ', stain: null, fileSize: 200, created: '2025-12-31T00:00:00.000Z' },
];

async function start(t: ExecutionContext): Promise<TestApp> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-slides-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  t.true(app.config.paths.thumbnails.startsWith(data), 'nothing is written under var/');
  await app.database.db.knex('slides').insert(
    SEEDS.map((seed) => ({
      id: seed.id,
      name: seed.name,
      file_path: `/secret/store/${seed.name}.svs`,
      file_size: seed.fileSize,
      sha256: String(seed.id).repeat(64).slice(0, 64),
      vendor: 'aperio',
      width: 46_000,
      height: 32_914,
      level_count: 3,
      mpp_x: 0.499,
      mpp_y: 0.5,
      objective_power: 20,
      status: seed.status ?? 'published',
      created_at: toDbTime(new Date(seed.created)),
      updated_at: toDbTime(new Date(seed.created)),
      organ: seed.organ,
      histology: seed.histology,
      stain: seed.stain,
      marker: seed.marker ?? null,
      differentiation: seed.differentiation ?? null,
      pathology_info: seed.pathologyInfo ?? null,
      annotation_method: seed.annotationMethod ?? null,
      dataset: seed.dataset ?? null,
      original_sha256: `${seed.id}`.padStart(64, 'a'),
      annotation_path: seed.tumourAreaMm2 === undefined ? null : `/secret/annotations/${seed.name}.xml`,
      annotation_summary:
        seed.tumourAreaMm2 === undefined
          ? null
          : JSON.stringify({ layers: [{ id: 1, name: 'whole tumour' }], regionCount: 1, tumourAreaMm2: seed.tumourAreaMm2 }),
    })),
  );
  // Written straight into the table: their words too, as the slides' writers do.
  await writeCatalogWords(app.database.db.knex, SEEDS.map((seed) => ({ id: seed.id, name: seed.name, pathologyInfo: seed.pathologyInfo ?? null })));
  return app;
}

/** The catalog is for L1 viewers: every request here carries the token of an L1 account. */
async function get(app: TestApp, pathname: string, headers: Record<string, string> = {}) {
  const response = await viewerFetch(app, pathname, { headers });
  const type = response.headers.get('content-type') ?? '';
  const body = type.startsWith('application/json') ? ((await response.json()) as Record<string, unknown>) : Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body: body as never };
}

const ids = (body: { items: { id: number }[] }) => body.items.map((item) => item.id);

test('the search lists published slides newest first, with display names, links and facets', async (t) => {
  const app = await start(t);
  const { status, headers, body } = await get(app, '/api/slides');
  t.is(status, 200);
  t.regex(headers.get('content-type') ?? '', /^application\/json/);
  const result = body as { items: Record<string, unknown>[]; total: number; page: number; pageSize: number; offset: number; limit: number; facets: unknown };
  t.deepEqual(ids(result as never), [6, 5, 4, 3, 2, 1, 8]);
  t.like(result, { total: 7, page: 1, pageSize: 24, offset: 0, limit: 24 });
  t.deepEqual(result.items[4], {
    id: 2,
    name: 'SB1-LV-HCC-IHC-B2',
    organ: 'LV',
    organName: 'Liver',
    histology: 'HCC',
    histologyName: 'Hepatocellular carcinoma',
    stain: 'IHC',
    stainName: 'IHC',
    marker: 'KI67',
    markerName: 'Ki-67',
    differentiation: 'PD',
    differentiationName: 'Poorly differentiated',
    annotationMethod: 'A',
    annotationMethodName: 'AI-assisted',
    dataset: 'PAIP2019',
    pathologyInfo: '30% Ki-67_positive',
    width: 46_000,
    height: 32_914,
    levelCount: 3,
    mpp: { x: 0.499, y: 0.5 },
    objectivePower: 20,
    fileSize: 300,
    sha256: '2'.repeat(64),
    hasAnnotation: true,
    annotation: { layers: [{ id: 1, name: 'whole tumour' }], regionCount: 1, tumourAreaMm2: 40 },
    createdAt: '2026-01-02T00:00:00.000Z',
    thumbnails: { small: '/api/slides/2/thumbnail?size=small', large: '/api/slides/2/thumbnail?size=large' },
    tiles: '/tiles/2.dzi',
  });
  t.like(result.items[2], { id: 4, hasAnnotation: false, annotation: null, annotationMethod: null, annotationMethodName: null });
  t.like(result.items[6], { id: 8, organ: 'XX', organName: 'XX', histology: 'ZZZ', histologyName: 'ZZZ', stain: null, stainName: null });
  const text = JSON.stringify(result);
  t.false(/secret|file_?path|original/i.test(text), 'no file path, annotation path or original checksum leaves the server');

  t.deepEqual(result.facets, {
    organ: [
      { value: 'LV', name: 'Liver', count: 2 },
      { value: 'CO', name: 'Colon', count: 2 },
      { value: 'PR', name: 'Prostate', count: 1 },
      { value: 'KI', name: 'Kidney', count: 1 },
      { value: 'XX', name: 'XX', count: 1 },
    ],
    histology: [
      { value: 'HCC', name: 'Hepatocellular carcinoma', count: 2 },
      { value: 'ADC', name: 'Adenocarcinoma', count: 3 },
      { value: 'RCC', name: 'Renal cell carcinoma', count: 1 },
      { value: 'ZZZ', name: 'ZZZ', count: 1 },
    ],
    stain: [
      { value: 'HE', name: 'H&E', count: 4 },
      { value: 'IHC', name: 'IHC', count: 2 },
    ],
    marker: [
      { value: 'KI67', name: 'Ki-67', count: 1 },
      { value: 'CDX2', name: 'CDX2', count: 1 },
    ],
    differentiation: [
      { value: 'WD', name: 'Well differentiated', count: 1 },
      { value: 'MD', name: 'Moderately differentiated', count: 2 },
      { value: 'PD', name: 'Poorly differentiated', count: 1 },
    ],
    annotationMethod: [
      { value: 'M', name: 'manual', count: 3 },
      { value: 'A', name: 'AI-assisted', count: 2 },
    ],
    dataset: [
      { value: 'PAIP2019', name: 'PAIP2019', count: 2 },
      { value: 'PAIP2020', name: 'PAIP2020', count: 2 },
      { value: 'PAIP2021', name: 'PAIP2021', count: 1 },
    ],
  });
});

test('facets are OR within and AND across, and each facet counts under the others only', async (t) => {
  const app = await start(t);
  const { body } = await get(app, '/api/slides?organ=LV,co&stain=IHC');
  const result = body as { total: number; items: { id: number }[]; facets: Record<string, { value: string; count: number }[]> };
  t.deepEqual(ids(result), [4, 2]);
  t.is(result.total, 2);
  const counts = (facet: string) => Object.fromEntries(result.facets[facet]!.map(({ value, count }) => [value, count]));
  t.deepEqual(counts('organ'), { LV: 1, CO: 1 }, 'organs of the IHC slides');
  t.deepEqual(counts('stain'), { HE: 2, IHC: 2 }, 'stains of the liver and colon slides: ticking IHC does not zero H&E');
  t.deepEqual(counts('marker'), { KI67: 1, CDX2: 1 });
  t.deepEqual(counts('dataset'), { PAIP2019: 1, PAIP2020: 1 });

  const repeated = await get(app, '/api/slides?organ=LV&organ=CO&stain=IHC');
  t.deepEqual(repeated.body, body, 'repeated parameters mean the same as a comma-separated list');

  const zero = await get(app, '/api/slides?organ=PR&stain=IHC');
  const zeroResult = zero.body as typeof result;
  t.is(zeroResult.total, 0);
  t.deepEqual(zeroResult.facets.stain, [
    { value: 'HE', name: 'H&E', count: 1 },
    { value: 'IHC', name: 'IHC', count: 0 },
  ] as never, 'a ticked value with no slides stays listed');
});

test('text search matches the starts of words of names and pathology information, and display names, with wildcards taken literally', async (t) => {
  const app = await start(t);
  const cases: [string, number[], string?][] = [
    ['liver', [2, 1]],
    ['Hepatocellular', [2, 1]],
    ['adenocarcinoma', [5, 4, 3]],
    ['ki-67', [2]],
    ['30%', [2]],
    ['30', [5, 2], 'the start of a word: 30 and 300'],
    ['ki-67_pos', [2]],
    // A term without a letter or digit matches no slide by its text.
    ['_', []],
    ['%', []],
    ['c3', [3]],
    ['h&e gleason', [5]],
    ['manual colon', [3]],
    ['colon manual colon', [3], 'a term given twice is one term'],
    ['nothing-like-this', []],
  ];
  for (const [q, expected, why] of cases) {
    const { status, body } = await get(app, `/api/slides?q=${encodeURIComponent(q)}`);
    t.is(status, 200);
    t.deepEqual(ids(body), expected, why ?? q);
  }
});

test('pages, windows and sort orders', async (t) => {
  const app = await start(t);
  const second = (await get(app, '/api/slides?pageSize=2&page=2&sort=name')).body as { items: { id: number }[] };
  t.like(second, { total: 7, page: 2, pageSize: 2, offset: 2, limit: 2 });
  // By name: LEGACY-H8, SB1-CO-ADC-HE-C3, SB1-CO-ADC-IHC-D4, SB1-KI-…, SB1-LV-HCC-HE-A1, SB1-LV-HCC-IHC-B2, SB1-PR-…
  t.deepEqual(ids(second), [4, 6]);
  t.deepEqual(ids((await get(app, '/api/slides?sort=-name')).body), [5, 2, 1, 6, 4, 3, 8]);
  t.deepEqual(ids((await get(app, '/api/slides?sort=created')).body), [8, 1, 2, 3, 4, 5, 6]);
  t.deepEqual(ids((await get(app, '/api/slides?sort=-size')).body), [3, 5, 1, 4, 2, 8, 6], 'equal sizes (2 and 4) in id order, reversed');
  t.deepEqual(ids((await get(app, '/api/slides?sort=size')).body), [6, 8, 2, 4, 1, 5, 3]);

  const window = (await get(app, '/api/slides?offset=3&limit=2')).body;
  t.like(window, { total: 7, page: null, pageSize: 2, offset: 3, limit: 2 });
  t.deepEqual(ids(window), [3, 2]);
  t.like((await get(app, '/api/slides?offset=4&limit=2')).body, { page: 3 });
  const past = (await get(app, '/api/slides?page=9&pageSize=200')).body;
  t.like(past, { total: 7, page: 9, pageSize: 200 });
  t.deepEqual(ids(past), []);
});

test('bad search parameters are a 400 that names every problem', async (t) => {
  const app = await start(t);
  const cases: [string, RegExp][] = [
    ['sort=random', /sort must be one of name, -name, created, -created, size, -size, not "random"/],
    ['page=0', /page must be a whole number from 1/],
    ['page=-1', /page must be a whole number from 1/],
    ['page=1.5', /page must be a whole number/],
    ['pageSize=1000', /pageSize must be a whole number from 1 to 200, not "1000"/],
    ['pageSize=0', /pageSize must be a whole number from 1 to 200/],
    ['limit=201', /limit must be a whole number from 1 to 200/],
    ['offset=x', /offset must be a whole number from 0/],
    ['colour=red', /colour is not a parameter here/],
    ['page=2&offset=10', /either page and pageSize or offset and limit, not both/],
    ['sort=name&sort=-name', /sort is given more than once; give it once/],
    ['q=a&q=b', /q is given more than once/],
    [`q=${'x'.repeat(201)}`, /q is 201 characters long/],
    [`q=${'a '.repeat(11)}`, /q has 11 words; at most 10/],
    [`dataset=${'d'.repeat(101)}`, /at most 100 are allowed/],
  ];
  for (const [query, message] of cases) {
    const { status, headers, body } = await get(app, `/api/slides?${query}`);
    t.is(status, 400, query);
    t.regex(headers.get('content-type') ?? '', /^application\/json/);
    const error = (body as { error: { code: string; message: string; requestId: string; details: { problems: { field: string }[] } } }).error;
    t.is(error.code, 'invalid_query', query);
    t.regex(error.message, message, query);
    t.is(typeof error.requestId, 'string');
    t.true(error.details.problems.length >= 1);
  }
  const many = (await get(app, '/api/slides?sort=x&page=0&colour=red')).body as { error: { details: { problems: { field: string }[] } } };
  t.deepEqual(many.error.details.problems.map((p) => p.field).sort(), ['colour', 'page', 'sort'], 'every problem at once');
});

test('the summary counts slides by organ and histology, and by organ and annotation method', async (t) => {
  const app = await start(t);
  const { status, body } = await get(app, '/api/slides/summary');
  t.is(status, 200);
  t.deepEqual(body, {
    total: 7,
    organHistology: {
      rows: [
        { organ: 'LV', organName: 'Liver', histology: 'HCC', histologyName: 'Hepatocellular carcinoma', count: 2 },
        { organ: 'CO', organName: 'Colon', histology: 'ADC', histologyName: 'Adenocarcinoma', count: 2 },
        { organ: 'PR', organName: 'Prostate', histology: 'ADC', histologyName: 'Adenocarcinoma', count: 1 },
        { organ: 'KI', organName: 'Kidney', histology: 'RCC', histologyName: 'Renal cell carcinoma', count: 1 },
        { organ: 'XX', organName: 'XX', histology: 'ZZZ', histologyName: 'ZZZ', count: 1 },
      ],
      total: 7,
    },
    organAnnotationMethod: {
      methods: [
        { value: 'M', name: 'manual' },
        { value: 'A', name: 'AI-assisted' },
        { value: null, name: null },
      ],
      rows: [
        {
          organ: 'LV',
          organName: 'Liver',
          count: 2,
          methods: [
            { value: 'M', name: 'manual', count: 1, share: 0.5 },
            { value: 'A', name: 'AI-assisted', count: 1, share: 0.5 },
            { value: null, name: null, count: 0, share: 0 },
          ],
        },
        {
          organ: 'CO',
          organName: 'Colon',
          count: 2,
          methods: [
            { value: 'M', name: 'manual', count: 1, share: 0.5 },
            { value: 'A', name: 'AI-assisted', count: 0, share: 0 },
            { value: null, name: null, count: 1, share: 0.5 },
          ],
        },
        {
          organ: 'PR',
          organName: 'Prostate',
          count: 1,
          methods: [
            { value: 'M', name: 'manual', count: 1, share: 1 },
            { value: 'A', name: 'AI-assisted', count: 0, share: 0 },
            { value: null, name: null, count: 0, share: 0 },
          ],
        },
        {
          organ: 'KI',
          organName: 'Kidney',
          count: 1,
          methods: [
            { value: 'M', name: 'manual', count: 0, share: 0 },
            { value: 'A', name: 'AI-assisted', count: 1, share: 1 },
            { value: null, name: null, count: 0, share: 0 },
          ],
        },
        {
          organ: 'XX',
          organName: 'XX',
          count: 1,
          methods: [
            { value: 'M', name: 'manual', count: 0, share: 0 },
            { value: 'A', name: 'AI-assisted', count: 0, share: 0 },
            { value: null, name: null, count: 1, share: 1 },
          ],
        },
      ],
      totals: [
        { value: 'M', name: 'manual', count: 3, share: 0.4286 },
        { value: 'A', name: 'AI-assisted', count: 2, share: 0.2857 },
        { value: null, name: null, count: 2, share: 0.2857 },
      ],
      total: 7,
    },
  });
});

test('one slide by id; withdrawn, unknown and malformed ids are a 404', async (t) => {
  const app = await start(t);
  const { status, body } = await get(app, '/api/slides/3');
  t.is(status, 200);
  const list = (await get(app, '/api/slides?organ=CO&stain=HE')).body as { items: unknown[] };
  const { dicomweb, ...summary } = body as { dicomweb: { studyInstanceUid: string; seriesInstanceUid: string; viewerUrl: string | null } };
  t.deepEqual(summary, list.items[0] as never, 'the search result, and where DICOMweb serves the slide');
  t.regex(dicomweb.studyInstanceUid, /^2\.25\.\d+$/);
  t.regex(dicomweb.seriesInstanceUid, /^2\.25\.\d+$/);
  t.is(dicomweb.viewerUrl, null, 'no DICOMweb viewer configured');
  t.like(body, { id: 3, name: 'SB1-CO-ADC-HE-C3', organName: 'Colon', differentiationName: 'Well differentiated' });

  for (const id of ['7', '99', '0', 'abc', '1.5', '-1', '99999999999']) {
    const missing = await get(app, `/api/slides/${id}`);
    t.is(missing.status, 404, id);
    t.is((missing.body as { error: { code: string } }).error.code, 'slide_not_found', id);
  }
});

async function writeJpeg(file: string, colour: { r: number; g: number; b: number }): Promise<Buffer> {
  await mkdir(path.dirname(file), { recursive: true });
  const jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: colour } }).jpeg().toBuffer();
  // Written aside and renamed in, as the thumbnail writer does.
  await writeFile(`${file}.partial`, jpeg);
  await rename(`${file}.partial`, file);
  return jpeg;
}

test('thumbnails are JPEG with a strong ETag, and a matching If-None-Match is a 304', async (t) => {
  const app = await start(t);
  const file = thumbnailPath(app.config.paths.thumbnails, 2, 'small');
  const jpeg = await writeJpeg(file, { r: 200, g: 40, b: 90 });

  const first = await get(app, '/api/slides/2/thumbnail?size=small');
  t.is(first.status, 200);
  t.is(first.headers.get('content-type'), 'image/jpeg');
  t.is(first.headers.get('content-length'), String(jpeg.length));
  t.is(first.headers.get('cache-control'), 'private, max-age=3600');
  t.true((first.body as Buffer).equals(jpeg));
  const etag = first.headers.get('etag') ?? '';
  t.regex(etag, /^"[\w-]{27}"$/, 'strong: no W/ prefix');
  t.deepEqual((await sharp(first.body as Buffer).metadata()).format, 'jpeg');

  const byDefault = await get(app, '/api/slides/2/thumbnail');
  t.is(byDefault.status, 200, 'small is the default size');
  t.is(byDefault.headers.get('etag'), etag);

  for (const header of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
    const cached = await get(app, '/api/slides/2/thumbnail?size=small', { 'If-None-Match': header });
    t.is(cached.status, 304, header);
    t.is(cached.headers.get('etag'), etag);
    t.is((cached.body as Buffer).length, 0);
  }
  const stale = await get(app, '/api/slides/2/thumbnail?size=small', { 'If-None-Match': '"something-else"' });
  t.is(stale.status, 200);

  const replaced = await writeJpeg(file, { r: 10, g: 200, b: 10 });
  const fresh = await get(app, '/api/slides/2/thumbnail?size=small', { 'If-None-Match': etag });
  t.is(fresh.status, 200, 'a new thumbnail no longer matches the old tag');
  t.not(fresh.headers.get('etag'), etag);
  t.true((fresh.body as Buffer).equals(replaced));
  t.deepEqual(await readFile(file), replaced);
});

test('a missing thumbnail, slide or size is answered precisely', async (t) => {
  const app = await start(t);
  await writeJpeg(thumbnailPath(app.config.paths.thumbnails, 7, 'small'), { r: 1, g: 2, b: 3 });
  const cases: [string, number, string][] = [
    ['/api/slides/2/thumbnail?size=large', 404, 'thumbnail_not_found'],
    ['/api/slides/7/thumbnail?size=small', 404, 'slide_not_found'],
    ['/api/slides/99/thumbnail', 404, 'slide_not_found'],
    ['/api/slides/x/thumbnail', 404, 'slide_not_found'],
    ['/api/slides/2/thumbnail?size=huge', 400, 'invalid_query'],
    ['/api/slides/2/thumbnail?size=small&size=large', 400, 'invalid_query'],
    ['/api/slides/2/thumbnail?width=10', 400, 'invalid_query'],
  ];
  for (const [pathname, status, code] of cases) {
    const { status: got, headers, body } = await get(app, pathname);
    t.is(got, status, pathname);
    t.regex(headers.get('content-type') ?? '', /^application\/json/, pathname);
    t.is(headers.get('etag'), null, `${pathname}: an error carries no ETag`);
    t.is((body as { error: { code: string } }).error.code, code, pathname);
  }
});
