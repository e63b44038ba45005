/**
 * Submissions as participants send them over hospital networks: a
 * multipart/form-data form (as `curl -F archive=@predictions.zip` sends it)
 * and resumable uploads sent in chunks, with a chunk whose answer was lost
 * sent again. Each is scored exactly as the same archive sent as the request
 * body; refusals record nothing, another person's upload is not there, and
 * abandoned uploads are removed by the `challenge-uploads` job.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { createJobs } from '../../server/jobs/index.js';
import { signedIn, type Client } from '../support/accounts.js';
import { memoryLogger } from '../support/logs.js';
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

async function setUp(t: ExecutionContext): Promise<Setup> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-challenge-uploads-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(work, 'var') } });
  const data = await challengeData(app.config, app.database.db, work);
  const { token: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  t.is((await admin.post('/api/admin/challenges', { name: 'liver', task: 'segmentation', train: 'train@1', test: 'test@1', dailyLimit: 3 })).status, 201);
  const now = Date.now();
  t.is((await admin.put('/api/admin/challenges/liver/phases/test', { opensAt: new Date(now - DAY).toISOString(), closesAt: new Date(now + DAY).toISOString() })).status, 200);
  return { app, work, data, admin };
}

async function participant(setup: Setup): Promise<Client> {
  const { token } = await signedIn(setup.app, { level: 'L1' });
  const joined = await token.post('/api/challenges/liver/join', { rulesVersion: 1 });
  if (joined.status !== 200) throw new Error(`join answered ${joined.status}: ${JSON.stringify(joined.body)}`);
  return token;
}

interface Answer {
  status: number;
  headers: Headers;
  body: { error?: { code: string; message: string; details?: Record<string, unknown> }; submission?: { id: number; status: string; fileName: string }; id?: string; offset?: number; size?: number; expiresAt?: string; fileName?: string };
}

/** A request with a body that is not JSON (an archive, a chunk, a form), as a script would send it. */
async function send(client: Client, method: string, pathname: string, body?: Buffer | FormData, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(client.app.url(pathname), { method, headers: { authorization: `Bearer ${client.token!}`, ...headers }, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text === '' ? {} : JSON.parse(text)) as Answer['body'] };
}

function form(files: [field: string, name: string, bytes: Buffer][], fields: [string, string][] = []): FormData {
  const data = new FormData();
  for (const [name, value] of fields) data.append(name, value);
  for (const [field, name, bytes] of files) data.append(field, new Blob([bytes], { type: 'application/zip' }), name);
  return data;
}

async function count(app: TestApp, table: string): Promise<number> {
  const row = (await app.database.db.knex(table).count({ n: '*' }).first()) as { n: number | string };
  return Number(row.n);
}

/** A chunk of an upload: bytes START..END (inclusive) of `archive`. */
function chunk(client: Client, id: string, archive: Buffer, start: number, end: number): Promise<Answer> {
  return send(client, 'PUT', `/api/challenges/liver/uploads/${id}`, archive.subarray(start, end + 1), {
    'content-type': 'application/octet-stream',
    'content-range': `bytes ${start}-${end}/${archive.length}`,
  });
}

/** The team's scored submissions: id, file name, score and per-slide scores. */
async function scored(client: Client) {
  const mine = await client.get<{ items: { id: number; fileName: string; status: string; score: number | null; metrics: unknown; results: { slide: string; score: number; metrics: unknown }[] }[] }>('/api/challenges/liver/submissions');
  return mine.body.items.map((s) => ({ fileName: s.fileName, status: s.status, score: s.score, metrics: s.metrics, results: s.results }));
}

