import test from 'ava';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

const APPLICATION = { researchPurpose: 'Train a model', project: 'Seg', principalInvestigator: 'Prof. Example' };

test(`DUA routes over HTTP: signed PDF upload, someone else's application, double decisions, CSRF and bad input (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  t.is((await new Client(app).get('/api/dua/current')).status, 404, 'nothing published yet');
  const { session: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  t.is((await admin.post('/api/admin/dua/versions', { version: '1', title: 'DUA', body: 'Text' })).status, 201);
  t.like((await new Client(app).get('/api/dua/current')).body, { version: '1', title: 'DUA' });

  const { session: alice, token: aliceToken, user: aliceUser } = await signedIn(app, { level: 'L1' });
  const { session: mallory } = await signedIn(app, { level: 'L1' });
  const unconfirmed = await signedIn(app, { level: 'L1', confirmed: false }).catch((error: Error) => error);
  t.true(unconfirmed instanceof Error, 'an unconfirmed account cannot log in to apply');

  const noCsrf = await alice.post('/api/dua/applications', APPLICATION, { csrf: false });
  t.is(noCsrf.status, 403);
  const bad = await alice.post<{ error: { code: string; message: string } }>('/api/dua/applications', { ...APPLICATION, project: '' });
  t.is(bad.status, 400);
  t.regex(bad.body.error.message, /project: must not be empty/);
  const created = await alice.post<{ id: number; status: string }>('/api/dua/applications', APPLICATION);
  t.is(created.status, 201);
  const id = created.body.id;
  t.is((await aliceToken.post('/api/dua/applications', APPLICATION)).status, 409, 'one open application at a time, through a token too');

  t.is((await mallory.get(`/api/dua/applications/${id}`)).status, 404, "someone else's application is not found");
  t.is((await mallory.post(`/api/dua/applications/${id}/withdraw`)).status, 404);

  const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n'), Buffer.alloc(2048, 32), Buffer.from('\n%%EOF\n')]);
  const put = (client: Client, body: Buffer, type: string) =>
    client.request('PUT', `/api/dua/applications/${id}/signed-pdf`, { body: body.toString('latin1'), headers: { 'content-type': type } });
  t.is((await put(alice, Buffer.from('hello'), 'text/plain')).status, 415);
  t.is((await put(alice, Buffer.from('GIF89a not a pdf'), 'application/pdf')).status, 415);
  t.is((await put(mallory, pdf, 'application/pdf')).status, 404);
  const uploaded = await put(alice, pdf, 'application/pdf');
  t.is(uploaded.status, 200);
  t.like(uploaded.body, { hasSignedPdf: true });
  const back = await alice.get<Buffer>(`/api/dua/applications/${id}/signed-pdf`);
  t.is(back.status, 200);
  t.true(back.body.equals(pdf));
  t.is((await mallory.get(`/api/dua/applications/${id}/signed-pdf`)).status, 404);
  t.is((await admin.get(`/api/dua/applications/${id}/signed-pdf`)).status, 200, 'admins read it to decide');

  t.is((await alice.post(`/api/admin/dua/applications/${id}/approve`, {})).status, 403, 'not an admin');
  const rejectWithout = await admin.post<{ error: { code: string } }>(`/api/admin/dua/applications/${id}/reject`, {});
  t.is(rejectWithout.body.error.code, 'reason_required');
  t.is((await admin.post(`/api/admin/dua/applications/${id}/approve`, {})).status, 200);
  const twice = await admin.post<{ error: { code: string } }>(`/api/admin/dua/applications/${id}/approve`, {});
  t.is(twice.status, 409);
  t.is(twice.body.error.code, 'already_decided');
  t.is((await put(alice, pdf, 'application/pdf')).status, 409, 'a decided application keeps its PDF');
  t.like((await alice.get('/api/auth/me')).body, { level: 'L2' });
  t.regex(
    await app.services.agreements.referenceFor(aliceUser.id),
    new RegExp(`^data use agreement application #${id} under agreement version 1, valid until \\d{4}-\\d{2}-\\d{2} \\(Slidebank user #${aliceUser.id}\\)$`),
    'what a download bundle cites',
  );
  t.is((await admin.get('/api/admin/dua/applications?status=nonsense')).status, 400);
  t.deepEqual((await admin.get<{ items: { id: number }[] }>('/api/admin/dua/applications?status=approved')).body.items.map((a) => a.id), [id]);

  const decisions = app.audit.events.filter((e) => e.action.startsWith('dua.')).map((e) => e.action);
  t.deepEqual(decisions, ['dua.version_published', 'dua.applied', 'dua.pdf_attached', 'dua.approved']);
});
