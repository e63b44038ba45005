// Withdrawing and republishing slides: /api/admin/slides for administrators and curators.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface ManagedSlide {
  id: number;
  name: string;
  status: string;
  withdrawal: { reason: string | null; at: string; actorId: number | null } | null;
}
interface Problem {
  error: { code: string; message: string };
}

const tempDirs: string[] = [];
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function setUp(t: ExecutionContext) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-admin-slides-'));
  tempDirs.push(dir);
  const app = await startTestApp(t);
  const { svs } = await makeSlide({ width: 1200, height: 900, levels: 2, seed: 11, out: dir, name: 'kept' });
  const slide = await registerSlide(app.database.db, svs, 'CO-0001-HE');
  const other = await registerSlide(app.database.db, (await makeSlide({ width: 600, height: 400, seed: 12, out: dir, name: 'other' })).svs, 'LU-0002-HE');
  return { app, slide, other };
}

test(`curators and administrators withdraw a slide with a reason and publish it again; catalog and tiles follow at once (${testDialect})`, async (t) => {
  const { app, slide, other } = await setUp(t);
  const curator = await signedIn(app, { level: 'L1', roles: ['curator'] });
  const admin = await signedIn(app, { level: 'L1', roles: ['admin'] });
  const viewer = await signedIn(app, { level: 'L3' });

  // The tiles are served, so the tile server now holds the slide's row in its cache.
  t.is((await viewer.token.get(`/tiles/${slide.id}.dzi`)).status, 200);
  t.is((await viewer.token.get(`/tiles/${slide.id}_files/0/0_0.jpeg`)).status, 200);

  const listed = await curator.session.get<{ items: ManagedSlide[]; total: number }>('/api/admin/slides');
  t.is(listed.status, 200);
  t.deepEqual(listed.body.items.map((s) => [s.name, s.status]), [['CO-0001-HE', 'published'], ['LU-0002-HE', 'published']]);
  t.is(listed.headers.get('cache-control'), 'no-store');

  const withdrawn = await curator.session.post<ManagedSlide>(`/api/admin/slides/${slide.id}/withdraw`, { reason: '  Consent withdrawn by the patient  ' });
  t.is(withdrawn.status, 200, JSON.stringify(withdrawn.body));
  t.is(withdrawn.body.status, 'withdrawn');
  t.is(withdrawn.body.withdrawal?.reason, 'Consent withdrawn by the patient');
  t.is(withdrawn.body.withdrawal?.actorId, curator.user.id);

  // Gone everywhere at once, well within the tile server's 5 s row cache.
  t.is((await viewer.token.get(`/tiles/${slide.id}.dzi`)).status, 404);
  t.is((await viewer.token.get(`/tiles/${slide.id}_files/0/0_0.jpeg`)).status, 404);
  t.is((await viewer.token.get(`/tiles/${slide.id}/overlays`)).status, 404);
  t.is((await viewer.token.get(`/api/slides/${slide.id}`)).status, 404);
  t.is((await viewer.token.get(`/api/slides/${slide.id}/files/slide`)).status, 404);
  const catalog = await viewer.token.get<{ items: { id: number }[]; total: number }>('/api/slides');
  t.deepEqual(catalog.body.items.map((s) => s.id), [other.id]);
  t.is((await viewer.token.get(`/tiles/${other.id}.dzi`)).status, 200, 'the other slide is untouched');

  // Twice is a conflict, and changes nothing.
  const again = await admin.session.post<Problem>(`/api/admin/slides/${slide.id}/withdraw`, { reason: 'again' });
  t.is(again.status, 409);
  t.is(again.body.error.code, 'slide_status_conflict');
  const onlyWithdrawn = await admin.token.get<{ items: ManagedSlide[]; total: number }>('/api/admin/slides?status=withdrawn');
  t.is(onlyWithdrawn.body.total, 1);
  t.is(onlyWithdrawn.body.items[0]?.withdrawal?.reason, 'Consent withdrawn by the patient', 'the first reason stands');

  const events = await app.database.db.knex('audit_log').where({ subject_type: 'slide', subject_id: String(slide.id) }).orderBy('id');
  t.deepEqual(events.map((e: { action: string }) => e.action), ['slide.withdrawn']);
  t.like(JSON.parse((events[0] as { details: string }).details), { reason: 'Consent withdrawn by the patient', from: 'published', to: 'withdrawn' });

  // Published again by an administrator: back in the catalog and the tiles.
  const republished = await admin.session.post<ManagedSlide>(`/api/admin/slides/${slide.id}/publish`);
  t.is(republished.status, 200);
  t.is(republished.body.status, 'published');
  t.is(republished.body.withdrawal, null);
  t.is((await viewer.token.get(`/tiles/${slide.id}.dzi`)).status, 200);
  t.is((await viewer.token.get(`/api/slides/${slide.id}`)).status, 200);
  t.is((await admin.session.post<Problem>(`/api/admin/slides/${slide.id}/publish`)).status, 409, 'publishing a published slide is a conflict');
  const actions = await app.database.db.knex('audit_log').where({ subject_type: 'slide', subject_id: String(slide.id) }).orderBy('id').pluck('action');
  t.deepEqual(actions, ['slide.withdrawn', 'slide.republished']);
});

