// What a slide came from (scanner vendor, original format): set by ingest for every path, counted
// as facets in the catalog search for staff only, and listed in a download's metadata.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import { metadataCsv, metadataRecords, type SelectedSlide } from '../../server/downloads/bundle-contents.js';
import { toDbTime } from '../../server/db/index.js';
import { DownloadsRepository } from '../../server/downloads/downloads.repository.js';
import { slideOrigin } from '../../server/ingest/origin.js';
import { bearerHeaders } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { ingestBench } from '../support/ingest.js';
import { makeSlide } from '../support/slides.js';

const GOOD_ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

test('each format ingest recognises gives its scanner vendor and original format', (t) => {
  t.deepEqual(slideOrigin('aperio', undefined), { scannerVendor: 'aperio', originalFormat: 'svs' });
  t.deepEqual(slideOrigin('hamamatsu', undefined), { scannerVendor: 'hamamatsu', originalFormat: 'ndpi' });
  t.deepEqual(slideOrigin('generic-tiff', undefined), { scannerVendor: 'generic', originalFormat: 'tiff' });
  t.deepEqual(slideOrigin('dicom', undefined), { scannerVendor: 'dicom', originalFormat: 'dicom' });
  t.deepEqual(slideOrigin('generic-tiff', { vendor: 'mirax', format: 'mrxs', properties: new Map() }), { scannerVendor: 'mirax', originalFormat: 'mrxs' });
});

