import type { Knex } from 'knex';
import { fromDbJson, fromDbTime, isUniqueViolation, toDbTime } from '../db/index.js';
import { renderMarkdown } from '../pages/markdown.js';
import type { ApplicationStatus, DuaApplication, DuaDraft, DuaVersion, Institution, Publication, ReportStatus, UsageReport } from './views.js';

type Level = 'L0' | 'L1' | 'L2' | 'L3';

/** Who a scheduled job writes to: the user's address, name and level. */
export interface Recipient {
  userId: number;
  email: string;
  name: string;
  level: Level;
  levelExpiresAt: Date | null;
  emailConfirmedAt: Date | null;
}

const time = (value: unknown) => fromDbTime(value as string);
const maybeTime = (value: unknown) => (value === null || value === undefined ? null : time(value));

function toApplication(row: Record<string, unknown>): DuaApplication {
  return {
    id: row.id as number,
    userId: row.user_id as number,
    versionId: row.version_id as number,
    version: row.version as string,
    researchPurpose: row.research_purpose as string,
    project: row.project as string,
    principalInvestigator: row.principal_investigator as string,
    hasSignedPdf: row.signed_pdf_path !== null,
    status: row.status as ApplicationStatus,
    administrative: Boolean(row.administrative),
    decidedBy: (row.decided_by as number | null) ?? null,
    decidedAt: maybeTime(row.decided_at),
    decisionReason: (row.decision_reason as string | null) ?? null,
    validUntil: maybeTime(row.valid_until),
    revokedAt: maybeTime(row.revoked_at),
    revokedBy: (row.revoked_by as number | null) ?? null,
    revocationReason: (row.revocation_reason as string | null) ?? null,
    createdAt: time(row.created_at),
  };
}

function toDraft(row: Record<string, unknown>): DuaDraft {
  return {
    id: row.id as number,
    title: row.title as string,
    body: row.body as string,
    html: renderMarkdown(row.body as string),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  };
}

/** A published version as written; `isDefault` marks the text installed on the first start. */
export type VersionText = Pick<DuaVersion, 'version' | 'title' | 'body' | 'requiresReacceptance'> & { isDefault?: boolean };

function toReport(row: Record<string, unknown>): UsageReport {
  return {
    id: row.id as number,
    applicationId: row.application_id as number,
    userId: row.user_id as number,
    usedFor: row.used_for as string,
    results: row.results as string,
    publications: fromDbJson(row.publications) as Publication[],
    status: row.status as ReportStatus,
    decidedBy: (row.decided_by as number | null) ?? null,
    decidedAt: maybeTime(row.decided_at),
    decisionReason: (row.decision_reason as string | null) ?? null,
    createdAt: time(row.created_at),
  };
}

function toInstitution(row: Record<string, unknown>): Institution {
  return {
    id: row.id as number,
    name: row.name as string,
    agreementReference: row.agreement_reference as string,
    validFrom: time(row.valid_from),
    validUntil: time(row.valid_until),
    emailDomains: fromDbJson(row.email_domains) as string[],
  };
}

const RECIPIENT_COLUMNS = ['id', 'email', 'name', 'level', 'level_expires_at', 'email_confirmed_at'] as const;

function toRecipient(row: Record<string, unknown>): Recipient {
  return {
    userId: row.id as number,
    email: row.email as string,
    name: row.name as string,
    level: row.level as Level,
    levelExpiresAt: maybeTime(row.level_expires_at),
    emailConfirmedAt: maybeTime(row.email_confirmed_at),
  };
}

const insertedId = (inserted: unknown) => (typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number));

/** Every query on agreements, reports, institutions and reminders; methods that change things take the caller's transaction. */
export class AgreementsRepository {
  constructor(private readonly knex: Knex) {}

  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  async latestVersion(trx: Knex = this.knex): Promise<DuaVersion | undefined> {
    const row = await trx('dua_versions').orderBy('id', 'desc').first();
    return row ? this.toVersion(row) : undefined;
  }

