/**
 * The data use agreement lifecycle (docs/domain.md, "Data use agreements"): versioned
 * agreement texts, applications and decisions, approval making a user L2 for
 * a year, annual usage reports renewing it, re-acceptance of a new version,
 * and partner institutions whose members are L3 while their agreement holds.
 *
 * The stored level and its expiry on users are what every request checks;
 * this service is the only one that derives them from agreements and
 * memberships (see grantedLevel).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Queryable } from '../db/index.js';
import { assertAuthenticated, type Requester } from '../access/levels.js';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { AppError } from '../errors.js';
import { renderMail, type MailSite, type MailTemplate, type MailTemplates, type Mailer } from '../mail/index.js';
import type { AgreementsRepository } from './agreements.repository.js';
import { ensureDefaultAgreement } from './default-agreement.js';
import type { ApplicationStatus, DuaApplication, DuaDraft, DuaPending, DuaVersion, Institution, Publication, ReportStatus, UsageReport } from './views.js';

type Level = 'L0' | 'L1' | 'L2' | 'L3';
const RANK: Record<Level, number> = { L0: 0, L1: 1, L2: 2, L3: 3 };

const DAY = 24 * 60 * 60 * 1000;
/** Approval and renewal both last a year. */
export function oneYearAfter(date: Date): Date {
  const next = new Date(date);
  next.setUTCFullYear(next.getUTCFullYear() + 1);
  return next;
}

/** The largest signed agreement a researcher may upload. */
export const MAX_PDF_BYTES = 10 * 1024 * 1024;

/** A new text of the agreement as an administrator publishes it. */
export interface NewVersion {
  version: string;
  title: string;
  body: string;
  /** Approvals under older versions stop counting until their holders accept this one. */
  requiresReacceptance: boolean;
}

/** An agreement text being prepared. */
export interface DraftText {
  title: string;
  body: string;
}

/** What a researcher applies with. */
export interface ApplicationFields {
  researchPurpose: string;
  project: string;
  principalInvestigator: string;
}

/** An annual usage report; DOIs without their https://doi.org/ prefix. */
export interface ReportFields {
  usedFor: string;
  results: string;
  publications: Publication[];
}

/** An administrator's decision on an application or a report; a rejection needs a reason, which the researcher is sent. */
export interface Decision {
  decision: 'approve' | 'reject';
  reason?: string;
}

export interface NewInstitution {
  name: string;
  agreementReference: string;
  validFrom: Date;
  validUntil: Date;
  /** Lower case. */
  emailDomains: string[];
}

export interface AgreementsDependencies {
  repository: AgreementsRepository;
  audit: AuditLog;
  mailer: Mailer;
  site: MailSite;
  /** Where signed PDFs are kept (never served to anyone but admins and their owner). */
  dataDir: string;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  /** Runs mail after the answer (the accounts' deferred work); without it, mail is sent before answering. */
  defer?: (what: string, task: () => Promise<void>) => void;
}

export class AgreementsService {
  constructor(private readonly deps: AgreementsDependencies) {}

  private get repo() {
    return this.deps.repository;
  }

  // ---- agreement texts -------------------------------------------------------------------

  async currentVersion(): Promise<DuaVersion> {
    const version = await this.repo.latestVersion();
    if (!version) throw new AppError(404, 'no_agreement', 'No data use agreement has been published yet');
    return version;
  }

  versions(): Promise<DuaVersion[]> {
    return this.repo.versions();
  }