test(`only administrators and curators manage slides; bad ids, reasons and queries are refused and change nothing (${testDialect})`, async (t) => {
  const { app, slide } = await setUp(t);
  const curator = await signedIn(app, { level: 'L1', roles: ['curator'] });
  const pathologist = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const researcher = await signedIn(app, { level: 'L3' });

  for (const client of [pathologist.session, researcher.session, researcher.token]) {
    t.is((await client.get('/api/admin/slides')).status, 403);
    t.is((await client.post(`/api/admin/slides/${slide.id}/withdraw`, { reason: 'no' })).status, 403);
    t.is((await client.post(`/api/admin/slides/${slide.id}/publish`)).status, 403);
  }
  const anonymous = new Client(app);
  t.is((await anonymous.get('/api/admin/slides')).status, 401);
  // A cookie session without its CSRF token cannot write.
  t.is((await curator.session.post(`/api/admin/slides/${slide.id}/withdraw`, { reason: 'x' }, { csrf: false })).status, 403);

  for (const id of ['abc', '0', '-1', '1.5', '99999999999']) {
    const answer = await curator.session.post<Problem>(`/api/admin/slides/${id}/withdraw`, { reason: 'x' });
    t.is(answer.status, 404, id);
    t.is(answer.body.error.code, 'slide_not_found');
  }
  t.is((await curator.session.post<Problem>('/api/admin/slides/99999/withdraw', { reason: 'x' })).status, 404);
  t.is((await curator.session.post<Problem>('/api/admin/slides/99999/publish')).status, 404);

  for (const body of [{}, { reason: '' }, { reason: '   ' }, { reason: 42 }, { reason: 'x'.repeat(501) }]) {
    const answer = await curator.session.post<Problem>(`/api/admin/slides/${slide.id}/withdraw`, body);
    t.is(answer.status, 400, JSON.stringify(body));
    t.is(answer.body.error.code, 'invalid_request');
    t.regex(answer.body.error.message, /reason/);
  }
  t.is((await curator.session.post<Problem>(`/api/admin/slides/${slide.id}/publish`)).status, 409, 'a published slide cannot be published again');
  for (const query of ['status=quarantined', 'limit=0', 'limit=501', 'offset=-1', 'limit=abc']) {
    t.is((await curator.session.get(`/api/admin/slides?${query}`)).status, 400, query);
  }

  // Nothing changed: the slide is still published and nothing was audited.
  t.is((await researcher.token.get(`/api/slides/${slide.id}`)).status, 200);
  t.is(await app.database.db.knex('audit_log').where({ subject_type: 'slide' }).count({ n: '*' }).first().then((row) => Number(row?.n)), 0);
});
