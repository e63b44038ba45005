import test from 'ava';
import { AgreementsRepository } from '../../server/agreements/agreements.repository.js';
import { DEFAULT_AGREEMENT_VERSION, ensureDefaultAgreement } from '../../server/agreements/default-agreement.js';
import { accountWorkDone, Client, createUser, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

type Version = { id: number; version: string; title: string; body: string; html: string; isDefault: boolean; reviewedAt: string | null; requiresReacceptance: boolean };
type Draft = { id: number; title: string; body: string; html: string };
type Pending = { applications: number; reports: number; total: number; defaultAgreementUnreviewed: boolean };
type Application = { id: number; status: string; version: string; revocationReason: string | null };

const APPLICATION = { researchPurpose: 'Train a model', project: 'Liver segmentation', principalInvestigator: 'Prof. Example' };

test(`the default agreement is installed once, on every start and on nodes starting together, and an administrator reviews it (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const repository = new AgreementsRepository(app.database.db.knex);
  const results = await Promise.all([ensureDefaultAgreement(repository), ensureDefaultAgreement(new AgreementsRepository(app.database.db.knex))]);
  t.is(results.filter(Boolean).length, 1, 'one of two nodes starting together installs it');
  t.is(await ensureDefaultAgreement(repository), undefined, 'the next start installs nothing');
  t.is(Number((await app.database.db.knex('dua_versions').count({ n: '*' }).first())?.n), 1);

  const current = await new Client(app).get<Version>('/api/dua/current');
  t.is(current.status, 200);
  t.like(current.body, { version: DEFAULT_AGREEMENT_VERSION, isDefault: true, reviewedAt: null });
  for (const term of [/CC BY-NC 4\.0/, /re-identify/, /redistribution/i, /[Cc]ite the collection/, /usage report/, /delete every copy/]) t.regex(current.body.body, term);
  t.regex(current.body.html, /<h2>1\. Non-commercial research only<\/h2>/, 'rendered from Markdown');

  const { session: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  t.like((await admin.get<Pending>('/api/admin/dua/pending')).body, { defaultAgreementUnreviewed: true, total: 0 });
  const reviewed = await admin.post<Version>(`/api/admin/dua/versions/${current.body.id}/review`);
  t.is(reviewed.status, 200);
  t.truthy(reviewed.body.reviewedAt);
  t.like((await admin.get<Pending>('/api/admin/dua/pending')).body, { defaultAgreementUnreviewed: false });
  t.true(app.audit.events.some((e) => e.action === 'dua.version_reviewed'));

  const template = await new Client(app).get<Buffer>('/api/dua/current/template');
  t.is(template.status, 200);
  t.regex(template.headers.get('content-type') ?? '', /^text\/html/);
  const page = template.body.toString('utf8');
  t.regex(page, /Slidebank data use agreement \(version 1\)/);
  t.regex(page, /Signature/);
  t.regex(page, /Upload that PDF to your application/);
});

test(`an administrative approval before the first start is given under the default agreement, not a text of its own (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const user = await createUser(app, { level: 'L1' });
  await app.services.agreements.grantAdministrativeApproval(user.id, { actorId: null });
  const versions = await app.services.agreements.versions();
  t.deepEqual(versions.map((v) => [v.version, v.isDefault]), [[DEFAULT_AGREEMENT_VERSION, true]]);
});

test(`drafts are invisible to researchers until published; publishing with re-acceptance makes holders accept again (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  await ensureDefaultAgreement(new AgreementsRepository(app.database.db.knex));
  const { session: admin, user: adminUser } = await signedIn(app, { level: 'L1', roles: ['admin'], name: 'Ada Admin' });
  const { session: alice, user: aliceUser } = await signedIn(app, { level: 'L1', name: 'Alice Researcher' });

  // Alice applies under version 1; every administrator is mailed, after the answer.
  const applied = await alice.post<Application>('/api/dua/applications', APPLICATION);
  t.is(applied.status, 201);
  await accountWorkDone(app);
  const notice = app.mailer.last(adminUser.email);
  t.regex(notice.subject, /New Slidebank data use agreement application from Alice Researcher/);
  t.regex(notice.text, /Project: Liver segmentation/);
  t.regex(notice.text, /\/admin\/dua/);
  t.is(app.mailer.to(aliceUser.email).length, 0, 'the applicant is not sent the administrators\' notice');
  t.like((await admin.get<Pending>('/api/admin/dua/pending')).body, { applications: 1, reports: 0, total: 1 });
  t.is((await alice.get('/api/admin/dua/pending')).status, 403);
  t.is((await admin.post(`/api/admin/dua/applications/${applied.body.id}/approve`, {})).status, 200);
  t.like((await admin.get<Pending>('/api/admin/dua/pending')).body, { applications: 0, total: 0 });
  t.like((await alice.get('/api/auth/me')).body, { level: 'L2' });

  // A draft: saved, changed, previewed, never shown to researchers.
  const saved = await admin.post<Draft>('/api/admin/dua/drafts', { title: 'Terms 2', body: '# Terms\n\nNo **redistribution**.' });
  t.is(saved.status, 201);
  t.regex(saved.body.html, /<strong>redistribution<\/strong>/);
  const changed = await admin.put<Draft>(`/api/admin/dua/drafts/${saved.body.id}`, { title: 'Terms 2', body: '# Terms\n\nNo **redistribution**, ever.\n\n<script>alert(1)</script>' });
  t.is(changed.status, 200);
  t.notRegex(changed.body.html, /<script/, 'the preview is sanitised');
  t.is((await alice.get('/api/admin/dua/drafts')).status, 403);
  t.is((await alice.get(`/api/admin/dua/drafts/${saved.body.id}`)).status, 403);
  t.is((await alice.get<Version>('/api/dua/current')).body.version, DEFAULT_AGREEMENT_VERSION, 'the draft is not the agreement in force');
  t.notRegex((await new Client(app).get<Buffer>('/api/dua/current/template')).body.toString('utf8'), /ever\./);

  // Published with re-acceptance: Alice is L1 until she accepts version 2, and keeps her term.
  const published = await admin.post<Version>(`/api/admin/dua/drafts/${saved.body.id}/publish`, { requiresReacceptance: true });
  t.is(published.status, 201);
  t.like(published.body, { version: '2', title: 'Terms 2', requiresReacceptance: true, isDefault: false });
  t.is((await admin.get(`/api/admin/dua/drafts/${saved.body.id}`)).status, 404, 'a published draft is gone from the drafts');
  t.deepEqual((await admin.get<{ items: Draft[] }>('/api/admin/dua/drafts')).body.items, []);
  t.like((await alice.get<Version>('/api/dua/current')).body, { version: '2', requiresReacceptance: true });
  t.like((await alice.get('/api/auth/me')).body, { level: 'L1' });
  t.false((await admin.get<Pending>('/api/admin/dua/pending')).body.defaultAgreementUnreviewed, 'another text is in force');
  const accepted = await alice.post<Application>('/api/dua/accept');
  t.is(accepted.status, 200);
  t.like(accepted.body, { status: 'approved', version: '2' });
  t.like((await alice.get('/api/auth/me')).body, { level: 'L2' });

  const again = await admin.post<{ error: { code: string } }>('/api/admin/dua/versions', { version: '2', title: 'x', body: 'y' });
  t.is(again.status, 409);
  t.is(again.body.error.code, 'version_taken');
  const draft = await admin.post<Draft>('/api/admin/dua/drafts', { title: 'T', body: 'B' });
  const taken = await admin.post<{ error: { code: string } }>(`/api/admin/dua/drafts/${draft.body.id}/publish`, { version: '2' });
  t.is(taken.status, 409);
  t.is((await admin.get(`/api/admin/dua/drafts/${draft.body.id}`)).status, 200, 'a draft whose label was taken is kept');
  t.is((await admin.delete(`/api/admin/dua/drafts/${draft.body.id}`)).status, 204);

  // Revocation: audited, the holder falls to L1 and is told why; the history shows every decision.
  const revoked = await admin.post<Application>(`/api/admin/dua/applications/${accepted.body.id}/revoke`, { reason: 'Data shared outside the project' });
  t.is(revoked.status, 200);
  t.like(revoked.body, { status: 'revoked', revocationReason: 'Data shared outside the project' });
  t.like((await alice.get('/api/auth/me')).body, { level: 'L1' });
  t.regex(app.mailer.last(aliceUser.email).subject, /revoked/);
  t.is((await admin.post(`/api/admin/dua/applications/${accepted.body.id}/revoke`, { reason: 'again' })).status, 409);
  const history = await admin.get<{ items: Application[] }>(`/api/admin/dua/users/${aliceUser.id}/applications`);
  t.deepEqual(history.body.items.map((a) => [a.version, a.status]), [['2', 'revoked'], ['1', 'approved']]);
  const actions = app.audit.events.filter((e) => e.action.startsWith('dua.')).map((e) => e.action);
  t.deepEqual(actions, ['dua.applied', 'dua.approved', 'dua.draft_saved', 'dua.version_published', 'dua.reaccepted', 'dua.draft_saved', 'dua.draft_deleted', 'dua.revoked']);
});