  async versions(): Promise<DuaVersion[]> {
    return (await this.knex('dua_versions').orderBy('id', 'desc')).map((row) => this.toVersion(row));
  }

  async publishVersion(
    version: VersionText,
    publishedBy: number | null,
    now: Date,
    trx: Knex = this.knex,
  ): Promise<DuaVersion | 'version_taken'> {
    try {
      const [inserted] = await trx('dua_versions')
        .insert({
          version: version.version,
          title: version.title,
          body: version.body,
          requires_reacceptance: version.requiresReacceptance,
          published_at: toDbTime(now),
          published_by: publishedBy,
          is_default: version.isDefault ?? false,
        })
        .returning('id');
      return this.toVersion(await trx('dua_versions').where({ id: insertedId(inserted) }).first());
    } catch (error) {
      if (isUniqueViolation(error)) return 'version_taken';
      throw error;
    }
  }

  private toVersion(row: Record<string, unknown>): DuaVersion {
    return {
      id: row.id as number,
      version: row.version as string,
      title: row.title as string,
      body: row.body as string,
      html: renderMarkdown(row.body as string),
      requiresReacceptance: Boolean(row.requires_reacceptance),
      publishedAt: time(row.published_at),
      isDefault: Boolean(row.is_default),
      reviewedAt: maybeTime(row.reviewed_at),
    };
  }

  async version(id: number, trx: Knex = this.knex): Promise<DuaVersion | undefined> {
    const row = await trx('dua_versions').where({ id }).first();
    return row ? this.toVersion(row) : undefined;
  }

  async markReviewed(id: number, reviewedBy: number | null, now: Date): Promise<boolean> {
    return (await this.knex('dua_versions').where({ id }).whereNull('reviewed_at').update({ reviewed_at: toDbTime(now), reviewed_by: reviewedBy })) === 1;
  }

  async drafts(): Promise<DuaDraft[]> {
    return (await this.knex('dua_drafts').orderBy('id', 'desc')).map(toDraft);
  }

  async draft(id: number, trx: Knex = this.knex): Promise<DuaDraft | undefined> {
    const row = await trx('dua_drafts').where({ id }).first();
    return row ? toDraft(row) : undefined;
  }

  async createDraft(draft: { title: string; body: string }, by: number | null, now: Date): Promise<DuaDraft> {
    const [inserted] = await this.knex('dua_drafts')
      .insert({ title: draft.title, body: draft.body, created_by: by, updated_by: by, created_at: toDbTime(now), updated_at: toDbTime(now) })
      .returning('id');
    return (await this.draft(insertedId(inserted)))!;
  }

  async updateDraft(id: number, draft: { title: string; body: string }, by: number | null, now: Date): Promise<boolean> {
    return (await this.knex('dua_drafts').where({ id }).update({ title: draft.title, body: draft.body, updated_by: by, updated_at: toDbTime(now) })) === 1;
  }

  async deleteDraft(id: number, trx: Knex = this.knex): Promise<boolean> {
    return (await trx('dua_drafts').where({ id }).del()) === 1;
  }

  /** What waits for an administrator's decision. */
  async pendingCounts(): Promise<{ applications: number; reports: number }> {
    const [applications, reports] = await Promise.all([
      this.knex('dua_applications').where({ status: 'submitted' }).count({ n: '*' }).first(),
      this.knex('usage_reports').where({ status: 'submitted' }).count({ n: '*' }).first(),
    ]);
    return { applications: Number(applications?.n ?? 0), reports: Number(reports?.n ?? 0) };
  }

  /** Active administrators with a confirmed address: who hears of new applications. */
  async adminRecipients(): Promise<Recipient[]> {
    const rows = await this.knex('users')
      .whereIn('id', this.knex('user_roles').select('user_id').where({ role: 'admin' }))
      .whereNull('disabled_at')
      .whereNotNull('email_confirmed_at')
      .select(RECIPIENT_COLUMNS);
    return rows.map(toRecipient);
  }