test(`an archive sent as a multipart form is validated and scored as the same archive sent as the body; malformed forms are refused with nothing recorded (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, work, data } = setup;
  const alice = await participant(setup);
  const bob = await participant(setup);
  const truth = await readFile(await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth'));
  const short = await readFile(await segmentationArchive(app.config, data.test, path.join(work, 'short.zip'), 'truth', { slides: [data.test.slides[0]!.name] }));

  // Refusals of the form itself: 400s that name the problem, nothing recorded, no file left behind.
  const noFile = await send(alice, 'POST', '/api/challenges/liver/submissions', form([], [['note', 'hello']]));
  t.is(noFile.status, 400);
  t.is(noFile.body.error?.code, 'no_archive');
  const twoFiles = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'a.zip', truth], ['archive', 'b.zip', truth]]));
  t.is(twoFiles.status, 400);
  t.is(twoFiles.body.error?.code, 'too_many_files');
  const bigField = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'predictions.zip', truth]], [['note', 'x'.repeat(5000)]]));
  t.is(bigField.status, 400);
  t.is(bigField.body.error?.code, 'field_too_large');
  const otherField = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['predictions', 'predictions.zip', truth]]));
  t.is(otherField.status, 400);
  t.is(otherField.body.error?.code, 'invalid_multipart');
  t.regex(otherField.body.error!.message, /"archive"/);
  const empty = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'predictions.zip', Buffer.alloc(0)]]));
  t.is(empty.status, 400);
  t.is(empty.body.error?.code, 'empty_submission');
  const notArchive = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'predictions.txt', truth]]));
  t.is(notArchive.status, 415);
  t.is(await count(app, 'challenge_submissions'), 0, 'nothing recorded for a refused form');
  t.deepEqual(await readdir(path.join(app.config.paths.data, 'challenges', 'uploads')), [], 'no temporary file left');

  // An invalid archive in a form: the same 422 and report as in a body.
  const invalid = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'short.zip', short]]));
  t.is(invalid.status, 422);
  t.is(invalid.body.error?.code, 'submission_invalid');
  const problems = (invalid.body.error?.details as { report: { problems: { slide: string | null }[] } }).report.problems;
  t.true(problems.some((p) => p.slide === data.test.slides[1]!.name));

  // The truth in a form (Alice) and as the body (Bob): both queued, scored alike; the form's file name is kept.
  const viaForm = await send(alice, 'POST', '/api/challenges/liver/submissions', form([['archive', 'predictions.zip', truth]]));
  t.is(viaForm.status, 202, JSON.stringify(viaForm.body));
  t.is(viaForm.body.submission?.fileName, 'predictions.zip');
  const viaBody = await send(bob, 'POST', '/api/challenges/liver/submissions', truth, { 'content-type': 'application/zip' });
  t.is(viaBody.status, 202, JSON.stringify(viaBody.body));
  t.deepEqual(await app.services.challenges.scorePending(), { scored: 2, invalid: 0, failed: 0 });
  const [formScored] = await scored(alice);
  const [bodyScored] = await scored(bob);
  t.is(formScored!.status, 'scored');
  t.is(formScored!.score, 1);
  t.deepEqual({ ...formScored!, fileName: '' }, { ...bodyScored!, fileName: '' });
});

test(`a resumable upload in three chunks, one sent again after its answer was lost, is submitted and scored as the same archive sent as the body (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, work, data } = setup;
  const alice = await participant(setup);
  const bob = await participant(setup);
  const truth = await readFile(await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth'));
  const third = Math.ceil(truth.length / 3);

  const created = await send(alice, 'POST', '/api/challenges/liver/uploads', Buffer.from(JSON.stringify({ fileName: 'predictions.zip', size: truth.length })), { 'content-type': 'application/json' });
  t.is(created.status, 201, JSON.stringify(created.body));
  t.like(created.body, { offset: 0, size: truth.length, fileName: 'predictions.zip' });
  const id = created.body.id!;
  t.regex(id, /^[0-9a-f]{24}$/);
  t.true(Date.parse(created.body.expiresAt!) > Date.now() + DAY - 60_000);

  // The first chunk arrives, but its answer is lost: the client sends it again and learns where to go on.
  t.is((await chunk(alice, id, truth, 0, third - 1)).body.offset, third);
  const again = await chunk(alice, id, truth, 0, third - 1);
  t.is(again.status, 409);
  t.is(again.body.error?.code, 'upload_offset_mismatch');
  t.is(again.body.error?.details?.offset, third);
  // Asking works too.
  t.is((await alice.get<{ offset: number }>(`/api/challenges/liver/uploads/${id}`)).body.offset, third);
  // A chunk past the offset is refused the same way.
  const ahead = await chunk(alice, id, truth, 2 * third, truth.length - 1);
  t.is(ahead.status, 409);
  t.is(ahead.body.error?.details?.offset, third);

  // Not complete yet: refused, nothing recorded.
  const early = await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${id}`);
  t.is(early.status, 409);
  t.is(early.body.error?.code, 'upload_incomplete');
  t.is(early.body.error?.details?.offset, third);

  const second = await chunk(alice, id, truth, third, 2 * third - 1);
  t.is(second.status, 200, JSON.stringify(second.body));
  t.is(second.body.offset, 2 * third);
  const last = await chunk(alice, id, truth, 2 * third, truth.length - 1);
  t.is(last.body.offset, truth.length);
  t.is(await count(app, 'challenge_submissions'), 0);

  const submitted = await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${id}`);
  t.is(submitted.status, 202, JSON.stringify(submitted.body));
  t.is(submitted.body.submission?.fileName, 'predictions.zip');
  // Consumed: the upload and its bytes are gone, and it cannot be submitted twice.
  t.is((await alice.get(`/api/challenges/liver/uploads/${id}`)).status, 404);
  t.is((await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${id}`)).status, 404);
  t.deepEqual(await readdir(path.join(app.config.paths.data, 'challenges', 'uploads')), []);

  t.is((await send(bob, 'POST', '/api/challenges/liver/submissions', truth, { 'content-type': 'application/zip' })).status, 202);
  t.deepEqual(await app.services.challenges.scorePending(), { scored: 2, invalid: 0, failed: 0 });
  const [viaUpload] = await scored(alice);
  const [viaBody] = await scored(bob);
  t.is(viaUpload!.score, 1);
  t.deepEqual({ ...viaUpload!, fileName: '' }, { ...viaBody!, fileName: '' });
  // The archive kept for scoring is the one sent, byte for byte.
  const kept = path.join(app.config.paths.data, 'challenges', String((await app.services.challenges.get('liver')).id), 'submissions', `${submitted.body.submission!.id}.zip`);
  t.deepEqual(await readFile(kept), truth);

  // An invalid archive through an upload: 422 with the report, recorded as invalid, and the upload consumed.
  const short = await readFile(await segmentationArchive(app.config, data.test, path.join(work, 'short.zip'), 'truth', { slides: [data.test.slides[0]!.name] }));
  const shortUpload = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'short.zip', size: short.length });
  t.is((await chunk(alice, shortUpload.body.id, short, 0, short.length - 1)).body.offset, short.length);
  const refused = await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${shortUpload.body.id}`);
  t.is(refused.status, 422);
  t.is(refused.body.error?.code, 'submission_invalid');
  t.is((await alice.get(`/api/challenges/liver/uploads/${shortUpload.body.id}`)).status, 404);
});

