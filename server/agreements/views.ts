import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';

/** What the agreements routes answer with: the records as stored, each a view of its own. */

export const APPLICATION_STATUSES = ['submitted', 'approved', 'rejected', 'withdrawn'] as const;
export type ApplicationStatus = (typeof APPLICATION_STATUSES)[number];
export const REPORT_STATUSES = ['submitted', 'approved', 'rejected'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/** A published text of the data use agreement. */
export const duaVersion = z
  .object({
    id: z.number().int(),
    version: z.string().meta({ description: 'A short label such as 2027.1' }),
    title: z.string(),
    body: z.string().meta({ description: 'Plain text, shown as typed' }),
    requiresReacceptance: z.boolean().meta({ description: 'Whether holders of an approval under an older version must accept this one to keep L2' }),
    publishedAt: timestamp,
  })
  .meta({ id: 'DuaVersion' });
export type DuaVersion = z.infer<typeof duaVersion>;

export const duaVersionList = z.object({ items: z.array(duaVersion) }).meta({ id: 'DuaVersionList' });

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