  /** End an approval before its term; false when it is not (or no longer) an approval. */
  async revokeApplication(id: number, by: number | null, reason: string, now: Date, trx: Knex): Promise<boolean> {
    const updated = await trx('dua_applications')
      .where({ id, status: 'approved' })
      .update({ status: 'revoked', revoked_at: toDbTime(now), revoked_by: by, revocation_reason: reason, updated_at: toDbTime(now) });
    return updated === 1;
  }

  private applications(trx: Knex = this.knex) {
    return trx('dua_applications as a').join('dua_versions as v', 'v.id', 'a.version_id').select('a.*', 'v.version');
  }

  async application(id: number, trx: Knex = this.knex): Promise<DuaApplication | undefined> {
    const row = await this.applications(trx).where('a.id', id).first();
    return row ? toApplication(row) : undefined;
  }

  async applicationsOf(userId: number): Promise<DuaApplication[]> {
    return (await this.applications().where('a.user_id', userId).orderBy('a.id', 'desc')).map(toApplication);
  }

  async applicationsByStatus(status: ApplicationStatus | undefined, limit: number, offset: number): Promise<DuaApplication[]> {
    const query = this.applications().orderBy('a.id', 'desc').limit(limit).offset(offset);
    if (status) query.where('a.status', status);
    return (await query).map(toApplication);
  }

  async createApplication(
    application: Pick<DuaApplication, 'userId' | 'versionId' | 'researchPurpose' | 'project' | 'principalInvestigator'> & {
      status: ApplicationStatus;
      administrative?: boolean;
      validUntil?: Date | null;
      decidedAt?: Date | null;
    },
    now: Date,
    trx: Knex = this.knex,
  ): Promise<number> {
    const [inserted] = await trx('dua_applications')
      .insert({
        user_id: application.userId,
        version_id: application.versionId,
        research_purpose: application.researchPurpose,
        project: application.project,
        principal_investigator: application.principalInvestigator,
        status: application.status,
        administrative: application.administrative ?? false,
        valid_until: application.validUntil ? toDbTime(application.validUntil) : null,
        decided_at: application.decidedAt ? toDbTime(application.decidedAt) : null,
        created_at: toDbTime(now),
        updated_at: toDbTime(now),
      })
      .returning('id');
    return insertedId(inserted);
  }

  /** Change an application only if it is still in `from`; false when someone else got there first. */
  async transitionApplication(
    id: number,
    from: ApplicationStatus,
    change: { status: ApplicationStatus; decidedBy?: number | null; decisionReason?: string | null; validUntil?: Date | null },
    now: Date,
    trx: Knex,
  ): Promise<boolean> {
    const updated = await trx('dua_applications')
      .where({ id, status: from })
      .update({
        status: change.status,
        ...(change.decidedBy !== undefined ? { decided_by: change.decidedBy, decided_at: toDbTime(now) } : {}),
        ...(change.decisionReason !== undefined ? { decision_reason: change.decisionReason } : {}),
        ...(change.validUntil !== undefined ? { valid_until: change.validUntil ? toDbTime(change.validUntil) : null } : {}),
        updated_at: toDbTime(now),
      });
    return updated === 1;
  }

  async setSignedPdf(id: number, relativePath: string, now: Date): Promise<void> {
    await this.knex('dua_applications').where({ id }).update({ signed_pdf_path: relativePath, updated_at: toDbTime(now) });
  }

  async signedPdfPath(id: number): Promise<string | null> {
    const row = await this.knex('dua_applications').where({ id }).first('signed_pdf_path');
    return (row?.signed_pdf_path as string | null | undefined) ?? null;
  }

