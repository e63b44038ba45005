import test from 'ava';
import { AgreementsRepository } from '../../server/agreements/agreements.repository.js';
import { AgreementsService, oneYearAfter } from '../../server/agreements/agreements.service.js';
import { AuditRepository } from '../../server/audit/index.js';
import { toDbTime } from '../../server/db/index.js';
import { AppError } from '../../server/errors.js';
import type { MailMessage, Mailer } from '../../server/mail/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

/** Keeps what would have been sent, so the test can read it. */
class Outbox implements Mailer {
  readonly sent: MailMessage[] = [];
  failNext = false;
  async send(message: MailMessage): Promise<void> {
    if (this.failNext) {
      this.failNext = false;
      throw new Error('SMTP server unreachable');
    }
    this.sent.push(message);
  }
  subjectsFor(to: string): string[] {
    return this.sent.filter((m) => m.to === to).map((m) => m.subject);
  }
}

const DAY = 24 * 60 * 60 * 1000;
const T0 = new Date('2027-03-01T09:00:00Z');
const at = (days: number, hours = 0) => new Date(T0.getTime() + days * DAY + hours * 3600_000);

async function setup(t: { teardown(fn: () => Promise<void>): void }) {
  const { db, drop } = await createMigratedTestDatabase();
  t.teardown(drop);
  const outbox = new Outbox();
  const { log } = memoryLogger();
  const repository = new AgreementsRepository(db.knex);
  const service = new AgreementsService({
    repository,
    audit: new AuditRepository(db.knex),
    mailer: outbox,
    site: { publicUrl: 'https://slides.hospital.example', timeZone: 'UTC' },
    dataDir: '/nonexistent',
    log,
  });

  const user = async (email: string, { level = 'L1', confirmed = true } = {}) => {
    const [inserted] = await db
      .knex('users')
      .insert({
        email,
        name: email.split('@')[0],
        institution: 'Test Hospital',
        level,
        email_confirmed_at: confirmed ? toDbTime(T0) : null,
        created_at: toDbTime(T0),
        updated_at: toDbTime(T0),
      })
      .returning('id');

    return typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
  };
  const levelOf = async (id: number) => {
    const row = await db.knex('users').where({ id }).first('level', 'level_expires_at');
    return { level: row.level as string, expires: row.level_expires_at === null ? null : new Date(`${String(row.level_expires_at).replace(' ', 'T')}Z`) };
  };
  const audit = async (action: string) => (await db.knex('audit_log').where({ action }).select('subject_id')).map((r) => String(r.subject_id));
  const admin = { actorId: await user('admin@hospital.example'), ip: '10.0.0.1' };
  return { db, service, repository, outbox, user, levelOf, audit, admin };
}

const VERSION_1 = { version: '1', title: 'DUA', body: 'Text', requiresReacceptance: false };
const APPLICATION = { researchPurpose: 'Train a tumour segmentation model', project: 'LiverSeg', principalInvestigator: 'Prof. Example' };