test(`ingest records the scanner vendor and original format of an SVS and an NDPI, and downloads list them in metadata.csv, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  await makeSlide({ format: 'svs', width: 1024, height: 768, seed: 3, out: bench.inbox, name: 'case-svs' });
  await makeSlide({ format: 'ndpi', width: 1024, height: 768, seed: 4, out: bench.inbox, name: 'case-ndpi' });
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify(['case-svs.svs', 'case-ndpi.ndpi'].map((file) => ({ file, ...GOOD_ROW })), { header: true }));
  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  t.deepEqual(results.map((r) => `${r.file} ${r.outcome}`), ['case-ndpi.ndpi published', 'case-svs.svs published'], results.map((r) => r.reason).join('; '));
  const rows = (await bench.database.db.knex('slides').orderBy('id').select('id', 'scanner_vendor', 'original_format')) as { id: number; scanner_vendor: string; original_format: string }[];
  // The slides of one folder are ingested several at once: their ids follow the order they finish in.
  t.deepEqual(rows.map((r) => `${r.scanner_vendor} ${r.original_format}`).sort(), ['aperio svs', 'hamamatsu ndpi']);

  const slides = await new DownloadsRepository(bench.database.db.knex).findPublishedMany(rows.map((r) => r.id));
  const selected: SelectedSlide[] = slides.map((slide) => ({
    slide,
    files: [{ slide, kind: 'slide', path: `slides/${slide.name}.tif`, file: slide.filePath, size: slide.fileSize, sha256: slide.sha256, mtime: new Date() }],
  }));
  const records = metadataRecords(selected, bench.service.vocabulary);
  t.deepEqual(records.map((r) => `${r.scannerVendor} ${r.originalFormat}`).sort(), ['aperio svs', 'hamamatsu ndpi']);
  const [header, ...lines] = metadataCsv(records).trim().split(/\r?\n/);
  t.true(header!.endsWith(',scanner_vendor,original_format'), header);
  t.deepEqual(lines.map((line) => line.split(',').slice(-2).join(' ')).sort(), ['aperio svs', 'hamamatsu ndpi']);
});

test(`the catalog search counts slides by scanner vendor and original format for staff, and never for researchers, on ${testDialect}`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-origin-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const origins: [string | null, string | null][] = [
    ['aperio', 'svs'],
    ['aperio', 'svs'],
    ['mirax', 'mrxs'],
    ['dicom', 'dicom'],
    [null, null],
  ];
  const now = new Date();
  await app.database.db.knex('slides').insert(
    origins.map(([vendor, format], i) => ({
      name: `SB1-LV-HCC-HE-O${i}`,
      file_path: `O${i}.tif`,
      file_size: 100,
      sha256: String(i).repeat(64),
      vendor: 'generic-tiff',
      width: 1000,
      height: 1000,
      level_count: 1,
      status: 'published',
      organ: 'LV',
      histology: 'HCC',
      stain: 'HE',
      scanner_vendor: vendor,
      original_format: format,
      created_at: toDbTime(now),
      updated_at: toDbTime(now),
    })),
  );
  const search = async (spec: Parameters<typeof bearerHeaders>[1]) => {
    const response = await fetch(app.url('/api/slides'), { headers: await bearerHeaders(app, spec) });
    t.is(response.status, 200);
    return (await response.json()) as { total: number; staffFacets?: Record<string, { value: string; count: number }[]> };
  };
  for (const spec of [{ level: 'L1' as const }, { level: 'L3' as const }]) {
    const page = await search(spec);
    t.is(page.total, 5);
    t.false('staffFacets' in page, `a ${spec.level} researcher is not shown what the slides came from`);
  }
  for (const role of ['admin', 'curator'] as const) {
    const page = await search({ level: 'L1', roles: [role] });
    t.deepEqual(
      page.staffFacets,
      {
        scannerVendor: [
          { value: 'aperio', name: 'aperio', count: 2 },
          { value: 'dicom', name: 'dicom', count: 1 },
          { value: 'mirax', name: 'mirax', count: 1 },
        ],
        originalFormat: [
          { value: 'svs', name: 'svs', count: 2 },
          { value: 'dicom', name: 'dicom', count: 1 },
          { value: 'mrxs', name: 'mrxs', count: 1 },
        ],
      },
      `${role}: counted by scanner vendor and by original format; slides without one are not counted`,
    );
  }
  const filtered = await fetch(app.url('/api/slides?organ=CO'), { headers: await bearerHeaders(app, { level: 'L1', roles: ['admin'] }) });
  t.deepEqual(((await filtered.json()) as { staffFacets: unknown }).staffFacets, { scannerVendor: [], originalFormat: [] }, 'counted under the search');
});

test(`staff filter the catalog by scanner vendor and original format; researchers are refused (403), on ${testDialect}`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-origin-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const origins: [string, string | null, string | null][] = [
    ['LV', 'aperio', 'svs'],
    ['LV', 'aperio', 'svs'],
    ['CO', 'aperio', 'svs'],
    ['LV', 'hamamatsu', 'ndpi'],
    ['CO', 'dicom', 'dicom'],
    ['LV', null, null],
  ];
  const now = new Date();
  await app.database.db.knex('slides').insert(
    origins.map(([organ, vendor, format], i) => ({
      name: `SB1-${organ}-X-HE-F${i}`,
      file_path: `F${i}.tif`,
      file_size: 100 + i,
      sha256: String(i).repeat(64),
      vendor: 'generic-tiff',
      width: 1000,
      height: 1000,
      level_count: 1,
      status: 'published',
      organ,
      stain: 'HE',
      scanner_vendor: vendor,
      original_format: format,
      created_at: toDbTime(new Date(now.getTime() + i * 1000)),
      updated_at: toDbTime(now),
    })),
  );
  type Page = { total: number; items: { name: string }[]; facets: { organ: { value: string; count: number }[] }; staffFacets?: Record<string, { value: string; count: number }[]> };
  const search = async (query: string, spec: Parameters<typeof bearerHeaders>[1]) => {
    const response = await fetch(app.url(`/api/slides?${query}`), { headers: await bearerHeaders(app, spec) });
    return { status: response.status, body: (await response.json()) as Page & { error?: { code: string; message: string } } };
  };
  const admin = { level: 'L1' as const, roles: ['admin' as const] };

  const aperio = await search('scannerVendor=aperio', admin);
  t.is(aperio.status, 200);
  t.is(aperio.body.total, 3);
  t.deepEqual(aperio.body.items.map((item) => item.name).sort(), ['SB1-CO-X-HE-F2', 'SB1-LV-X-HE-F0', 'SB1-LV-X-HE-F1']);
  t.deepEqual(aperio.body.facets.organ.map(({ value, count }) => [value, count]), [['LV', 2], ['CO', 1]], 'the facets count under the origin filter');
  t.deepEqual(
    aperio.body.staffFacets!.scannerVendor!.map(({ value, count }) => [value, count]),
    [['aperio', 3], ['dicom', 1], ['hamamatsu', 1]],
    'the filtered facet counts under every other condition, so that its siblings stay',
  );
  t.deepEqual(aperio.body.staffFacets!.originalFormat!.map(({ value, count }) => [value, count]), [['svs', 3]]);

  const both = await search('originalFormat=ndpi,dicom&organ=LV', { level: 'L1', roles: ['curator'] });
  t.is(both.status, 200);
  t.deepEqual(both.body.items.map((item) => item.name), ['SB1-LV-X-HE-F3'], 'values OR-ed within, AND-ed with the other facets');

  const none = await search('scannerVendor=leica', admin);
  t.is(none.body.total, 0);
  t.deepEqual(none.body.staffFacets!.scannerVendor!.find(({ value }) => value === 'leica'), { value: 'leica', name: 'leica', count: 0 }, 'a selected value without slides stays, with 0');

  for (const level of ['L1', 'L2', 'L3'] as const) {
    for (const query of ['scannerVendor=aperio', 'originalFormat=svs', 'organ=LV&originalFormat=svs,ndpi']) {
      const refused = await search(query, { level });
      t.is(refused.status, 403, `${level}: ${query}`);
      t.is(refused.body.error?.code, 'staff_only_filter');
    }
  }
  const plain = await search('organ=LV', { level: 'L1' });
  t.is(plain.status, 200);
  t.is(plain.body.total, 4, 'a researcher still searches by every other facet');
});