  async extendApplication(id: number, validUntil: Date, now: Date, trx: Knex): Promise<void> {
    await trx('dua_applications').where({ id }).update({ valid_until: toDbTime(validUntil), updated_at: toDbTime(now) });
  }

  /** The user's approved application that runs furthest into the future (expired ones included). */
  async latestApproval(userId: number, trx: Knex = this.knex): Promise<DuaApplication | undefined> {
    const row = await this.applications(trx).where({ 'a.user_id': userId, 'a.status': 'approved' }).orderBy('a.valid_until', 'desc').first();
    return row ? toApplication(row) : undefined;
  }

  async openApplication(userId: number, trx: Knex = this.knex): Promise<DuaApplication | undefined> {
    const row = await this.applications(trx).where({ 'a.user_id': userId, 'a.status': 'submitted' }).first();
    return row ? toApplication(row) : undefined;
  }

  async createReport(report: Pick<UsageReport, 'applicationId' | 'userId' | 'usedFor' | 'results' | 'publications'>, now: Date): Promise<number> {
    const [inserted] = await this.knex('usage_reports')
      .insert({
        application_id: report.applicationId,
        user_id: report.userId,
        used_for: report.usedFor,
        results: report.results,
        publications: JSON.stringify(report.publications),
        status: 'submitted',
        created_at: toDbTime(now),
      })
      .returning('id');
    return insertedId(inserted);
  }

  async report(id: number, trx: Knex = this.knex): Promise<UsageReport | undefined> {
    const row = await trx('usage_reports').where({ id }).first();
    return row ? toReport(row) : undefined;
  }

  async reportsOf(userId: number): Promise<UsageReport[]> {
    return (await this.knex('usage_reports').where({ user_id: userId }).orderBy('id', 'desc')).map(toReport);
  }

  async reportsByStatus(status: ReportStatus | undefined, limit: number, offset: number): Promise<UsageReport[]> {
    const query = this.knex('usage_reports').orderBy('id', 'desc').limit(limit).offset(offset);
    if (status) query.where({ status });
    return (await query).map(toReport);
  }

  async openReport(applicationId: number): Promise<UsageReport | undefined> {
    const row = await this.knex('usage_reports').where({ application_id: applicationId, status: 'submitted' }).first();
    return row ? toReport(row) : undefined;
  }

  async transitionReport(
    id: number,
    change: { status: ReportStatus; decidedBy: number; decisionReason: string | null },
    now: Date,
    trx: Knex,
  ): Promise<boolean> {
    const updated = await trx('usage_reports')
      .where({ id, status: 'submitted' })
      .update({ status: change.status, decided_by: change.decidedBy, decision_reason: change.decisionReason, decided_at: toDbTime(now) });
    return updated === 1;
  }

  async createInstitution(institution: Omit<Institution, 'id'>, now: Date): Promise<Institution | 'name_taken'> {
    try {
      const [inserted] = await this.knex('institutions')
        .insert({
          name: institution.name,
          agreement_reference: institution.agreementReference,
          valid_from: toDbTime(institution.validFrom),
          valid_until: toDbTime(institution.validUntil),
          email_domains: JSON.stringify(institution.emailDomains),
          created_at: toDbTime(now),
          updated_at: toDbTime(now),
        })
        .returning('id');
      return (await this.institution(insertedId(inserted)))!;
    } catch (error) {
      if (isUniqueViolation(error)) return 'name_taken';
      throw error;
    }
  }

  async updateInstitutionValidity(id: number, validUntil: Date, now: Date): Promise<void> {
    await this.knex('institutions').where({ id }).update({ valid_until: toDbTime(validUntil), updated_at: toDbTime(now) });
  }

  async institution(id: number): Promise<Institution | undefined> {
    const row = await this.knex('institutions').where({ id }).first();
    return row ? toInstitution(row) : undefined;
  }

  async institutions(): Promise<Institution[]> {
    return (await this.knex('institutions').orderBy('name')).map(toInstitution);
  }