test(`the DUA lifecycle: apply, approve, reminders at 30 and 7 days once each, report, renewal; a user without a report lapses to L1 on ${testDialect}`, async (t) => {
  const { service, outbox, user, levelOf, audit, admin } = await setup(t);
  await t.throwsAsync(service.apply(admin, APPLICATION, T0), { message: /No data use agreement has been published/ });
  await service.publishVersion(admin, { version: '2027.1', title: 'Slidebank data use agreement', body: 'Use the data for research only.', requiresReacceptance: false }, T0);

  const alice = await user('alice@lab.example');
  const bob = await user('bob@lab.example');
  const application = await service.apply({ actorId: alice }, APPLICATION, T0);
  t.like(application, { status: 'submitted', version: '2027.1', userId: alice });
  await t.throwsAsync(service.apply({ actorId: alice }, APPLICATION, T0), { message: /still waiting for a decision/ });

  const approved = await service.decide(admin, application.id, { decision: 'approve' }, T0);
  t.is(approved.status, 'approved');
  t.deepEqual(approved.validUntil, oneYearAfter(T0));
  t.deepEqual(await levelOf(alice), { level: 'L2', expires: oneYearAfter(T0) });
  t.deepEqual(outbox.subjectsFor('alice@lab.example').length, 1);
  const again = await t.throwsAsync(service.decide(admin, application.id, { decision: 'reject', reason: 'changed my mind' }, at(1)));
  t.true(again instanceof AppError && again.status === 409 && again.code === 'already_decided');
  t.deepEqual(await levelOf(alice), { level: 'L2', expires: oneYearAfter(T0) }, 'a refused second decision changes nothing');

  const bobs = await service.apply({ actorId: bob }, APPLICATION, T0);
  await service.decide(admin, bobs.id, { decision: 'approve' }, T0);

  const yearEnd = oneYearAfter(T0).getTime();
  const daysBefore = (days: number, hours = 0) => new Date(yearEnd - days * DAY + hours * 3600_000);
  t.like(await service.sendReminders(daysBefore(40)), { sent: 0 }, 'nothing 40 days ahead');
  t.like(await service.sendReminders(daysBefore(30, 1)), { sent: 2 });
  t.like(await service.sendReminders(daysBefore(29)), { sent: 0, alreadySent: 2 }, 'the 30-day reminder goes once');
  t.like(await service.sendReminders(daysBefore(7, 1)), { sent: 2 });
  t.like(await service.sendReminders(daysBefore(3)), { sent: 0, alreadySent: 2 }, 'the 7-day reminder goes once');
  t.deepEqual(outbox.subjectsFor('bob@lab.example').filter((s) => / ends /.test(s)).length, 2);

  const report = await service.fileReport(
    { actorId: alice },
    { usedFor: 'Segmentation training', results: 'Dice 0.87', publications: [{ title: 'Liver tumour segmentation', doi: '10.1186/s12911-021-01484-w' }] },
    daysBefore(5),
  );
  t.deepEqual(report.publications, [{ title: 'Liver tumour segmentation', doi: '10.1186/s12911-021-01484-w' }]);
  await service.decideReport(admin, report.id, { decision: 'approve' }, daysBefore(4));
  const renewed = oneYearAfter(oneYearAfter(T0));
  t.deepEqual(await levelOf(alice), { level: 'L2', expires: renewed }, 'an approved report renews for a year from the end of the current one');

  const lapse = new Date(yearEnd + 3600_000);
  t.like(await service.expireLevels(lapse), { lowered: 1, told: 1 });
  t.deepEqual(await levelOf(bob), { level: 'L1', expires: null }, 'bob filed no report and lapsed to L1');
  t.deepEqual(await levelOf(alice), { level: 'L2', expires: renewed });
  t.like(await service.expireLevels(new Date(yearEnd + 2 * 3600_000)), { lowered: 0, told: 0 }, 'a second run finds nothing to do');
  const bobMail = outbox.sent.filter((m) => m.to === 'bob@lab.example').at(-1)!;
  t.regex(bobMail.text, /apply|renew/i, 'the lapse notice says how to renew');

  t.true((await audit('dua.approved')).length >= 2);
  t.true((await audit('user.level_changed')).includes(String(bob)));
  t.is((await audit('report.approved')).length, 1);
  t.is((await audit('dua.reminder_sent')).length, 4);
});

test(`the DUA service's rules: someone else's application, decisions, withdrawal, reports and versions, each refused without a change, on ${testDialect}`, async (t) => {
  const { service, user, levelOf, admin, repository } = await setup(t);
  await service.publishVersion(admin, VERSION_1, T0);
  const carol = await user('carol@lab.example');
  const dan = await user('dan@lab.example');

  const html = await service.apply({ actorId: carol }, { ...APPLICATION, project: '<script>alert(1)</script>' }, T0);
  t.is(html.project, '<script>alert(1)</script>', 'text is kept as typed; it is escaped wherever it is shown');
  const anonymous = await t.throwsAsync(service.apply({ actorId: null }, APPLICATION, T0));
  t.true(anonymous instanceof AppError && anonymous.status === 401, 'nobody logged in applies for nobody');

  const other = await t.throwsAsync(service.withdraw({ actorId: dan }, html.id, T0));
  t.true(other instanceof AppError && other.status === 404, 'someone else’s application is not found, not forbidden');
  const noReason = await t.throwsAsync(service.decide(admin, html.id, { decision: 'reject' }, T0));
  t.true(noReason instanceof AppError && noReason.code === 'reason_required');
  t.is((await repository.application(html.id))!.status, 'submitted');

  await service.withdraw({ actorId: carol }, html.id, T0);
  const late = await t.throwsAsync(service.decide(admin, html.id, { decision: 'approve' }, T0));
  t.true(late instanceof AppError && late.status === 409);
  t.deepEqual(await levelOf(carol), { level: 'L1', expires: null });

  const noApproval = await t.throwsAsync(service.fileReport({ actorId: carol }, { usedFor: 'x', results: 'y', publications: [] }, T0));
  t.true(noApproval instanceof AppError && noApproval.code === 'no_approval');
  await t.throwsAsync(service.publishVersion(admin, { ...VERSION_1, title: 'again' }, T0), { message: /Version 1 exists already/ });
});