  /** Publish a text; with `fromDraft`, that draft becomes the version and is gone from the drafts. */
  async publishVersion(actor: AuditActor, input: NewVersion, now = new Date(), fromDraft?: number): Promise<DuaVersion> {
    return this.repo.transaction(async (trx) => {
      if (fromDraft !== undefined && !(await this.repo.deleteDraft(fromDraft, trx))) throw new AppError(404, 'draft_not_found', `No draft ${fromDraft}`);
      const published = await this.repo.publishVersion(input, actor.actorId, now, trx);
      if (published === 'version_taken') throw new AppError(409, 'version_taken', `Version ${input.version} exists already; choose another label`);
      await this.deps.audit.record({ action: 'dua.version_published', actorId: actor.actorId, subjectType: 'dua_version', subjectId: published.id, ip: actor.ip ?? null, details: { version: input.version, requiresReacceptance: input.requiresReacceptance, ...(fromDraft !== undefined ? { draft: fromDraft } : {}) } }, trx);
      if (input.requiresReacceptance) {
        // Approvals under older versions stop counting until their holders accept this one.
        for (const userId of await this.repo.userIdsAtLevel('L2', trx)) {
          await this.applyLevel(userId, now, trx, actor, `agreement ${input.version} must be accepted`, { lower: true });
        }
      }
      return published;
    });
  }

  /** The next free whole-number label after the highest one used (1, 2, 3 …). */
  async nextVersionLabel(): Promise<string> {
    const numbers = (await this.repo.versions()).map((v) => Number(v.version)).filter((n) => Number.isInteger(n) && n > 0);
    return String(Math.max(0, ...numbers) + 1);
  }

  /** Mark the text installed on the first start as reviewed: it stays in force and the notice to review it goes away. */
  async markReviewed(actor: AuditActor, id: number, now = new Date()): Promise<DuaVersion> {
    const version = await this.repo.version(id);
    if (!version) throw new AppError(404, 'version_not_found', `No agreement version ${id}`);
    if (await this.repo.markReviewed(id, actor.actorId, now)) {
      await this.deps.audit.record({ action: 'dua.version_reviewed', actorId: actor.actorId, subjectType: 'dua_version', subjectId: id, ip: actor.ip ?? null, details: { version: version.version } });
    }
    return (await this.repo.version(id))!;
  }

  /** What waits for an administrator, and whether the agreement in force is the unreviewed default text. */
  async pending(): Promise<DuaPending> {
    const [counts, latest] = await Promise.all([this.repo.pendingCounts(), this.repo.latestVersion()]);
    return { ...counts, total: counts.applications + counts.reports, defaultAgreementUnreviewed: latest?.isDefault === true && latest.reviewedAt === null };
  }

  // ---- drafts (never shown to researchers) -----------------------------------------------

  drafts(): Promise<DuaDraft[]> {
    return this.repo.drafts();
  }

  async draft(id: number): Promise<DuaDraft> {
    const draft = await this.repo.draft(id);
    if (!draft) throw new AppError(404, 'draft_not_found', `No draft ${id}`);
    return draft;
  }

  async createDraft(actor: AuditActor, input: DraftText, now = new Date()): Promise<DuaDraft> {
    const draft = await this.repo.createDraft(input, actor.actorId, now);
    await this.deps.audit.record({ action: 'dua.draft_saved', actorId: actor.actorId, subjectType: 'dua_draft', subjectId: draft.id, ip: actor.ip ?? null });
    return draft;
  }

  async updateDraft(actor: AuditActor, id: number, input: DraftText, now = new Date()): Promise<DuaDraft> {
    if (!(await this.repo.updateDraft(id, input, actor.actorId, now))) throw new AppError(404, 'draft_not_found', `No draft ${id}`);
    return this.draft(id);
  }

  async deleteDraft(actor: AuditActor, id: number): Promise<void> {
    if (!(await this.repo.deleteDraft(id))) throw new AppError(404, 'draft_not_found', `No draft ${id}`);
    await this.deps.audit.record({ action: 'dua.draft_deleted', actorId: actor.actorId, subjectType: 'dua_draft', subjectId: id, ip: actor.ip ?? null });
  }

  async publishDraft(actor: AuditActor, id: number, input: { version?: string | undefined; requiresReacceptance: boolean }, now = new Date()): Promise<DuaVersion> {
    const draft = await this.draft(id);
    const version = input.version ?? (await this.nextVersionLabel());
    return this.publishVersion(actor, { version, title: draft.title, body: draft.body, requiresReacceptance: input.requiresReacceptance }, now, id);
  }

  // ---- applications ----------------------------------------------------------------------