  async addMember(institutionId: number, userId: number, now: Date): Promise<void> {
    try {
      await this.knex('institution_members').insert({ institution_id: institutionId, user_id: userId, added_at: toDbTime(now) });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
  }

  async removeMember(institutionId: number, userId: number): Promise<boolean> {
    return (await this.knex('institution_members').where({ institution_id: institutionId, user_id: userId }).del()) > 0;
  }

  /** Users in an institution: assigned ones, and confirmed users whose address is in one of its domains. */
  async memberIds(institution: Institution): Promise<number[]> {
    const assigned = (await this.knex('institution_members').where({ institution_id: institution.id }).pluck('user_id')) as number[];
    const byDomain: number[] = [];
    for (const domain of institution.emailDomains) {
      const ids = (await this.knex('users').whereNotNull('email_confirmed_at').where('email', 'like', `%@${domain.replace(/[\\%_]/g, '\\$&')}`).pluck('id')) as number[];
      byDomain.push(...ids);
    }
    return [...new Set([...assigned, ...byDomain])];
  }

  /** The institution that makes the user L3 at `now` and stays valid longest, if any. */
  async validMembership(userId: number, email: string, now: Date, trx: Knex = this.knex): Promise<Institution | undefined> {
    const domain = email.split('@')[1]?.toLowerCase() ?? '';
    const rows = await trx('institutions')
      .where('valid_from', '<=', toDbTime(now))
      .andWhere('valid_until', '>', toDbTime(now))
      .orderBy('valid_until', 'desc');
    for (const row of rows) {
      const institution = toInstitution(row);
      if (institution.emailDomains.map((d) => d.toLowerCase()).includes(domain)) return institution;
      const assigned = await trx('institution_members').where({ institution_id: institution.id, user_id: userId }).first();
      if (assigned) return institution;
    }
    return undefined;
  }

  async recipient(userId: number, trx: Knex = this.knex): Promise<Recipient | undefined> {
    const row = await trx('users').where({ id: userId }).whereNull('disabled_at').first(RECIPIENT_COLUMNS);
    return row ? toRecipient(row) : undefined;
  }

  async setLevel(userId: number, level: Level, expiresAt: Date | null, now: Date, trx: Knex): Promise<void> {
    await trx('users').where({ id: userId }).update({ level, level_expires_at: expiresAt ? toDbTime(expiresAt) : null, updated_at: toDbTime(now) });
  }

  /** Users whose level runs out within [from, to), with the expiry: who to remind, or (from = epoch) who has lapsed. */
  async levelsExpiring(from: Date, to: Date): Promise<Recipient[]> {
    const rows = await this.knex('users')
      .whereIn('level', ['L2', 'L3'])
      .whereNull('disabled_at')
      .where('level_expires_at', '>=', toDbTime(from))
      .andWhere('level_expires_at', '<', toDbTime(to))
      .select(RECIPIENT_COLUMNS);
    return rows.map(toRecipient);
  }

  async userIdsAtLevel(level: Level, trx: Knex = this.knex): Promise<number[]> {
    return (await trx('users').where({ level }).pluck('id')) as number[];
  }

  /** Record a reminder before it is sent; false when it was sent already (the job ran before). */
  async claimReminder(kind: 'dua' | 'membership', userId: number, daysBefore: number, expiresAt: Date, now: Date): Promise<number | undefined> {
    try {
      const [inserted] = await this.knex('reminders_sent')
        .insert({ kind, user_id: userId, days_before: daysBefore, expires_at: toDbTime(expiresAt), sent_at: toDbTime(now) })
        .returning('id');
      return insertedId(inserted);
    } catch (error) {
      if (isUniqueViolation(error)) return undefined;
      throw error;
    }
  }

  /** Undo a claim whose mail could not be sent, so that the next run tries again. */
  async releaseReminder(id: number): Promise<void> {
    await this.knex('reminders_sent').where({ id }).del();
  }
}