test(`uploads refused: another person's (404), over the size limit, malformed chunks, submissions refused before recording keep the upload; nothing is recorded (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app, work, data, admin } = setup;
  const alice = await participant(setup);
  const bob = await participant(setup);
  const truth = await readFile(await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth'));

  const tooLarge = await alice.post<{ error: { code: string } }>('/api/challenges/liver/uploads', { fileName: 'predictions.zip', size: 2 * 1024 ** 3 + 1 });
  t.is(tooLarge.status, 413);
  t.is(tooLarge.body.error.code, 'submission_too_large');
  const notArchive = await alice.post<{ error: { code: string } }>('/api/challenges/liver/uploads', { fileName: 'predictions.csv', size: 10 });
  t.is(notArchive.status, 415);
  const withFolder = await alice.post<{ error: { code: string } }>('/api/challenges/liver/uploads', { fileName: '../predictions.zip', size: 10 });
  t.is(withFolder.status, 400);
  const { token: stranger } = await signedIn(app, { level: 'L1' });
  const notJoined = await stranger.post<{ error: { code: string } }>('/api/challenges/liver/uploads', { fileName: 'predictions.zip', size: 10 });
  t.is(notJoined.status, 403);
  t.is(notJoined.body.error.code, 'not_participant');
  t.is(await count(app, 'challenge_uploads'), 0);

  const created = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'predictions.zip', size: truth.length });
  t.is(created.status, 201);
  const id = created.body.id;

  // Another person's upload is not there, whatever they try.
  for (const answer of [
    await bob.get<{ error: { code: string } }>(`/api/challenges/liver/uploads/${id}`),
    await chunk(bob, id, truth, 0, 9),
    await bob.delete<{ error: { code: string } }>(`/api/challenges/liver/uploads/${id}`),
    await send(bob, 'POST', `/api/challenges/liver/submissions?upload=${id}`),
  ]) {
    t.is(answer.status, 404);
    t.is((answer.body as { error?: { code: string } }).error?.code, 'upload_not_found');
  }
  t.is((await alice.get('/api/challenges/liver/uploads/0123456789abcdef01234567')).status, 404);

  // Malformed chunks change nothing.
  const noRange = await send(alice, 'PUT', `/api/challenges/liver/uploads/${id}`, truth.subarray(0, 10), { 'content-type': 'application/octet-stream' });
  t.is(noRange.status, 400);
  t.is(noRange.body.error?.code, 'invalid_content_range');
  const wrongTotal = await send(alice, 'PUT', `/api/challenges/liver/uploads/${id}`, truth.subarray(0, 10), { 'content-range': `bytes 0-9/${truth.length + 1}` });
  t.is(wrongTotal.body.error?.code, 'invalid_content_range');
  const shortBody = await send(alice, 'PUT', `/api/challenges/liver/uploads/${id}`, truth.subarray(0, 5), { 'content-range': `bytes 0-9/${truth.length}` });
  t.is(shortBody.status, 400);
  t.is(shortBody.body.error?.code, 'chunk_length_mismatch');
  const huge = await send(alice, 'PUT', `/api/challenges/liver/uploads/${id}`, truth.subarray(0, 10), { 'content-range': `bytes 0-${64 * 1024 ** 2}/${truth.length}` });
  t.is(huge.status, 400, 'a range past the end of the upload');
  const big = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'big.zip', size: 100 * 1024 ** 2 });
  const overChunk = await send(alice, 'PUT', `/api/challenges/liver/uploads/${big.body.id}`, truth.subarray(0, 10), { 'content-range': `bytes 0-${64 * 1024 ** 2}/${100 * 1024 ** 2}` });
  t.is(overChunk.status, 413);
  t.is(overChunk.body.error?.code, 'chunk_too_large');
  t.is((await alice.delete(`/api/challenges/liver/uploads/${big.body.id}`)).status, 204);
  t.is((await alice.get<{ offset: number }>(`/api/challenges/liver/uploads/${id}`)).body.offset, 0);

  // Complete, but the phase named has not opened: refused before anything is recorded, and the upload is kept for later.
  t.is((await chunk(alice, id, truth, 0, truth.length - 1)).body.offset, truth.length);
  const now = Date.now();
  t.is((await admin.put('/api/admin/challenges/liver/phases/final', { opensAt: new Date(now + DAY).toISOString(), closesAt: new Date(now + 2 * DAY).toISOString() })).status, 200);
  const notOpen = await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${id}&phase=final`);
  t.is(notOpen.status, 409);
  t.is(notOpen.body.error?.code, 'phase_not_open');
  t.is(await count(app, 'challenge_submissions'), 0);
  t.is((await alice.get<{ offset: number }>(`/api/challenges/liver/uploads/${id}`)).body.offset, truth.length);
  t.is((await send(alice, 'POST', `/api/challenges/liver/submissions?upload=${id}&phase=test`)).status, 202);

  // Cancelling removes the upload and its bytes.
  const cancelled = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'predictions.zip', size: truth.length });
  t.is((await chunk(alice, cancelled.body.id, truth, 0, 9)).body.offset, 10);
  t.is((await alice.delete(`/api/challenges/liver/uploads/${cancelled.body.id}`)).status, 204);
  t.is((await alice.get(`/api/challenges/liver/uploads/${cancelled.body.id}`)).status, 404);
  t.deepEqual(await readdir(path.join(app.config.paths.data, 'challenges', 'uploads')), []);
  t.is(await count(app, 'challenge_submissions'), 1);
});

