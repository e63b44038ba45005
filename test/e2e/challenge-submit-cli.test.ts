/**
 * `slidebank challenge submit` as a participant runs it against a server: the
 * archive goes through the resumable uploads in chunks, a broken-off upload
 * continues on the next run, an invalid archive prints its report, and the
 * usage and network failures exit with their codes.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { freePort, runCli } from '../support/cli.js';
import { testDialect } from '../support/database.js';
import { challengeData, segmentationArchive } from '../http/challenges-setup.js';

const DAY = 86_400_000;

test(`challenge submit sends an archive in chunks, continues a broken-off upload, prints an invalid archive's report (${testDialect})`, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-challenge-submit-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(work, 'var') } });
  const data = await challengeData(app.config, app.database.db, work);
  const { token: admin } = await signedIn(app, { level: 'L1', roles: ['admin'] });
  t.is((await admin.post('/api/admin/challenges', { name: 'liver', task: 'segmentation', train: 'train@1', test: 'test@1', dailyLimit: 3 })).status, 201);
  t.is((await admin.put('/api/admin/challenges/liver/phases/test', { opensAt: new Date(Date.now() - DAY).toISOString(), closesAt: new Date(Date.now() + DAY).toISOString() })).status, 200);
  const { token: alice } = await signedIn(app, { level: 'L1' });
  t.is((await alice.post('/api/challenges/liver/join', { rulesVersion: 1 })).status, 200);
  const server = app.url('');
  const submit = (args: string[], env: Record<string, string> = {}) => runCli(['challenge', 'submit', ...args], { cwd: work, env: { SLIDEBANK_TOKEN: alice.token!, ...env } });

  // The truth in chunks of 200 bytes: queued, then scored 1.
  const truth = await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth');
  const size = (await stat(truth)).size;
  const sent = await submit(['liver', truth, '--server', server, '--chunk-size', '200']);
  t.is(sent.code, 0, sent.stderr);
  t.regex(sent.stdout, /^submission \d+ to liver test is queued for scoring$/m);
  t.is(sent.stderr.split('\n').filter((line) => line.startsWith('sent ')).length, 1 + Math.ceil(size / 200), 'one line at the start, then one per chunk');
  t.regex(sent.stderr, new RegExp(`sent ${size} of ${size} bytes \\(100%\\)`));
  await t.throwsAsync(stat(`${truth}.upload.json`), undefined, 'the state file goes once the submission is recorded');
  t.deepEqual(await app.services.challenges.scorePending(), { scored: 1, invalid: 0, failed: 0 });
  t.is((await alice.get<{ items: { score: number }[] }>('/api/challenges/liver/submissions')).body.items[0]!.score, 1);

  // An upload broken off after its first chunk (its id beside the archive, as the command leaves it): the next run continues it.
  const bytes = await readFile(truth);
  const begun = await alice.post<{ id: string }>('/api/challenges/liver/uploads', { fileName: 'truth.zip', size });
  const first = await fetch(app.url(`/api/challenges/liver/uploads/${begun.body.id}`), {
    method: 'PUT',
    headers: { authorization: `Bearer ${alice.token!}`, 'content-type': 'application/octet-stream', 'content-range': `bytes 0-99/${size}` },
    body: bytes.subarray(0, 100),
  });
  t.is(first.status, 200);
  await writeFile(`${truth}.upload.json`, JSON.stringify({ server: new URL(server).origin, challenge: 'liver', id: begun.body.id, size, modified: (await stat(truth)).mtimeMs }));
  const resumed = await submit(['liver', truth, '--server', server]);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stderr, /^sent 100 of \d+ bytes/m);
  t.regex(resumed.stderr, /continued the upload begun earlier from byte 100/);
  t.is((await alice.get(`/api/challenges/liver/uploads/${begun.body.id}`)).status, 404, 'the upload was consumed');

  // An archive a slide short: the report on stdout, exit 1, recorded as invalid.
  const short = await segmentationArchive(app.config, data.test, path.join(work, 'short.zip'), 'truth', { slides: [data.test.slides[0]!.name] });
  const invalid = await submit(['liver', short, '--server', server]);
  t.is(invalid.code, 1);
  t.regex(invalid.stdout, new RegExp(`^invalid: .*${data.test.slides[1]!.name}`, 'm'));
  t.regex(invalid.stderr, /submission was refused/);

  // Usage and network failures.
  const noServer = await submit(['liver', truth]);
  t.is(noServer.code, 2);
  t.regex(noServer.stderr, /--server/);
  const nobody = await submit(['liver', truth, '--server', `http://127.0.0.1:${await freePort()}`, '--retries', '0']);
  t.is(nobody.code, 4, nobody.stderr);
  t.regex(nobody.stderr, /cannot be reached/);
  const badToken = await submit(['liver', truth, '--server', server], { SLIDEBANK_TOKEN: 'sbt_not-a-token' });
  t.is(badToken.code, 1);
});
