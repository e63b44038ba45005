/**
 * Challenges end to end through the API, on generated slides whose tumours
 * the generator knows: organisers make a challenge of two releases and its
 * phases; participants join, form teams, download the data, and submit the
 * truth itself (score 1), an empty mask (0) and an archive missing a slide
 * (invalid: recorded, not counted); the queue scores them and the
 * leaderboard ranks them. Refusals are checked with nothing recorded that
 * should not be.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { challengeData, segmentationArchive, type ChallengeData } from './challenges-setup.js';

const DAY = 86_400_000;

interface Setup {
  app: TestApp;
  work: string;
  data: ChallengeData;
  admin: Client;
}

async function setUp(t: ExecutionContext, challenge: Record<string, unknown> = {}): Promise<Setup> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-challenges-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(work, 'var') } });
  const data = await challengeData(app.config, app.database.db, work);
  const { token: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  const created = await admin.post('/api/admin/challenges', { name: 'liver', task: 'segmentation', train: 'train@1', test: 'test@1', rules: '# Rules\n\nOne team each.', dailyLimit: 2, teamSize: 2, ...challenge });
  t.is(created.status, 201, JSON.stringify(created.body));
  const now = Date.now();
  const phase = await admin.put('/api/admin/challenges/liver/phases/test', { opensAt: new Date(now - DAY).toISOString(), closesAt: new Date(now + DAY).toISOString() });
  t.is(phase.status, 200, JSON.stringify(phase.body));
  return { app, work, data, admin };
}

async function participant(setup: Setup, spec: Parameters<typeof signedIn>[1] = { level: 'L1' }): Promise<{ client: Client; email: string }> {
  const { user, token } = await signedIn(setup.app, spec);
  const joined = await token.post('/api/challenges/liver/join', { rulesVersion: 1 });
  if (joined.status !== 200) throw new Error(`join answered ${joined.status}: ${JSON.stringify(joined.body)}`);
  return { client: token, email: user.email };
}

/** POST an archive as the request body, as a script would. */
async function submit(client: Client, file: string, query = ''): Promise<{ status: number; body: { error?: { code: string; message: string; details?: unknown }; submission?: { id: number; status: string } }; headers: Headers }> {
  const response = await fetch(client.app.url(`/api/challenges/liver/submissions${query}`), {
    method: 'POST',
    headers: { authorization: `Bearer ${client.token!}`, 'content-type': 'application/zip' },
    body: await readFile(file),
  });
  return { status: response.status, body: (await response.json()) as never, headers: response.headers };
}

