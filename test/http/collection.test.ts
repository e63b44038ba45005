/**
 * `GET /api/collection`: what the collection holds, for anyone — published
 * slides counted by organ, stain and annotation method, their size, and the
 * released datasets — with no slide named and no withdrawn slide counted.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { createDatasetsService } from '../../server/datasets/index.js';
import { toDbTime } from '../../server/db/index.js';
import { startTestApp, type TestApp } from '../support/app.js';

interface Seed {
  id: number;
  name: string;
  organ: string;
  stain: string | null;
  annotationMethod: string | null;
  status?: 'withdrawn';
  fileSize: number;
  annotated?: boolean;
}

const SEEDS: Seed[] = [
  { id: 1, name: 'SB1-LV-HCC-HE-A1', organ: 'LV', stain: 'HE', annotationMethod: 'M', fileSize: 500, annotated: true },
  { id: 2, name: 'SB1-LV-HCC-IHC-B2', organ: 'LV', stain: 'IHC', annotationMethod: 'A', fileSize: 300, annotated: true },
  { id: 3, name: 'SB1-CO-ADC-HE-C3', organ: 'CO', stain: 'HE', annotationMethod: 'M', fileSize: 900 },
  { id: 4, name: 'SB1-CO-ADC-HE-D4', organ: 'CO', stain: null, annotationMethod: null, fileSize: 200 },
  // Withdrawn: in no count, and never named.
  { id: 5, name: 'SB1-KI-RCC-HE-W5', organ: 'KI', stain: 'HE', annotationMethod: 'M', status: 'withdrawn', fileSize: 7000, annotated: true },
];

async function start(t: ExecutionContext): Promise<{ app: TestApp; store: string }> {
  const store = await mkdtemp(path.join(os.tmpdir(), 'slidebank-collection-'));
  t.teardown(() => rm(store, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(store, 'var') } });
  for (const seed of SEEDS) await writeFile(path.join(store, `${seed.name}.svs`), Buffer.alloc(seed.fileSize, seed.id));
  const at = toDbTime(new Date('2026-11-02T10:00:00Z'));
  await app.database.db.knex('slides').insert(
    SEEDS.map((seed) => ({
      id: seed.id,
      name: seed.name,
      file_path: path.join(store, `${seed.name}.svs`),
      file_size: seed.fileSize,
      sha256: String(seed.id).repeat(64),
      vendor: 'aperio',
      width: 1000,
      height: 800,
      level_count: 1,
      status: seed.status ?? 'published',
      created_at: at,
      updated_at: at,
      organ: seed.organ,
      histology: seed.organ === 'LV' ? 'HCC' : seed.organ === 'CO' ? 'ADC' : 'RCC',
      stain: seed.stain,
      annotation_method: seed.annotationMethod,
      dataset: 'PAIP2019',
      pathology_info: `case notes of ${seed.name}`,
      original_sha256: String(seed.id).padStart(64, 'a'),
      annotation_path: seed.annotated ? path.join(store, `${seed.name}.xml`) : null,
    })),
  );
  return { app, store };
}

const get = (app: TestApp, pathname: string) => fetch(app.url(pathname), { headers: { Accept: 'application/json' } });

test('anyone gets the published slides in counts: by organ, stain and annotation method, their size, the released datasets', async (t) => {
  const { app } = await start(t);
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('liver-hcc', 'Hepatocellular carcinoma, whole-slide tumour outlines');
  await datasets.add('liver-hcc', { slides: [3, 4] });
  await datasets.release('liver-hcc', '2026.1', 'curator');
  await datasets.withdraw('liver-hcc', 4, 'consent withdrawn');
  await datasets.release('liver-hcc', '2026.2', 'curator');
  await datasets.create('unreleased');

  const response = await get(app, '/api/collection');
  t.is(response.status, 200);
  t.is(response.headers.get('cache-control'), 'public, max-age=60');
  const text = await response.text();
  const body = JSON.parse(text) as Record<string, unknown>;
  t.like(body, { slides: 4, bytes: 1900, annotated: 2 });
  t.deepEqual(body.byOrgan, [
    { value: 'LV', name: 'Liver', count: 2 },
    { value: 'CO', name: 'Colon', count: 2 },
  ]);
  t.deepEqual(body.byStain, [
    { value: 'HE', name: 'H&E', count: 2 },
    { value: 'IHC', name: 'IHC', count: 1 },
  ]);
  t.deepEqual(body.byAnnotationMethod, [
    { value: 'M', name: 'manual', count: 2 },
    { value: 'A', name: 'AI-assisted', count: 1 },
  ]);
  // A release counts the slides it still holds: the one withdrawn from the dataset since release 2026.1 is not counted.
  const released = body.datasets as { name: string; description: string | null; releases: { version: string; releasedAt: string; slides: number }[] }[];
  t.deepEqual(
    released.map((dataset) => ({ ...dataset, releases: dataset.releases.map(({ version, slides }) => ({ version, slides })) })),
    [
      {
        name: 'liver-hcc',
        description: 'Hepatocellular carcinoma, whole-slide tumour outlines',
        releases: [
          { version: '2026.1', slides: 1 },
          { version: '2026.2', slides: 1 },
        ],
      },
    ],
  );
  for (const release of released[0]!.releases) t.regex(release.releasedAt, /^\d{4}-\d\d-\d\dT/);
  t.regex(String(body.countedAt), /^\d{4}-\d\d-\d\dT/);

  // Nothing that names or points at a slide: no names, ids, paths, checksums or case notes.
  for (const seed of SEEDS) {
    t.false(text.includes(seed.name), seed.name);
    t.false(text.includes(String(seed.id).repeat(64)), `the checksum of ${seed.name}`);
  }
  for (const word of ['case notes', '.svs', '.xml', 'thumbnail', '/tiles/', 'sha256', '"id"', 'Kidney', 'KI']) t.false(text.includes(word), word);

  // The catalog's own summary stays behind a login.
  t.is((await get(app, '/api/slides/summary')).status, 401);
});

test('the counts are made at most once a minute', async (t) => {
  const { app } = await start(t);
  const first = (await (await get(app, '/api/collection')).json()) as { slides: number; countedAt: string };
  t.is(first.slides, 4);
  await app.database.db.knex('slides').where({ id: 1 }).update({ status: 'withdrawn' });
  const second = (await (await get(app, '/api/collection')).json()) as { slides: number; countedAt: string };
  t.deepEqual(second, first, 'the same counts, kept');
});
