import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';

/** What the agreements routes answer with: the records as stored, each a view of its own. */

/** `revoked`: an approval an administrator ended before its term. */
export const APPLICATION_STATUSES = ['submitted', 'approved', 'rejected', 'withdrawn', 'revoked'] as const;
export type ApplicationStatus = (typeof APPLICATION_STATUSES)[number];
export const REPORT_STATUSES = ['submitted', 'approved', 'rejected'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** A published text of the data use agreement. */
export const duaVersion = z
  .object({
    id: z.number().int(),
    version: z.string().meta({ description: 'A short label such as 2027.1' }),
    title: z.string(),
    body: z.string().meta({ description: 'Markdown, as the administrator wrote it' }),
    html: z.string().meta({ description: 'The body rendered from Markdown and sanitised, ready to show' }),
    requiresReacceptance: z.boolean().meta({ description: 'Whether holders of an approval under an older version must accept this one to keep L2' }),
    publishedAt: timestamp,
    isDefault: z.boolean().meta({ description: 'The text Slidebank installed on its first start' }),
    reviewedAt: timestamp.nullable().meta({ description: 'When an administrator marked the installed text as reviewed' }),
  })
  .meta({ id: 'DuaVersion' });
export type DuaVersion = z.infer<typeof duaVersion>;

export const duaVersionList = z.object({ items: z.array(duaVersion) }).meta({ id: 'DuaVersionList' });

/** A text an administrator prepares; researchers never see it until it is published as a version. */
export const duaDraft = z
  .object({
    id: z.number().int(),
    title: z.string(),
    body: z.string().meta({ description: 'Markdown' }),
    html: z.string().meta({ description: 'The preview: the body rendered from Markdown and sanitised' }),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'DuaDraft' });
export type DuaDraft = z.infer<typeof duaDraft>;

export const duaDraftList = z.object({ items: z.array(duaDraft) }).meta({ id: 'DuaDraftList' });

/** What waits for an administrator: the header's badge and the notices of the administration. */
export const duaPending = z
  .object({
    applications: z.number().int().meta({ description: 'Applications waiting for a decision' }),
    reports: z.number().int().meta({ description: 'Usage reports waiting for a decision' }),
    total: z.number().int(),
    defaultAgreementUnreviewed: z.boolean().meta({ description: 'The agreement in force is the installed default text and no administrator has reviewed it' }),
  })
  .meta({ id: 'DuaPending' });
export type DuaPending = z.infer<typeof duaPending>;

/** An application for a data use agreement, and its decision. */
export const duaApplication = z
  .object({
    id: z.number().int(),
    userId: z.number().int(),
    versionId: z.number().int(),
    version: z.string(),
    researchPurpose: z.string(),
    project: z.string(),
    principalInvestigator: z.string(),
    hasSignedPdf: z.boolean(),
    status: z.enum(APPLICATION_STATUSES),
    administrative: z.boolean().meta({ description: 'Granted by an operator (`slidebank user add --level L2`), not applied for' }),
    decidedBy: z.number().int().nullable(),
    decidedAt: timestamp.nullable(),
    decisionReason: z.string().nullable(),
    validUntil: timestamp.nullable().meta({ description: 'When an approval runs out (a year after it, renewed by approved usage reports)' }),
    revokedAt: timestamp.nullable(),
    revokedBy: z.number().int().nullable(),
    revocationReason: z.string().nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'DuaApplication' });
export type DuaApplication = z.infer<typeof duaApplication>;

export const duaApplicationList = z.object({ items: z.array(duaApplication) }).meta({ id: 'DuaApplicationList' });

export const publication = z.object({ title: z.string(), doi: z.string().nullable() }).meta({ id: 'Publication' });
export type Publication = z.infer<typeof publication>;

/** An annual usage report; an approved one renews the approval for a year. */
export const usageReport = z
  .object({
    id: z.number().int(),
    applicationId: z.number().int(),
    userId: z.number().int(),
    usedFor: z.string(),
    results: z.string(),
    publications: z.array(publication),
    status: z.enum(REPORT_STATUSES),
    decidedBy: z.number().int().nullable(),
    decidedAt: timestamp.nullable(),
    decisionReason: z.string().nullable(),
    createdAt: timestamp,
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.infer<typeof usageReport>;

export const usageReportList = z.object({ items: z.array(usageReport) }).meta({ id: 'UsageReportList' });

/** A partner institution: its members are L3 while its agreement holds. */
export const institution = z
  .object({
    id: z.number().int(),
    name: z.string(),
    agreementReference: z.string(),
    validFrom: timestamp,
    validUntil: timestamp,
    emailDomains: z.array(z.string()).meta({ description: 'Confirmed addresses at these domains are members without being assigned' }),
  })
  .meta({ id: 'Institution' });
export type Institution = z.infer<typeof institution>;

export const institutionList = z.object({ items: z.array(institution) }).meta({ id: 'InstitutionList' });