test(`abandoned uploads expire after a day and the challenge-uploads job removes them with their files and stray files; live ones stay (${testDialect})`, async (t) => {
  const setup = await setUp(t);
  const { app } = setup;
  const alice = await participant(setup);
  const bytes = Buffer.from('not yet an archive, but bytes all the same');
  const abandoned = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'predictions.zip', size: bytes.length });
  t.is((await chunk(alice, abandoned.body.id, bytes, 0, 9)).body.offset, 10);
  const dir = path.join(app.config.paths.data, 'challenges', 'uploads');
  // A temporary body a stopped process left two days ago, and a fresh one (a request on its way in).
  await mkdir(dir, { recursive: true });
  const twoDaysAgo = new Date(Date.now() - 2 * DAY);
  await writeFile(path.join(dir, '00aa11bb22cc33dd44ee55ff.partial'), 'left behind');
  await utimes(path.join(dir, '00aa11bb22cc33dd44ee55ff.partial'), twoDaysAgo, twoDaysAgo);
  await writeFile(path.join(dir, 'ffee11bb22cc33dd44ee55ff.partial'), 'arriving');

  // The job is one of the appliance's scheduled jobs, run with the nightly clean-up.
  const { log } = memoryLogger();
  const job = createJobs(app.config, app.database.db, log).find((j) => j.name === 'challenge-uploads')!;
  t.is(job.schedule, app.config.jobs.cleanupSchedule);
  const run = (now: Date) => job.run({ now, trigger: 'cli', log });

  // Within the day the upload stays; only the file left two days ago goes.
  t.deepEqual(await run(new Date(Date.now() + DAY / 2)), { uploads: 0, strayFiles: 1 });
  t.is((await alice.get(`/api/challenges/liver/uploads/${abandoned.body.id}`)).status, 200);
  t.deepEqual((await readdir(dir)).sort(), [`${abandoned.body.id}.upload`, 'ffee11bb22cc33dd44ee55ff.partial']);

  const kept = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'other.zip', size: bytes.length });
  // A day after its last chunk the upload is gone for its owner at once, and the job removes it.
  const later = new Date(Date.parse((await alice.get<{ expiresAt: string }>(`/api/challenges/liver/uploads/${abandoned.body.id}`)).body.expiresAt) + 1000);
  await app.database.db.knex('challenge_uploads').where({ id: kept.body.id }).update({ expires_at: new Date(later.getTime() + DAY).toISOString().replace('T', ' ').replace('Z', '') });
  t.deepEqual(await run(later), { uploads: 1, strayFiles: 1 });
  t.is((await alice.get(`/api/challenges/liver/uploads/${abandoned.body.id}`)).status, 404);
  t.is((await alice.get(`/api/challenges/liver/uploads/${kept.body.id}`)).status, 200, 'an upload still within its day stays');
  t.deepEqual(await readdir(dir), [], 'the upload\'s bytes are gone, and the temporary file, a day old by then, too');
  t.is(await count(app, 'challenge_uploads'), 1);
});
