// What each ingest did, for curators: GET /api/ingest/records and GET /api/ingest/slides/{id}/report.
import test from 'ava';
import { toDbTime } from '../../server/db/index.js';
import { IngestRepository } from '../../server/ingest/ingest.repository.js';
import { signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

interface IngestRecord {
  id: number;
  outcome: string;
  reason: string | null;
  slideId: number | null;
  slideName: string | null;
  report: Record<string, unknown> | null;
  source: string;
  createdAt: string;
  quarantined: boolean;
}
interface Problem {
  error: { code: string; message: string; details?: { problems: { field: string; message: string }[] } };
}

test(`curators read ingest records by outcome and window, and a published slide's report, without the server's paths (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const [slide] = (await app.database.db.knex('slides').insert({
    name: 'CO-0001-HE', file_path: 'CO-0001-HE.svs', file_size: 1, sha256: null, vendor: 'aperio', width: 10, height: 10, level_count: 1, status: 'published', created_at: toDbTime(new Date()), updated_at: toDbTime(new Date()),
  }).returning('id')) as ({ id: number } | number)[];
  const slideId = typeof slide === 'object' ? slide.id : slide!;
  const records = new IngestRepository(app.database.db.knex);
  const base = { slideId: null, originalSha256: 'a'.repeat(64), quarantinePath: null, report: null, source: 'cli' as const };
  await records.create({ ...base, outcome: 'published', reason: null, slideId, report: { tiffFormat: 'classic', checks: [{ name: 'no label', passed: true, detail: 'none left' }] } });
  await records.create({ ...base, outcome: 'quarantined', reason: 'verification failed', quarantinePath: '/srv/quarantine/Patient Name 1234.svs', report: { error: 'x' } });
  await records.create({ ...base, outcome: 'refused', reason: 'not a slide', source: 'inbox' });

  const { session } = await signedIn(app, { level: 'L1', roles: ['curator'] });
  const all = await session.get<{ items: IngestRecord[]; limit: number; offset: number }>('/api/ingest/records');
  t.is(all.status, 200);
  t.deepEqual(all.body.items.map((r) => r.outcome), ['refused', 'quarantined', 'published'], 'newest first');
  t.like(all.body, { limit: 50, offset: 0 });
  const text = JSON.stringify(all.body);
  t.false(text.includes('/srv/quarantine') || text.includes('Patient Name') || text.includes('a'.repeat(64)), 'neither the quarantine folder nor the original checksum leaves the server');
  t.like(all.body.items[1], { outcome: 'quarantined', reason: 'verification failed', quarantined: true, report: { error: 'x' } });

  const quarantined = await session.get<{ items: IngestRecord[] }>('/api/ingest/records?outcome=quarantined');
  t.deepEqual(quarantined.body.items.map((r) => r.outcome), ['quarantined']);
  const window = await session.get<{ items: IngestRecord[]; limit: number; offset: number }>('/api/ingest/records?limit=1&offset=1');
  t.deepEqual(window.body.items.map((r) => r.outcome), ['quarantined']);
  t.like(window.body, { limit: 1, offset: 1 });

  const report = await session.get<IngestRecord>(`/api/ingest/slides/${slideId}/report`);
  t.is(report.status, 200);
  t.like(report.body, { outcome: 'published', slideId, quarantined: false, report: { tiffFormat: 'classic', checks: [{ name: 'no label', passed: true }] } });
  // Records name their slide while it is published; a record without a slide, or of a withdrawn one, has no name.
  t.deepEqual(all.body.items.map((r) => r.slideName), [null, null, 'CO-0001-HE']);
  t.is(report.body.slideName, 'CO-0001-HE');
  await app.database.db.knex('slides').where({ id: slideId }).update({ status: 'withdrawn' });
  const afterWithdrawal = await session.get<{ items: IngestRecord[] }>('/api/ingest/records?outcome=published');
  t.deepEqual(afterWithdrawal.body.items.map((r) => [r.slideId, r.slideName]), [[slideId, null]]);
  await app.database.db.knex('slides').where({ id: slideId }).update({ status: 'published' });

  // Bad queries are a 400 that names the parameter; a slide without a report, or no slide at all, a 404.
  for (const [query, field] of [['outcome=lost', 'outcome'], ['limit=0', 'limit'], ['limit=501', 'limit'], ['offset=-1', 'offset'], ['colour=red', 'colour']] as const) {
    const answer = await session.get<Problem>(`/api/ingest/records?${query}`);
    t.is(answer.status, 400, query);
    t.is(answer.body.error.code, 'invalid_query', query);
    t.deepEqual(answer.body.error.details?.problems.map((p) => p.field), [field], query);
  }
  const none = await session.get<Problem>('/api/ingest/slides/99999/report');
  t.is(none.status, 404);
  t.is(none.body.error.code, 'report_not_found');
  for (const id of ['abc', '0', '99999999999']) {
    const malformed = await session.get<Problem>(`/api/ingest/slides/${id}/report`);
    t.is(malformed.status, 404, id);
    t.is(malformed.body.error.code, 'slide_not_found', id);
  }

  // Staff only.
  const researcher = await signedIn(app, { level: 'L3' });
  t.is((await researcher.token.get('/api/ingest/records')).status, 403);
  t.is((await researcher.token.get(`/api/ingest/slides/${slideId}/report`)).status, 403);
});
