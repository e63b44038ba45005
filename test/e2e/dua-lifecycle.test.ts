/**
 * The data use agreement lifecycle end to end, as its users meet it: the
 * server and the scheduled jobs as separate processes, mail through a real
 * SMTP server, and time travel through `slidebank cron run --now`.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { makeSlide } from '../support/slides.js';
import { Client, logIn, TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { testDialect } from '../support/database.js';
import { linksIn, parseMail, startTestSmtp } from '../support/smtp.js';

const DAY = 86_400_000;

test(`DUA lifecycle: register, confirm by mail, apply, approval, download, reminders at 30 and 7 days once each, report and renewal; a user without a report lapses and loses downloads (${testDialect})`, async (t) => {
  const smtp = await startTestSmtp(t);
  const { root, base, site, cli, serve } = await appliance(t, { smtpUrl: smtp.url });
  // Set-up as hospital IT would: an administrator, a researcher made L2 by the CLI, and one published slide.
  await cli(['user', 'add', '--email', 'admin@hospital.example', '--level', 'L1', '--role', 'admin'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'bob@lab.example', '--level', 'L2', '--name', 'Bob'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 1600, height: 1200, seed: 3, out: inbox, name: 'case' });
  await cli(['ingest', inbox, '--organ', 'KI', '--histology', 'RCC', '--stain', 'HE']);

  await serve();

  // Alice registers; the confirmation link in her mail works.
  const alice = new Client(site);
  t.is((await alice.post('/api/auth/register', { name: 'Alice', institution: 'Lab', email: 'alice@lab.example', password: TEST_PASSWORD })).status, 202);
  const [confirmation] = await smtp.waitForMessages(1);
  const mail = parseMail(confirmation!.raw);
  t.deepEqual(confirmation!.envelope.to, ['alice@lab.example']);
  const link = linksIn(mail.text).find((l) => l.startsWith(`${base}/account/confirm`))!;
  t.truthy(link, mail.text);
  const token = new URL(link).hash.replace(/^#token=/, '') || new URL(link).searchParams.get('token')!;
  t.is((await alice.post('/api/auth/confirm', { token })).status, 200);
  const aliceSession = await logIn(site, 'alice@lab.example');
  t.like((await aliceSession.get('/api/auth/me')).body, { level: 'L1' });

  const admin = await logIn(site, 'admin@hospital.example');
  t.is((await admin.post('/api/admin/dua/versions', { version: '2027.1', title: 'Slidebank DUA', body: 'Research use only; no re-identification.' })).status, 201);
  const applied = await aliceSession.post<{ id: number }>('/api/dua/applications', {
    researchPurpose: 'Tumour segmentation',
    project: 'KidneySeg',
    principalInvestigator: 'Prof. Example',
  });
  t.is(applied.status, 201);
  const [, toAdmin] = await smtp.waitForMessages(2);
  t.deepEqual(toAdmin!.envelope.to, ['admin@hospital.example'], 'the administrators hear of the application');
  t.regex(parseMail(toAdmin!.raw).header('subject') ?? '', /New Slidebank data use agreement application from Alice/);
  const slides = (await aliceSession.get<{ items: { id: number }[] }>('/api/slides')).body.items;
  const slideFile = `/api/slides/${slides[0]!.id}/files/slide`;
  t.is((await aliceSession.get(slideFile)).status, 403, 'no download before approval');

  const approvedAt = Date.now();
  t.is((await admin.post(`/api/admin/dua/applications/${applied.body.id}/approve`, {})).status, 200);
  t.is((await admin.post(`/api/admin/dua/applications/${applied.body.id}/reject`, { reason: 'late' })).status, 409, 'decided once');
  await smtp.waitForMessages(3);
  t.regex(parseMail(smtp.messages[2]!.raw).header('subject') ?? '', /approved/);
  t.like((await aliceSession.get('/api/auth/me')).body, { level: 'L2' });
  const download = await aliceSession.get<Buffer>(slideFile);
  t.is(download.status, 200);
  const bob = await logIn(site, 'bob@lab.example');
  t.is((await bob.get(slideFile)).status, 200, 'the CLI-made L2 downloads too');

  // Time travel: the jobs run as separate processes against the clock they are given.
  const yearEnd = approvedAt + 365 * DAY;
  const cron = async (job: string, at: number) => JSON.parse((await cli(['cron', 'run', job, '--now', new Date(at).toISOString()])).stdout) as { summary: Record<string, number> };
  t.like(await cron('dua-reminders', yearEnd - 29 * DAY), { summary: { sent: 2 } });
  t.like(await cron('dua-reminders', yearEnd - 28 * DAY), { summary: { sent: 0, alreadySent: 2 } });
  t.like(await cron('dua-reminders', yearEnd - 6 * DAY), { summary: { sent: 2 } });
  t.like(await cron('dua-reminders', yearEnd - 5 * DAY), { summary: { sent: 0 } });
  const reminders = (await smtp.waitForMessages(7)).slice(3).map((m) => `${m.envelope.to[0]} ${parseMail(m.raw).header('subject')}`);
  t.is(reminders.filter((r) => r.startsWith('alice@lab.example') && / ends /.test(r)).length, 2);
  t.is(reminders.filter((r) => r.startsWith('bob@lab.example') && / ends /.test(r)).length, 2);

  // Alice reports and is renewed; Bob does not.
  const report = await aliceSession.post<{ id: number }>('/api/dua/reports', {
    usedFor: 'Segmentation training',
    results: 'Dice 0.86 on held-out slides',
    publications: [{ title: 'Kidney tumour segmentation', doi: '10.1234/example.5678' }],
  });
  t.is(report.status, 201);
  t.is((await admin.post(`/api/admin/dua/reports/${report.body.id}/approve`, {})).status, 200);
  await smtp.waitForMessages(8);

  t.like(await cron('dua-expiry', yearEnd + 2 * DAY), { summary: { lowered: 1 } });
  t.like(await cron('dua-expiry', yearEnd + 3 * DAY), { summary: { lowered: 0 } }, 'a second run changes nothing');
  const lapse = (await smtp.waitForMessages(9)).at(-1)!;
  t.deepEqual(lapse.envelope.to, ['bob@lab.example']);
  t.regex(parseMail(lapse.raw).text, /expired/i);
  t.is((await bob.get(slideFile)).status, 403, 'bob lost downloads');
  t.like((await bob.get('/api/auth/me')).body, { level: 'L1' });
  t.is((await aliceSession.get(slideFile)).status, 200, 'alice, renewed, still downloads');

  const audit = (await admin.get<{ items: { action: string }[] }>('/api/admin/audit?pageSize=200')).body.items.map((e) => e.action);
  for (const action of ['dua.applied', 'dua.approved', 'report.filed', 'report.approved', 'dua.reminder_sent', 'user.level_changed', 'download.slide']) {
    t.true(audit.includes(action), `audited: ${action}`);
  }
});