  async apply(actor: AuditActor, input: ApplicationFields, now = new Date()): Promise<DuaApplication> {
    const userId = userOf(actor);
    const version = await this.currentVersion();
    const application = await this.repo.transaction(async (trx) => {
      const open = await this.repo.openApplication(userId, trx);
      if (open) throw new AppError(409, 'application_open', `Application ${open.id} is still waiting for a decision; change it or withdraw it first`);
      const id = await this.repo.createApplication({ userId, versionId: version.id, ...input, status: 'submitted' }, now, trx);
      await this.deps.audit.record({ action: 'dua.applied', actorId: userId, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { version: version.version } }, trx);
      return (await this.repo.application(id, trx))!;
    });
    this.later(`new application ${application.id} to the administrators`, () => this.tellAdmins(application));
    return application;
  }

  private async tellAdmins(application: DuaApplication): Promise<void> {
    const applicant = await this.repo.recipient(application.userId);
    for (const admin of await this.repo.adminRecipients()) {
      await this.mail(admin.email, 'duaApplicationReceived', {
        name: admin.name,
        applicant: applicant ? `${applicant.name} (${applicant.email})` : `user ${application.userId}`,
        project: application.project,
        principalInvestigator: application.principalInvestigator,
        version: application.version,
      });
    }
  }

  /** Work after the answer when deferred work is at hand; a busy queue costs the mail, not the request. */
  private later(what: string, task: () => Promise<void>): void {
    const run = () => task().catch((error: unknown) => this.deps.log.warn({ err: error, task: what }, 'mail not sent'));
    if (!this.deps.defer) {
      void run();
      return;
    }
    try {
      this.deps.defer(what, run);
    } catch (error) {
      this.deps.log.warn({ err: error, task: what }, 'mail not sent: the server is busy');
    }
  }

  /** Every application of one user, newest first: the history of decisions an administrator reads. */
  async applicationsOfUser(userId: number): Promise<DuaApplication[]> {
    return this.repo.applicationsOf(userId);
  }

  /** An administrator ends an approval before its term: the holder falls to the level they still hold and is told why. */
  async revoke(actor: AuditActor, id: number, reason: string, now = new Date()): Promise<DuaApplication> {
    const revokedBy = userOf(actor);
    const application = await this.repo.application(id);
    if (!application) throw new AppError(404, 'application_not_found', `No application ${id}`);
    const revoked = await this.repo.transaction(async (trx) => {
      if (!(await this.repo.revokeApplication(id, revokedBy, reason, now, trx))) {
        throw new AppError(409, 'not_approved', `Application ${id} is ${application.status}; only an approval can be revoked`);
      }
      await this.deps.audit.record({ action: 'dua.revoked', actorId: revokedBy, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { userId: application.userId, reason } }, trx);
      await this.applyLevel(application.userId, now, trx, actor, 'approval revoked', { lower: true });
      return (await this.repo.application(id, trx))!;
    });
    const who = await this.repo.recipient(application.userId);
    if (who) await this.mail(who.email, 'duaRevoked', { name: who.name, reason });
    return revoked;
  }

  async myApplications(requester: Requester): Promise<DuaApplication[]> {
    assertAuthenticated(requester);
    return this.repo.applicationsOf(requester.user.id);
  }

  /** One application, for its applicant or an administrator. */
  async applicationFor(requester: Requester, id: number): Promise<DuaApplication> {
    assertAuthenticated(requester);
    return this.visibleApplication(requester.user.id, requester.roles.includes('admin'), id);
  }

  async withdraw(actor: AuditActor, id: number, now = new Date()): Promise<DuaApplication> {
    const application = await this.visibleApplication(userOf(actor), false, id);
    return this.repo.transaction(async (trx) => {
      if (!(await this.repo.transitionApplication(application.id, 'submitted', { status: 'withdrawn' }, now, trx))) {
        throw new AppError(409, 'already_decided', `Application ${id} is ${application.status}; only a submitted application can be withdrawn`);
      }
      await this.deps.audit.record({ action: 'dua.withdrawn', actorId: actor.actorId, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null }, trx);
      return (await this.repo.application(id, trx))!;
    });
  }

