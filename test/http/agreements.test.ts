import test from 'ava';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

type ErrorBody = { error: { code: string; message: string; details: { problems: { field: string; message: string }[] } } };

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
  const bad = await alice.post<ErrorBody>('/api/dua/applications', { ...APPLICATION, project: '' });
  t.is(bad.status, 400);
  t.is(bad.body.error.code, 'invalid_request');
  t.regex(bad.body.error.message, /project must not be empty/);
  const incomplete = await alice.post<ErrorBody>('/api/dua/applications', { researchPurpose: '', project: 'x'.repeat(301), extra: 1 });
  t.is(incomplete.status, 400);
  t.deepEqual(
    incomplete.body.error.details.problems,
    [
      { field: 'researchPurpose', message: 'researchPurpose must not be empty' },
      { field: 'project', message: 'project must be at most 300 characters' },
      { field: 'principalInvestigator', message: 'principalInvestigator is missing' },
      { field: 'extra', message: 'extra is not a field here' },
    ],
    'every problem at once, each naming its field',
  );
  t.deepEqual((await alice.get<{ items: unknown[] }>('/api/dua/applications')).body.items, [], 'a refused application is not stored');
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
  const nonsense = await admin.get<ErrorBody>('/api/admin/dua/applications?status=nonsense');
  t.is(nonsense.status, 400);
  t.is(nonsense.body.error.code, 'invalid_query');
  for (const path of ['/api/dua/applications/abc', '/api/dua/applications/0', `/api/dua/applications/${2 ** 31}`, '/api/dua/applications/99999']) {
    const missing = await alice.get<ErrorBody>(path);
    t.is(missing.status, 404, path);
    t.is(missing.body.error.code, 'application_not_found', path);
  }
  t.deepEqual((await admin.get<{ items: { id: number }[] }>('/api/admin/dua/applications?status=approved')).body.items.map((a) => a.id), [id]);

  const decisions = app.audit.events.filter((e) => e.action.startsWith('dua.')).map((e) => e.action);
  t.deepEqual(decisions, ['dua.version_published', 'dua.applied', 'dua.pdf_attached', 'dua.approved']);
});

test(`usage reports and institutions over HTTP: DOIs as links, dates as days, and refused input that changes nothing (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const { session: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  t.is((await admin.post('/api/admin/dua/versions', { version: '1', title: 'DUA', body: 'Text' })).status, 201);
  const { session: alice } = await signedIn(app, { level: 'L1' });
  const applied = await alice.post<{ id: number }>('/api/dua/applications', APPLICATION);
  t.is((await admin.post(`/api/admin/dua/applications/${applied.body.id}/approve`, {})).status, 200);

  const badDoi = await alice.post<ErrorBody>('/api/dua/reports', { usedFor: 'x', results: 'y', publications: [{ title: 't', doi: 'not-a-doi' }] });
  t.is(badDoi.status, 400);
  t.deepEqual(badDoi.body.error.details.problems, [{ field: 'publications.0.doi', message: 'doi must be a DOI such as 10.1186/s12911-021-01484-w' }]);
  t.deepEqual((await alice.get<{ items: unknown[] }>('/api/dua/reports')).body.items, []);
  const filed = await alice.post<{ publications: unknown[] }>('/api/dua/reports', {
    usedFor: 'Segmentation training',
    results: 'Dice 0.87',
    publications: [{ title: 'Liver tumour segmentation', doi: 'https://doi.org/10.1186/s12911-021-01484-w' }],
  });
  t.is(filed.status, 201);
  t.deepEqual(filed.body.publications, [{ title: 'Liver tumour segmentation', doi: '10.1186/s12911-021-01484-w' }], 'a DOI link is kept as the DOI');

  const institution = { name: 'Partner University', agreementReference: 'IA-2027-01', validFrom: '2027-01-01', validUntil: '2028-01-01', emailDomains: ['Partner.Example.org'] };
  const backwards = await admin.post<ErrorBody>('/api/admin/institutions', { ...institution, validUntil: '2026-01-01' });
  t.is(backwards.status, 400);
  t.deepEqual(backwards.body.error.details.problems, [{ field: 'validUntil', message: 'validUntil must be after validFrom' }]);
  const notADay = await admin.post<ErrorBody>('/api/admin/institutions', { ...institution, validFrom: 'next monday' });
  t.is(notADay.status, 400);
  t.deepEqual(notADay.body.error.details.problems.map((p) => p.field), ['validFrom']);
  t.deepEqual((await admin.get<{ items: unknown[] }>('/api/admin/institutions')).body.items, [], 'nothing was made');

  const made = await admin.post<{ id: number; validFrom: string; validUntil: string; emailDomains: string[] }>('/api/admin/institutions', institution);
  t.is(made.status, 201);
  t.like(made.body, { validFrom: '2027-01-01T00:00:00.000Z', validUntil: '2028-01-01T00:00:00.000Z', emailDomains: ['partner.example.org'] });
  const moved = await admin.patch<{ validUntil: string }>(`/api/admin/institutions/${made.body.id}`, { validUntil: '2029-06-30' });
  t.is(moved.body.validUntil, '2029-06-30T00:00:00.000Z');
  t.is((await admin.put(`/api/admin/institutions/${made.body.id}/members/abc`)).status, 404);
  const noUser = await admin.put<ErrorBody>(`/api/admin/institutions/${made.body.id}/members/0`);
  t.is(noUser.body.error.code, 'user_not_found');
  const noInstitution = await admin.put<ErrorBody>('/api/admin/institutions/x1/members/1');
  t.is(noInstitution.body.error.code, 'institution_not_found');
});