test(`a new agreement version that requires re-acceptance suspends L2 until the holder accepts it on ${testDialect}`, async (t) => {
  const { service, user, levelOf, admin } = await setup(t);
  await service.publishVersion(admin, VERSION_1, T0);
  const erin = await user('erin@lab.example');
  const application = await service.apply({ actorId: erin }, APPLICATION, T0);
  await service.decide(admin, application.id, { decision: 'approve' }, T0);
  t.is((await levelOf(erin)).level, 'L2');

  await service.publishVersion(admin, { version: '2', title: 'DUA v2', body: 'New text', requiresReacceptance: true }, at(10));
  t.deepEqual(await levelOf(erin), { level: 'L1', expires: null });
  const accepted = await service.acceptCurrentVersion({ actorId: erin }, at(11));
  t.like(accepted, { status: 'approved', version: '2' });
  t.deepEqual(await levelOf(erin), { level: 'L2', expires: oneYearAfter(T0) }, 'the approval keeps its term');
  await t.throwsAsync(service.acceptCurrentVersion({ actorId: erin }, at(12)), { message: /accepted version 2 already/ });
});

test(`members of a partner institution are L3 while its agreement holds, then fall back to what they still hold on ${testDialect}`, async (t) => {
  const { service, user, levelOf, admin, outbox } = await setup(t);
  await service.publishVersion(admin, VERSION_1, T0);
  const byDomain = await user('frank@partner.example.org');
  const assigned = await user('grace@elsewhere.example');
  const unconfirmed = await user('heidi@partner.example.org', { confirmed: false });
  const graceApplication = await service.apply({ actorId: assigned }, APPLICATION, T0);
  await service.decide(admin, graceApplication.id, { decision: 'approve' }, T0);

  const until = at(180);
  const institution = await service.createInstitution(admin, { name: 'Partner University', agreementReference: 'IA-2027-01', validFrom: T0, validUntil: until, emailDomains: ['partner.example.org'] }, T0);
  await service.addMember(admin, institution.id, assigned, T0);
  t.deepEqual(await levelOf(byDomain), { level: 'L3', expires: until });
  t.deepEqual(await levelOf(assigned), { level: 'L3', expires: until });
  t.deepEqual(await levelOf(unconfirmed), { level: 'L1', expires: null }, 'an unconfirmed address is not a member');

  t.like(await service.sendReminders(new Date(until.getTime() - 7 * DAY + 3600_000)), { sent: 2 });
  t.true(outbox.sent.some((m) => m.to === 'frank@partner.example.org' && m.text.includes('Partner University')));

  t.like(await service.expireLevels(new Date(until.getTime() + 3600_000)), { lowered: 2 });
  t.deepEqual(await levelOf(byDomain), { level: 'L1', expires: null });
  t.deepEqual(await levelOf(assigned), { level: 'L2', expires: oneYearAfter(T0) }, 'her own DUA still holds');
});

test(`a reminder whose mail fails is not recorded as sent, so the next run sends it on ${testDialect}`, async (t) => {
  const { service, user, admin, outbox } = await setup(t);
  await service.publishVersion(admin, VERSION_1, T0);
  const ivan = await user('ivan@lab.example');
  const application = await service.apply({ actorId: ivan }, APPLICATION, T0);
  await service.decide(admin, application.id, { decision: 'approve' }, T0);
  const when = new Date(oneYearAfter(T0).getTime() - 20 * DAY);
  outbox.failNext = true;
  t.like(await service.sendReminders(when), { sent: 0, failed: 1 });
  t.like(await service.sendReminders(when), { sent: 1, failed: 0 });
  t.like(await service.sendReminders(when), { sent: 0, alreadySent: 1 });
});