async function count(app: TestApp, table: string): Promise<number> {
  const row = (await app.database.db.knex(table).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

test(`a participant submits the truth (1), an empty mask (0) and a slide short (invalid, not counted); the leaderboard ranks them (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, work, data } = setup;
  const alice = await participant(setup);
  const bob = await participant(setup);

  const truth = await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth');
  const empty = await segmentationArchive(app.config, data.test, path.join(work, 'empty.zip'), 'empty');
  const short = await segmentationArchive(app.config, data.test, path.join(work, 'short.zip'), 'truth', { slides: [data.test.slides[0]!.name] });
  const wrongSize = await segmentationArchive(app.config, data.test, path.join(work, 'wrong.zip'), 'truth', { size: { width: 10, height: 10 } });

  // A slide short: 422 with the report per file, recorded as invalid, no limit used.
  const refused = await submit(alice.client, short);
  t.is(refused.status, 422);
  t.is(refused.body.error?.code, 'submission_invalid');
  const report = (refused.body.error?.details as { report: { ok: boolean; problems: { slide: string | null; message: string }[] } }).report;
  t.false(report.ok);
  t.true(report.problems.some((p) => p.slide === data.test.slides[1]!.name), JSON.stringify(report));
  // Masks of the wrong size: refused the same way, naming each slide.
  const wrong = await submit(alice.client, wrongSize);
  t.is(wrong.status, 422);
  const wrongReport = (wrong.body.error?.details as { report: { problems: { slide: string | null }[] } }).report;
  t.deepEqual(new Set(wrongReport.problems.map((p) => p.slide)), new Set(data.test.slides.map((s) => s.name)));

  const first = await submit(alice.client, truth);
  t.is(first.status, 202, JSON.stringify(first.body));
  t.is(first.body.submission?.status, 'queued');
  const second = await submit(bob.client, empty);
  t.is(second.status, 202, JSON.stringify(second.body));

  t.deepEqual(await app.services.challenges.scorePending(), { scored: 2, invalid: 0, failed: 0 });

  const mine = await alice.client.get<{ items: { status: string; score: number | null; results: { slide: string; score: number }[] }[] }>('/api/challenges/liver/submissions');
  t.is(mine.status, 200);
  t.deepEqual(mine.body.items.map((s) => s.status), ['scored', 'invalid', 'invalid']);
  t.is(mine.body.items[0]!.score, 1);
  t.deepEqual(mine.body.items[0]!.results.map((r) => r.score), [1, 1]);

  const board = await bob.client.get<{ final: boolean; entries: { rank: number; team: string; score: number; interval: unknown }[] }>('/api/challenges/liver/leaderboard');
  t.is(board.status, 200, JSON.stringify(board.body));
  t.deepEqual(board.body.entries.map((e) => [e.rank, e.score]), [
    [1, 1],
    [2, 0],
  ]);
  t.false(board.body.final);
  t.true(board.body.entries.every((e) => e.interval === null));
  // Per-slide results are the team's own: neither the leaderboard nor another team's submission shows them.
  t.false(JSON.stringify(board.body).includes('results'));
  const aliceSubmission = first.body.submission!.id;
  t.is((await bob.client.get(`/api/challenges/liver/submissions/${aliceSubmission}`)).status, 404);

  // The daily limit (2) counts valid submissions only: Alice has used one; the second is taken, the third refused with a sentence.
  t.is((await submit(alice.client, empty)).status, 202);
  const before = await count(app, 'challenge_submissions');
  const limited = await submit(alice.client, truth);
  t.is(limited.status, 429);
  t.is(limited.body.error?.code, 'daily_limit_reached');
  t.regex(limited.body.error!.message, /the most allowed \(2\)/);
  t.truthy(limited.headers.get('retry-after'));
  t.is(await count(app, 'challenge_submissions'), before, 'a refused submission is not recorded');

  // Outside a phase: refused, nothing recorded.
  const now = Date.now();
  t.is((await setup.admin.put('/api/admin/challenges/liver/phases/final', { opensAt: new Date(now + DAY).toISOString(), closesAt: new Date(now + 2 * DAY).toISOString() })).status, 200);
  const early = await submit(bob.client, truth, '?phase=final');
  t.is(early.status, 409);
  t.is(early.body.error?.code, 'phase_not_open');
  t.is(await count(app, 'challenge_submissions'), before);

  // After the close: taken as late, scored, shown apart from the ranking.
  t.is((await setup.admin.put('/api/admin/challenges/liver/phases/warmup', { opensAt: new Date(now - 3 * DAY).toISOString(), closesAt: new Date(now - 2 * DAY).toISOString() })).status, 200);
  const late = await submit(bob.client, truth, '?phase=warmup');
  t.is(late.status, 202, JSON.stringify(late.body));
  await app.services.challenges.scorePending();
  const closed = await bob.client.get<{ final: boolean; entries: unknown[]; late: { team: string; score: number }[] }>('/api/challenges/liver/leaderboard?phase=warmup');
  t.is(closed.status, 200);
  t.true(closed.body.final);
  t.deepEqual(closed.body.entries, []);
  t.deepEqual(closed.body.late.map((e) => e.score), [1]);

  // The CSV export is for administrators.
  t.is((await bob.client.get('/api/challenges/liver/leaderboard?format=csv')).status, 403);
  const csv = await setup.admin.get<Buffer>('/api/challenges/liver/leaderboard?format=csv&phase=test');
  t.is(csv.status, 200);
  t.regex(csv.body.toString('utf8'), /^rank,team,submission,score,low,high,submitted_at,late\r?\n1,/);

  // Joins, submissions and their refusals by validation are audited.
  const actions = app.audit.events.map((e) => e.action);
  t.true(actions.includes('challenge.joined'));
  t.is(actions.filter((a) => a === 'challenge.submitted').length, 6);
});

test(`a closed phase's final ranking carries bootstrap intervals; a hidden leaderboard is for administrators until the close; rescoring is audited (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, work, data, admin } = setup;
  const alice = await participant(setup);
  const now = Date.now();
  t.is((await admin.put('/api/admin/challenges/liver/phases/test', { opensAt: new Date(now - DAY).toISOString(), closesAt: new Date(now + DAY).toISOString(), leaderboard: 'hidden' })).status, 200);
  t.is((await submit(alice.client, await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth'))).status, 202);
  await app.services.challenges.scorePending();
  const hidden = await alice.client.get<{ error: { code: string } }>('/api/challenges/liver/leaderboard');
  t.is(hidden.status, 403);
  t.is(hidden.body.error.code, 'leaderboard_hidden');
  t.is((await admin.get('/api/challenges/liver/leaderboard')).status, 200);

  // Closed: shown to everyone, final, with intervals.
  t.is((await admin.put('/api/admin/challenges/liver/phases/test', { opensAt: new Date(now - 2 * DAY).toISOString(), closesAt: new Date(now - DAY).toISOString(), leaderboard: 'hidden' })).status, 200);
  const final = await alice.client.get<{ final: boolean; entries: { rank: number; score: number; interval: { low: number; high: number } | null }[] }>('/api/challenges/liver/leaderboard');
  t.is(final.status, 200);
  t.true(final.body.final);
  t.deepEqual(final.body.entries[0]!.interval, { low: 1, high: 1 });

  const rescored = await admin.post<{ queued: number }>('/api/admin/challenges/liver/rescore', {});
  t.is(rescored.status, 200);
  t.is(rescored.body.queued, 1);
  t.deepEqual(await app.services.challenges.scorePending(), { scored: 1, invalid: 0, failed: 0 });
  t.true(app.audit.events.some((e) => e.action === 'challenge.rescored'));
});

test(`teams: one per person, invitations by mail accepted after joining, at most the team size (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app } = setup;
  const alice = await participant(setup);
  const created = await alice.client.post<{ id: number; members: unknown[] }>('/api/challenges/liver/team', { name: 'Hepatic' });
  t.is(created.status, 201, JSON.stringify(created.body));
  const teamId = created.body.id;

  // Invited before joining: the invitation waits; accepting needs the rules accepted first.
  const { user: bobUser, token: bob } = await signedIn(app, { level: 'L1' });
  t.is((await alice.client.post('/api/challenges/liver/team/invitations', { email: bobUser.email })).status, 201);
  const mail = app.mailer.sent.find((m) => m.to === bobUser.email);
  t.truthy(mail);
  t.regex(mail!.text, /Hepatic/);
  const early = await bob.post<{ error: { code: string } }>(`/api/challenges/liver/teams/${teamId}/accept`);
  t.is(early.status, 403);
  t.is(early.body.error.code, 'not_participant');
  t.is((await bob.post('/api/challenges/liver/join', { rulesVersion: 1 })).status, 200);
  const accepted = await bob.post<{ members: unknown[] }>(`/api/challenges/liver/teams/${teamId}/accept`);
  t.is(accepted.status, 200, JSON.stringify(accepted.body));
  t.is(accepted.body.members.length, 2);

  // A user in two teams: refused, however they try.
  const second = await bob.post<{ error: { code: string } }>('/api/challenges/liver/team', { name: 'Other' });
  t.is(second.status, 409);
  t.is(second.body.error.code, 'already_in_team');
  const carol = await participant(setup);
  const carolTeam = await carol.client.post<{ id: number }>('/api/challenges/liver/team', { name: 'Portal' });
  t.is((await carol.client.post('/api/challenges/liver/team/invitations', { email: bobUser.email })).status, 201);
  const twice = await bob.post<{ error: { code: string } }>(`/api/challenges/liver/teams/${carolTeam.body.id}/accept`);
  t.is(twice.status, 409);
  t.is(twice.body.error.code, 'already_in_team');

  // Over the size (2): the invitation is refused while full, and so is accepting one made before.
  const full = await alice.client.post<{ error: { code: string } }>('/api/challenges/liver/team/invitations', { email: carol.email });
  t.is(full.status, 409);
  t.is(full.body.error.code, 'team_full');
  t.is((await bob.post('/api/challenges/liver/team/leave')).status, 204);
  t.is((await alice.client.post('/api/challenges/liver/team/invitations', { email: 'dave@hospital.example' })).status, 201);
  t.is((await alice.client.post('/api/challenges/liver/team/invitations', { email: bobUser.email })).status, 201);
  const dave = await participant(setup, { level: 'L1', email: 'dave@hospital.example' });
  t.is((await bob.post(`/api/challenges/liver/teams/${teamId}/accept`)).status, 200);
  const over = await dave.client.post<{ error: { code: string } }>(`/api/challenges/liver/teams/${teamId}/accept`);
  t.is(over.status, 409);
  t.is(over.body.error.code, 'team_full');
  const members = (await app.database.db.knex('challenge_team_members').where({ team_id: teamId }).count({ n: '*' }).first()) as { n: number | string };
  t.is(Number(members.n), 2);

  const detail = await dave.client.get<{ team: unknown; invitations: { team: string }[] }>('/api/challenges/liver');
  t.is(detail.body.team, null);
  t.deepEqual(detail.body.invitations.map((i) => i.team), ['Hepatic']);
  t.true(app.audit.events.some((e) => e.action === 'challenge.team_joined'));
});

test(`joining gives an L1 participant the challenge's data: training slides with annotations, test slides without (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, data } = setup;
  const { token: outsider } = await signedIn(app, { level: 'L1' });
  const [trainId] = data.trainIds;
  const [testId] = data.testIds;
  const refused = await outsider.get<{ error: { code: string } }>(`/api/challenges/liver/files/${trainId}/slide`);
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'not_participant');
  t.is((await outsider.get(`/api/slides/${trainId}/files/slide`)).status, 403, 'an L1 user cannot download outside a challenge');

  const { client } = await participant(setup);
  const overview = await client.get<{ data: { train: { slides: { slide: string; annotation: string | null }[] }; test: { slides: { slide: string; annotation: string | null }[] } } }>('/api/challenges/liver');
  t.is(overview.status, 200);
  t.true(overview.body.data.train.slides.every((s) => s.annotation !== null));
  t.true(overview.body.data.test.slides.every((s) => s.annotation === null));
  const slide = await client.get<Buffer>(overview.body.data.train.slides[0]!.slide);
  t.is(slide.status, 200);
  t.is(slide.body.length, data.train.slides[0]!.size);
  t.is((await client.get(`/api/challenges/liver/files/${trainId}/annotation`)).status, 200);
  t.is((await client.get(`/api/challenges/liver/files/${testId}/slide`)).status, 200);
  const truth = await client.get<{ error: { code: string } }>(`/api/challenges/liver/files/${testId}/annotation`);
  t.is(truth.status, 403);
  t.is(truth.body.error.code, 'truth_hidden');
  // Only the challenge's data: the participant's level still governs every other slide.
  t.is((await client.get(`/api/slides/${trainId}/files/slide`)).status, 403);
  const elsewhere = await client.get<{ error: { code: string } }>('/api/challenges/liver/files/999/slide');
  t.is(elsewhere.status, 404);
});

test(`the hidden truth is refused to a participant through every route that serves annotations or what is made of them, until it is published (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, data, admin } = setup;
  const { client: researcher } = await participant(setup, { level: 'L3' });
  const { token: pathologist } = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const testId = data.testIds[0]!;
  const trainId = data.trainIds[0]!;
  const walk: { who: Client; method: 'GET' | 'POST'; path: string; body?: unknown }[] = [
    { who: researcher, method: 'GET', path: `/api/slides/${testId}/annotation.geojson` },
    { who: researcher, method: 'GET', path: `/api/slides/${testId}/files/annotation` },
    { who: researcher, method: 'GET', path: `/api/challenges/liver/files/${testId}/annotation` },
    { who: researcher, method: 'GET', path: `/tiles/${testId}/overlays` },
    { who: researcher, method: 'GET', path: '/api/datasets/test/bag' },
    { who: researcher, method: 'GET', path: '/api/datasets/test/bag.zip' },
    { who: researcher, method: 'POST', path: '/api/jobs', body: { type: 'xml-masks', slideId: testId } },
    { who: researcher, method: 'POST', path: '/api/jobs', body: { type: 'patches', slideId: testId, parameters: { labels: true } } },
    { who: pathologist, method: 'GET', path: `/api/slides/${testId}/annotations/review` },
    { who: pathologist, method: 'GET', path: `/api/slides/${testId}/annotations/compare?a=1&b=2` },
    { who: pathologist, method: 'GET', path: `/api/slides/${testId}/annotations/versions/1.geojson` },
    { who: pathologist, method: 'GET', path: `/api/slides/${testId}/annotations/versions/1.xml` },
  ];
  const leaks: string[] = [];
  for (const step of walk) {
    const answer = await step.who.request<{ error?: { code: string } }>(step.method, step.path, step.body === undefined ? {} : { body: step.body });
    if (answer.status !== 403 || answer.body.error?.code !== 'truth_hidden') leaks.push(`${step.method} ${step.path}: ${answer.status} ${answer.body.error?.code ?? ''}`);
  }
  t.deepEqual(leaks, []);

  // Archives and manifests leave the annotation out instead, and keep the rest.
  const manifest = await researcher.get<{ files: { slideId: number; kind: string }[] }>(`/api/downloads/manifest?slides=${testId},${trainId}`);
  t.is(manifest.status, 200);
  t.deepEqual(manifest.body.files.map((f) => `${f.slideId}:${f.kind}`).sort(), [`${testId}:slide`, `${trainId}:annotation`, `${trainId}:slide`].sort());
  const zip = await researcher.post<Buffer>('/api/downloads', { slides: [testId] });
  t.is(zip.status, 200);
  t.false(zip.body.includes(Buffer.from(`annotations/${data.test.slides[0]!.name}`)), 'the ZIP holds no annotation of the test slide');
  t.true(zip.body.includes(Buffer.from('slides/')));
  // The catalog shows the slide, without its annotation's summary (the tumour's area would tell part of the truth).
  const catalog = await researcher.get<{ annotation: unknown }>(`/api/slides/${testId}`);
  t.is(catalog.status, 200);
  t.is(catalog.body.annotation, null);
  const search = await researcher.get<{ items: { id: number; annotation: unknown }[] }>('/api/slides?pageSize=50');
  t.is(search.body.items.find((s) => s.id === testId)!.annotation, null);
  t.not(search.body.items.find((s) => s.id === trainId)!.annotation, null);
  t.not((await admin.get<{ annotation: unknown }>(`/api/slides/${testId}`)).body.annotation, null);

  // Administrators see it; nothing of the challenge's own answers carries it.
  t.is((await admin.get(`/api/slides/${testId}/annotation.geojson`)).status, 200);
  const overview = await researcher.get('/api/challenges/liver');
  t.false(JSON.stringify(overview.body).includes('Vertices'));

  // Published: served like any other annotation.
  t.is((await admin.post('/api/admin/challenges/liver/publish-truth')).status, 200);
  t.is((await researcher.get(`/api/slides/${testId}/annotation.geojson`)).status, 200);
  t.is((await researcher.get(`/api/slides/${testId}/files/annotation`)).status, 200);
  t.is((await researcher.get(`/api/challenges/liver/files/${testId}/annotation`)).status, 200);
  const again = await admin.post<{ error: { code: string } }>('/api/admin/challenges/liver/publish-truth');
  t.is(again.status, 409);
  t.true(app.audit.events.some((e) => e.action === 'challenge.truth_published'));
});

test(`organisers' refusals: overlapping releases, unknown releases, phases with strange slides (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { admin, data } = setup;
  const overlap = await admin.post<{ error: { code: string } }>('/api/admin/challenges', { name: 'again', task: 'segmentation', train: 'test@1', test: 'test@1' });
  t.is(overlap.status, 409);
  const unknown = await admin.post<{ error: { code: string; message: string } }>('/api/admin/challenges', { name: 'none', task: 'segmentation', train: 'train@9', test: 'test@1' });
  t.is(unknown.status, 404);
  t.regex(unknown.body.error.message, /no release 9/);
  const strange = await admin.put<{ error: { code: string; message: string } }>('/api/admin/challenges/liver/phases/extra', {
    opensAt: '2030-01-01T00:00:00Z',
    closesAt: '2030-02-01T00:00:00Z',
    slides: [data.trainIds[0]],
  });
  t.is(strange.status, 400);
  t.regex(strange.body.error.message, /not in the test release/);
  const backwards = await admin.put('/api/admin/challenges/liver/phases/extra', { opensAt: '2030-02-01T00:00:00Z', closesAt: '2030-01-01T00:00:00Z' });
  t.is(backwards.status, 400);
  const rules = await admin.patch<{ rulesVersion: number }>('/api/admin/challenges/liver', { rules: 'New rules.' });
  t.is(rules.status, 200);
  t.is(rules.body.rulesVersion, 2);
});