  /** The signed agreement as a PDF (optional), while the application waits for its decision. */
  async attachSignedPdf(actor: AuditActor, id: number, pdf: Buffer, now = new Date()): Promise<DuaApplication> {
    const application = await this.visibleApplication(userOf(actor), false, id);
    if (application.status !== 'submitted') throw new AppError(409, 'already_decided', `Application ${id} is ${application.status}`);
    if (pdf.length === 0 || pdf.length > MAX_PDF_BYTES) throw new AppError(413, 'pdf_too_large', `The PDF must be 1 byte to ${MAX_PDF_BYTES / 1024 / 1024} MiB`);
    if (pdf.subarray(0, 5).toString('latin1') !== '%PDF-') throw new AppError(415, 'not_a_pdf', 'The file is not a PDF (it does not start with %PDF-)');
    const relative = path.join('agreements', `application-${id}.pdf`);
    const file = path.join(this.deps.dataDir, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(`${file}.partial`, pdf);
    await rename(`${file}.partial`, file);
    await this.repo.setSignedPdf(id, relative, now);
    await this.deps.audit.record({ action: 'dua.pdf_attached', actorId: actor.actorId, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { bytes: pdf.length } });
    return (await this.repo.application(id))!;
  }

  async signedPdfFile(requester: Requester, id: number): Promise<string> {
    await this.applicationFor(requester, id);
    const relative = await this.repo.signedPdfPath(id);
    if (!relative) throw new AppError(404, 'pdf_not_found', `Application ${id} has no signed PDF`);
    return path.join(this.deps.dataDir, relative);
  }

  listApplications(status: ApplicationStatus | undefined, limit = 50, offset = 0): Promise<DuaApplication[]> {
    return this.repo.applicationsByStatus(status, limit, offset);
  }

  /** An admin's decision. Approval makes the applicant L2 for a year from now; a rejection needs a reason. */
  async decide(actor: AuditActor, id: number, { decision, reason }: Decision, now = new Date()): Promise<DuaApplication> {
    const decidedBy = userOf(actor);
    if (decision === 'reject' && !reason) throw new AppError(400, 'reason_required', 'A rejection needs a reason, which the applicant is sent');
    const application = await this.repo.application(id);
    if (!application) throw new AppError(404, 'application_not_found', `No application ${id}`);
    const validUntil = decision === 'approve' ? oneYearAfter(now) : null;
    const decided = await this.repo.transaction(async (trx) => {
      const changed = await this.repo.transitionApplication(
        id,
        'submitted',
        { status: decision === 'approve' ? 'approved' : 'rejected', decidedBy, decisionReason: reason ?? null, validUntil },
        now,
        trx,
      );
      if (!changed) {
        const current = (await this.repo.application(id, trx))!;
        throw new AppError(409, 'already_decided', `Application ${id} is already ${current.status}${current.decidedAt ? ` (since ${current.decidedAt.toISOString()})` : ''}`);
      }
      await this.deps.audit.record({ action: decision === 'approve' ? 'dua.approved' : 'dua.rejected', actorId: decidedBy, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { userId: application.userId, ...(reason ? { reason } : {}), ...(validUntil ? { validUntil: validUntil.toISOString() } : {}) } }, trx);
      if (decision === 'approve') await this.applyLevel(application.userId, now, trx, actor, 'dua approved');
      return (await this.repo.application(id, trx))!;
    });
    const who = await this.repo.recipient(application.userId);
    if (who) {
      if (decision === 'approve') await this.mail(who.email, 'duaApproved', { name: who.name, expiresAt: validUntil! });
      else await this.mail(who.email, 'duaRejected', { name: who.name, reason: reason! });
    }
    return decided;
  }

  /**
   * `slidebank user add --level L2`: an administrative approval valid for a
   * year, so the expiry rules apply as to anyone else.
   */
  async grantAdministrativeApproval(userId: number, actor: AuditActor, now = new Date(), trx?: Queryable): Promise<Date> {
    const run = async (db: Queryable) => {
      // Before the first start has installed the default agreement, the approval is given under it.
      const version = (await this.repo.latestVersion(db)) ?? (await ensureDefaultAgreement(this.repo, now, db)) ?? (await this.repo.latestVersion(db));
      if (!version) throw new Error('no agreement version could be installed for the administrative approval');
      const validUntil = oneYearAfter(now);
      const id = await this.repo.createApplication(
        { userId, versionId: version.id, researchPurpose: 'Administrative approval', project: 'Administrative approval', principalInvestigator: '-', status: 'approved', administrative: true, validUntil, decidedAt: now },
        now,
        db,
      );
      await this.deps.audit.record({ action: 'dua.approved', actorId: actor.actorId, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { userId, administrative: true, validUntil: validUntil.toISOString() } }, db);
      await this.applyLevel(userId, now, db, actor, 'administrative approval');
      return validUntil;
    };
    return trx ? run(trx) : this.repo.transaction(run);
  }

  /** Accept a newer agreement version that requires it, keeping the approval's term. */
  async acceptCurrentVersion(actor: AuditActor, now = new Date()): Promise<DuaApplication> {
    const userId = userOf(actor);
    const version = await this.currentVersion();
    const approval = await this.repo.latestApproval(userId);
    if (!approval || !approval.validUntil || approval.validUntil <= now) {
      throw new AppError(409, 'no_approval', 'You have no current approval to carry over; apply for a data use agreement instead');
    }
    if (approval.versionId === version.id) throw new AppError(409, 'already_accepted', `You accepted version ${version.version} already`);
    return this.repo.transaction(async (trx) => {
      const id = await this.repo.createApplication(
        { userId, versionId: version.id, researchPurpose: approval.researchPurpose, project: approval.project, principalInvestigator: approval.principalInvestigator, status: 'approved', validUntil: approval.validUntil, decidedAt: now },
        now,
        trx,
      );
      await this.deps.audit.record({ action: 'dua.reaccepted', actorId: userId, subjectType: 'dua_application', subjectId: id, ip: actor.ip ?? null, details: { version: version.version } }, trx);
      await this.applyLevel(userId, now, trx, actor, 'agreement re-accepted');
      return (await this.repo.application(id, trx))!;
    });
  }

  // ---- annual usage reports --------------------------------------------------------------

  async fileReport(actor: AuditActor, input: ReportFields, now = new Date()): Promise<UsageReport> {
    const userId = userOf(actor);
    const approval = await this.repo.latestApproval(userId);
    if (!approval || !approval.validUntil || approval.validUntil <= now) {
      throw new AppError(409, 'no_approval', 'A usage report renews a current approval; yours has run out, so apply again instead');
    }
    if (await this.repo.openReport(approval.id)) throw new AppError(409, 'report_open', 'Your previous report is still waiting for a decision');
    const id = await this.repo.createReport({ applicationId: approval.id, userId, ...input }, now);
    await this.deps.audit.record({ action: 'report.filed', actorId: userId, subjectType: 'usage_report', subjectId: id, ip: actor.ip ?? null, details: { applicationId: approval.id, publications: input.publications.length } });
    return (await this.repo.report(id))!;
  }

  async myReports(requester: Requester): Promise<UsageReport[]> {
    assertAuthenticated(requester);
    return this.repo.reportsOf(requester.user.id);
  }

  listReports(status: ReportStatus | undefined, limit = 50, offset = 0): Promise<UsageReport[]> {
    return this.repo.reportsByStatus(status, limit, offset);
  }

  /** An approved report renews the approval for another year from its current end. */
  async decideReport(actor: AuditActor, id: number, { decision, reason }: Decision, now = new Date()): Promise<UsageReport> {
    const decidedBy = userOf(actor);
    if (decision === 'reject' && !reason) throw new AppError(400, 'reason_required', 'A rejection needs a reason, which the researcher is sent');
    const report = await this.repo.report(id);
    if (!report) throw new AppError(404, 'report_not_found', `No report ${id}`);
    let renewedUntil: Date | null = null;
    const decided = await this.repo.transaction(async (trx) => {
      if (!(await this.repo.transitionReport(id, { status: decision === 'approve' ? 'approved' : 'rejected', decidedBy, decisionReason: reason ?? null }, now, trx))) {
        const current = (await this.repo.report(id, trx))!;
        throw new AppError(409, 'already_decided', `Report ${id} is already ${current.status}`);
      }
      if (decision === 'approve') {
        const application = (await this.repo.application(report.applicationId, trx))!;
        const base = application.validUntil && application.validUntil > now ? application.validUntil : now;
        renewedUntil = oneYearAfter(base);
        await this.repo.extendApplication(application.id, renewedUntil, now, trx);
      }
      await this.deps.audit.record({ action: decision === 'approve' ? 'report.approved' : 'report.rejected', actorId: decidedBy, subjectType: 'usage_report', subjectId: id, ip: actor.ip ?? null, details: { userId: report.userId, ...(reason ? { reason } : {}), ...(renewedUntil ? { renewedUntil: (renewedUntil as Date).toISOString() } : {}) } }, trx);
      if (decision === 'approve') await this.applyLevel(report.userId, now, trx, actor, 'usage report approved');
      return (await this.repo.report(id, trx))!;
    });
    const who = await this.repo.recipient(report.userId);
    if (who) {
      if (renewedUntil) await this.mail(who.email, 'reportApproved', { name: who.name, expiresAt: renewedUntil });
      else await this.mail(who.email, 'reportRejected', { name: who.name, reason: reason! });
    }
    return decided;
  }

  // ---- institutions (L3) -----------------------------------------------------------------

  institutions(): Promise<Institution[]> {
    return this.repo.institutions();
  }

  async createInstitution(actor: AuditActor, input: NewInstitution, now = new Date()): Promise<Institution> {
    const created = await this.repo.createInstitution(input, now);
    if (created === 'name_taken') throw new AppError(409, 'name_taken', `An institution named ${input.name} exists already`);
    await this.deps.audit.record({ action: 'institution.created', actorId: actor.actorId, subjectType: 'institution', subjectId: created.id, ip: actor.ip ?? null, details: { validUntil: input.validUntil.toISOString(), domains: input.emailDomains } });
    await this.refreshMembers(created, now, actor);
    return created;
  }

  async setInstitutionValidity(actor: AuditActor, id: number, validUntil: Date, now = new Date()): Promise<Institution> {
    const institution = await this.repo.institution(id);
    if (!institution) throw new AppError(404, 'institution_not_found', `No institution ${id}`);
    await this.repo.updateInstitutionValidity(id, validUntil, now);
    await this.deps.audit.record({ action: 'institution.validity_changed', actorId: actor.actorId, subjectType: 'institution', subjectId: id, ip: actor.ip ?? null, details: { validUntil: validUntil.toISOString() } });
    const updated = (await this.repo.institution(id))!;
    await this.refreshMembers(updated, now, actor);
    return updated;
  }

  async addMember(actor: AuditActor, institutionId: number, userId: number, now = new Date()): Promise<void> {
    const institution = await this.repo.institution(institutionId);
    if (!institution) throw new AppError(404, 'institution_not_found', `No institution ${institutionId}`);
    if (!(await this.repo.recipient(userId))) throw new AppError(404, 'user_not_found', `No active user ${userId}`);
    await this.repo.addMember(institutionId, userId, now);
    await this.deps.audit.record({ action: 'institution.member_added', actorId: actor.actorId, subjectType: 'institution', subjectId: institutionId, ip: actor.ip ?? null, details: { userId } });
    await this.repo.transaction((trx) => this.applyLevel(userId, now, trx, actor, 'membership added'));
  }

  async removeMember(actor: AuditActor, institutionId: number, userId: number, now = new Date()): Promise<void> {
    if (!(await this.repo.removeMember(institutionId, userId))) throw new AppError(404, 'member_not_found', `User ${userId} is not an assigned member of institution ${institutionId}`);
    await this.deps.audit.record({ action: 'institution.member_removed', actorId: actor.actorId, subjectType: 'institution', subjectId: institutionId, ip: actor.ip ?? null, details: { userId } });
    await this.repo.transaction((trx) => this.applyLevel(userId, now, trx, actor, 'membership removed', { lower: true }));
  }

  private async refreshMembers(institution: Institution, now: Date, actor: AuditActor): Promise<void> {
    for (const userId of await this.repo.memberIds(institution)) {
      await this.repo.transaction((trx) => this.applyLevel(userId, now, trx, actor, `membership of ${institution.name}`, { lower: true }));
    }
  }

  /** What a download's README cites: the agreement under which the user takes the data. */
  async referenceFor(userId: number | null, now = new Date()): Promise<string> {
    if (userId === null) return 'the data use agreement of the requesting user (not identified)';
    const user = await this.repo.recipient(userId);
    if (user) {
      const membership = await this.repo.validMembership(userId, user.email, now);
      if (membership) {
        return `institutional agreement ${membership.agreementReference} of ${membership.name}, valid until ${membership.validUntil.toISOString().slice(0, 10)} (Slidebank user #${userId})`;
      }
    }
    const approval = await this.repo.latestApproval(userId);
    if (approval?.validUntil && approval.validUntil > now) {
      const kind = approval.administrative ? 'administrative approval' : 'data use agreement application';
      return `${kind} #${approval.id} under agreement version ${approval.version}, valid until ${approval.validUntil.toISOString().slice(0, 10)} (Slidebank user #${userId})`;
    }
    return `no current data use agreement on record for Slidebank user #${userId}`;
  }

  // ---- levels ----------------------------------------------------------------------------

  /** What the user's agreements and memberships give them at `now`, and until when. */
  async grantedLevel(userId: number, now: Date, trx?: Queryable): Promise<{ level: Level; expiresAt: Date | null }> {
    const user = await this.repo.recipient(userId, trx);
    if (!user || !user.emailConfirmedAt) return { level: 'L0', expiresAt: null };
    const membership = await this.repo.validMembership(userId, user.email, now, trx);
    if (membership) return { level: 'L3', expiresAt: membership.validUntil };
    const approval = await this.repo.latestApproval(userId, trx);
    const latest = await this.repo.latestVersion(trx);
    const reaccept = latest?.requiresReacceptance === true && approval !== undefined && approval.versionId !== latest.id;
    if (approval?.validUntil && approval.validUntil > now && !reaccept) return { level: 'L2', expiresAt: approval.validUntil };
    return { level: 'L1', expiresAt: null };
  }

  /**
   * Store the granted level. It raises or extends a level; it lowers one only
   * when asked (`lower`: expiry, a membership ended), and never below a level
   * an administrator set by hand without an expiry.
   */
  async applyLevel(userId: number, now: Date, trx: Queryable, actor: AuditActor, reason: string, { lower = false } = {}): Promise<{ from: Level; to: Level } | undefined> {
    const user = await this.repo.recipient(userId, trx);
    if (!user) return undefined;
    const granted = await this.grantedLevel(userId, now, trx);
    const stored = user.level;
    const manual = user.levelExpiresAt === null && RANK[stored] > RANK[granted.level];
    if (RANK[granted.level] < RANK[stored] && (!lower || manual)) return undefined;
    const same = granted.level === stored && (granted.expiresAt?.getTime() ?? null) === (user.levelExpiresAt?.getTime() ?? null);
    if (same) return undefined;
    await this.repo.setLevel(userId, granted.level, granted.expiresAt, now, trx);
    if (granted.level !== stored) {
      await this.deps.audit.record({ action: 'user.level_changed', actorId: actor.actorId, subjectType: 'user', subjectId: userId, ip: actor.ip ?? null, details: { from: stored, to: granted.level, reason, ...(granted.expiresAt ? { until: granted.expiresAt.toISOString() } : {}) } }, trx);
    }
    return { from: stored, to: granted.level };
  }

  // ---- scheduled work --------------------------------------------------------------------

  /** Remind users 30 and 7 days before their L2 or L3 runs out; each reminder once per expiry. */
  async sendReminders(now: Date): Promise<{ sent: number; alreadySent: number; failed: number }> {
    const counts = { sent: 0, alreadySent: 0, failed: 0 };
    for (const user of await this.repo.levelsExpiring(now, new Date(now.getTime() + 30 * DAY))) {
      const expiresAt = user.levelExpiresAt!;
      const daysLeft = Math.ceil((expiresAt.getTime() - now.getTime()) / DAY);
      const threshold = daysLeft <= 7 ? 7 : 30;
      const kind = user.level === 'L3' ? 'membership' : 'dua';
      const claim = await this.repo.claimReminder(kind, user.userId, threshold, expiresAt, now);
      if (claim === undefined) {
        counts.alreadySent++;
        continue;
      }
      try {
        if (kind === 'dua') await this.mail(user.email, 'duaReminder', { name: user.name, expiresAt, daysLeft }, true);
        else {
          const institution = await this.repo.validMembership(user.userId, user.email, now);
          await this.mail(user.email, 'membershipReminder', { name: user.name, institution: institution?.name ?? 'your institution', expiresAt, daysLeft }, true);
        }
        await this.deps.audit.record({ action: `${kind}.reminder_sent`, actorId: null, subjectType: 'user', subjectId: user.userId, details: { daysBefore: threshold, expiresAt: expiresAt.toISOString() } });
        counts.sent++;
      } catch (error) {
        await this.repo.releaseReminder(claim);
        this.deps.log.warn({ err: error, userId: user.userId }, 'reminder not sent; the next run tries again');
        counts.failed++;
      }
    }
    return counts;
  }

  /** Users whose L2 or L3 has run out fall to what they still hold (L2 from a DUA under an ended membership, else L1), and are told why. */
  async expireLevels(now: Date): Promise<{ lowered: number; told: number; failed: number }> {
    const counts = { lowered: 0, told: 0, failed: 0 };
    for (const user of await this.repo.levelsExpiring(new Date(0), new Date(now.getTime() + 1))) {
      const change = await this.repo.transaction((trx) => this.applyLevel(user.userId, now, trx, { actorId: null }, 'expired', { lower: true }));
      if (!change || RANK[change.to] >= RANK[change.from]) continue;
      counts.lowered++;
      const expiredAt = user.levelExpiresAt!;
      const kind = change.from === 'L3' ? 'membership' : 'dua';
      const claim = await this.repo.claimReminder(kind, user.userId, 0, expiredAt, now);
      if (claim === undefined) continue;
      try {
        if (kind === 'dua') await this.mail(user.email, 'duaExpired', { name: user.name, expiredAt }, true);
        else await this.mail(user.email, 'membershipExpired', { name: user.name, institution: 'your institution', expiredAt }, true);
        counts.told++;
      } catch (error) {
        await this.repo.releaseReminder(claim);
        this.deps.log.warn({ err: error, userId: user.userId }, 'expiry notice not sent; the next run tries again');
        counts.failed++;
      }
    }
    return counts;
  }

  /** Someone else's application is answered as missing: its existence is not theirs to know. */
  private async visibleApplication(userId: number, isAdmin: boolean, id: number): Promise<DuaApplication> {
    const application = await this.repo.application(id);
    if (!application || (!isAdmin && application.userId !== userId)) throw new AppError(404, 'application_not_found', `No application ${id}`);
    return application;
  }

  private async mail<T extends MailTemplate>(to: string, template: T, params: MailTemplates[T], rethrow = false): Promise<void> {
    try {
      await this.deps.mailer.send({ to, ...renderMail(template, params, this.deps.site) });
    } catch (error) {
      if (rethrow) throw error;
      // The decision stands; the person can see it in the portal. The failure is logged for operators.
      this.deps.log.warn({ err: error, template }, 'mail not sent');
    }
  }
}

/** The user acting for themselves (applying, reporting) or deciding; the routes that come here admit logged-in users only. */
function userOf(actor: AuditActor): number {
  if (actor.actorId === null) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return actor.actorId;
}
