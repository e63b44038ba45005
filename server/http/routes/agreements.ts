import { createReadStream } from 'node:fs';
import type { Context } from 'koa';
import { z } from 'zod';
import { MAX_PDF_BYTES } from '../../agreements/agreements.service.js';
import { printableAgreement } from '../../agreements/printable.js';
import {
  APPLICATION_STATUSES,
  duaApplication,
  duaApplicationList,
  duaDraft,
  duaDraftList,
  duaPending,
  duaVersion,
  duaVersionList,
  institution,
  institutionList,
  REPORT_STATUSES,
  usageReport,
  usageReportList,
} from '../../agreements/views.js';
import { AppError } from '../../errors.js';
import { adminOnly, atLeast, loggedIn, publicAccess } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idParam } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';

/**
 * Data use agreements: researchers apply, upload the signed agreement, file
 * annual usage reports and accept new versions (`/api/dua/…`);
 * administrators publish versions, decide, and keep partner institutions
 * (`/api/admin/dua/…`, `/api/admin/institutions/…`). Answers are never cached.
 */

const tag = 'Data use agreements';
const before = [noStore];

// Text fields are plain text: markup is kept as typed and escaped wherever it is shown.
const text = (field: string, max: number) =>
  z
    .string({ error: `${field} must be text` })
    .trim()
    .min(1, `${field} must not be empty`)
    .max(max, `${field} must be at most ${max} characters`)
    // eslint-disable-next-line no-control-regex
    .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), `${field} must not contain control characters`);

/** A day (2027-01-31) or a moment with its offset (2027-01-31T12:00:00Z). */
const day = (field: string) =>
  z
    .string({ error: `${field} must be a date such as 2027-01-31` })
    .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, `${field} must be a date such as 2027-01-31`)
    .transform((value) => new Date(value))
    .refine((date) => !Number.isNaN(date.getTime()), `${field} must be a date such as 2027-01-31`)
    .meta({ description: 'A day such as 2027-01-31 (from midnight UTC), or an ISO 8601 date and time with its offset' });

const versionLabel = z
  .string({ error: 'version must be text' })
  .trim()
  .regex(/^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$/, 'version must be a short version label such as 2027.1');
const requiresReacceptance = z
  .boolean({ error: 'requiresReacceptance must be true or false' })
  .default(false)
  .meta({ description: 'Holders of an approval under an older version must accept this one to keep L2' });

const newVersion = z
  .strictObject({
    version: versionLabel,
    title: text('title', 200),
    body: text('body', 100_000),
    requiresReacceptance,
  })
  .meta({ id: 'NewDuaVersion' });

const draftText = z.strictObject({ title: text('title', 200), body: text('body', 100_000) }).meta({ id: 'DuaDraftText' });

const draftPublication = z
  .strictObject({
    version: versionLabel.optional().meta({ description: 'The label; by default the next whole number after the highest one used' }),
    requiresReacceptance,
  })
  .meta({ id: 'DuaDraftPublication' });

const revocation = z
  .strictObject({
    reason: text('reason', 2000).meta({ description: 'Why: the holder is sent it, and it is audited' }),
  })
  .meta({ id: 'Revocation' });

const application = z
  .strictObject({
    researchPurpose: text('researchPurpose', 5000),
    project: text('project', 300),
    principalInvestigator: text('principalInvestigator', 200),
  })
  .meta({ id: 'DuaApplicationFields' });

const DOI = /^10\.\d{4,9}\/\S{1,200}$/;
const report = z
  .strictObject({
    usedFor: text('usedFor', 5000),
    results: text('results', 10_000),
    publications: z
      .array(
        z.strictObject({
          title: text('title', 500),
          doi: z
            .string({ error: 'doi must be text' })
            .trim()
            .transform((s) => s.replace(/^https?:\/\/(dx\.)?doi\.org\//i, ''))
            .refine((s) => DOI.test(s), 'doi must be a DOI such as 10.1186/s12911-021-01484-w')
            .nullable()
            .default(null),
        }),
        { error: 'publications must be a list' },
      )
      .max(100, 'publications lists at most 100')
      .default([]),
  })
  .meta({ id: 'UsageReportFields' });

const decision = z
  .strictObject({
    reason: z
      .string({ error: 'reason must be text' })
      .trim()
      .max(2000, 'reason must be at most 2000 characters')
      .optional()
      .meta({ description: 'Required to reject: the researcher is sent it' }),
  })
  .meta({ id: 'Decision' });

const newInstitution = z
  .strictObject({
    name: text('name', 200),
    agreementReference: text('agreementReference', 200),
    validFrom: day('validFrom'),
    validUntil: day('validUntil'),
    emailDomains: z
      .array(
        z
          .string({ error: 'emailDomains must be text' })
          .trim()
          .toLowerCase()
          .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/, 'emailDomains must be domains such as partner.example.org'),
        { error: 'emailDomains must be a list' },
      )
      .max(20, 'emailDomains lists at most 20')
      .default([])
      .meta({ description: 'Confirmed addresses at these domains are members without being assigned' }),
  })
  // Also run when a field failed: then it says nothing, the field's own problem does.
  .refine(({ validFrom, validUntil }) => !(validFrom instanceof Date && validUntil instanceof Date) || validUntil > validFrom, {
    path: ['validUntil'],
    message: 'validUntil must be after validFrom',
  })
  .meta({ id: 'NewInstitution' });

const validity = z.strictObject({ validUntil: day('validUntil') }).meta({ id: 'InstitutionValidity' });

const applicationId = z.strictObject({ id: idParam('application') });
const draftId = z.strictObject({ id: idParam('draft') });
const versionId = z.strictObject({ id: idParam('version') });
const userId = z.strictObject({ id: idParam('user') });
const reportId = z.strictObject({ id: idParam('report') });
const institutionId = z.strictObject({ id: idParam('institution') });
const membership = z.strictObject({ id: idParam('institution'), userId: idParam('user') });
const applicationsQuery = z.strictObject({
  status: z.enum(APPLICATION_STATUSES, { error: `status must be ${APPLICATION_STATUSES.join(', ')}` }).optional(),
});
const reportsQuery = z.strictObject({
  status: z.enum(REPORT_STATUSES, { error: `status must be ${REPORT_STATUSES.join(', ')}` }).optional(),
});

/** A raw `application/pdf` request body, refused past the limit without reading the rest. */
async function pdfBody(ctx: Context): Promise<Buffer> {
  if (!ctx.is('application/pdf')) throw new AppError(415, 'not_a_pdf', 'Send the signed agreement as Content-Type: application/pdf');
  const tooLarge = () => new AppError(413, 'pdf_too_large', `The PDF must be at most ${MAX_PDF_BYTES / 1024 / 1024} MiB`);
  if (Number(ctx.get('Content-Length') || 0) > MAX_PDF_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PDF_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export const agreementRoutes = [
  route({
    method: 'get',
    path: '/api/dua/current',
    tag,
    summary: 'The data use agreement in force: its latest published version',
    access: publicAccess,
    before,
    response: { description: 'The agreement; 404 no_agreement before the first is published', schema: duaVersion },
    handle: (_input, ctx) => ctx.services.agreements.currentVersion(),
  }),
  route({
    method: 'get',
    path: '/api/dua/current/template',
    tag,
    summary: 'The agreement in force as a page to print, sign and upload as the signed PDF',
    description: 'An HTML page with the text and fields for name, institution, project, place, date and signature; 404 no_agreement before the first is published.',
    access: publicAccess,
    before,
    response: { description: 'A printable HTML page', contentType: 'text/html; charset=utf-8' },
    handle: async (_input, ctx) => {
      const version = await ctx.services.agreements.currentVersion();
      ctx.type = 'text/html; charset=utf-8';
      ctx.set('Content-Disposition', `inline; filename="slidebank-agreement-${version.version}.html"`);
      ctx.body = printableAgreement(version);
    },
  }),
  route({
    method: 'get',
    path: '/api/dua/applications',
    tag,
    summary: "The requester's own applications, newest first",
    access: loggedIn,
    before,
    response: { description: 'The applications', schema: duaApplicationList },
    handle: async (_input, ctx) => ({ items: await ctx.services.agreements.myApplications(requesterOf(ctx)) }),
  }),
  route({
    method: 'post',
    path: '/api/dua/applications',
    tag,
    summary: 'Apply for a data use agreement under the current version',
    description: 'One application waits for a decision at a time (409 application_open).',
    access: atLeast('L1'),
    body: application,
    before,
    response: { status: 201, description: 'The application, submitted', schema: duaApplication },
    handle: ({ body }, ctx) => ctx.services.agreements.apply(actorOf(ctx), body),
  }),
  route({
    method: 'get',
    path: '/api/dua/applications/{id}',
    tag,
    summary: 'One application, for its applicant or an administrator',
    description: "Someone else's application is a 404, as if it did not exist.",
    access: loggedIn,
    params: applicationId,
    before,
    response: { description: 'The application', schema: duaApplication },
    handle: ({ params }, ctx) => ctx.services.agreements.applicationFor(requesterOf(ctx), params.id),
  }),
  route({
    method: 'post',
    path: '/api/dua/applications/{id}/withdraw',
    tag,
    summary: 'Withdraw an application that waits for its decision',
    description: 'The applicant\'s own only; once decided, 409 already_decided.',
    access: loggedIn,
    params: applicationId,
    before,
    response: { description: 'The application, withdrawn', schema: duaApplication },
    handle: ({ params }, ctx) => ctx.services.agreements.withdraw(actorOf(ctx), params.id),
  }),
  route({
    method: 'put',
    path: '/api/dua/applications/{id}/signed-pdf',
    tag,
    summary: 'Upload the signed agreement as a PDF while the application waits for its decision',
    description: `The request body is the PDF itself, sent as Content-Type: application/pdf (415 not_a_pdf otherwise, or when it does not start with %PDF-), at most ${MAX_PDF_BYTES / 1024 / 1024} MiB (413 pdf_too_large). A decided application keeps its PDF (409 already_decided).`,
    access: loggedIn,
    params: applicationId,
    before,
    response: { description: 'The application, with hasSignedPdf', schema: duaApplication },
    handle: async ({ params }, ctx) => ctx.services.agreements.attachSignedPdf(actorOf(ctx), params.id, await pdfBody(ctx)),
  }),
  route({
    method: 'get',
    path: '/api/dua/applications/{id}/signed-pdf',
    tag,
    summary: 'The signed agreement of an application, for its applicant or an administrator',
    access: loggedIn,
    params: applicationId,
    before,
    response: { description: 'The PDF, as an attachment', contentType: 'application/pdf' },
    handle: async ({ params }, ctx) => {
      const file = await ctx.services.agreements.signedPdfFile(requesterOf(ctx), params.id);
      ctx.type = 'application/pdf';
      ctx.attachment(`dua-application-${params.id}.pdf`);
      ctx.body = createReadStream(file);
    },
  }),
  route({
    method: 'post',
    path: '/api/dua/accept',
    tag,
    summary: 'Accept a new version of the agreement that requires it, keeping the current approval and its term',
    description: 'Without a current approval, 409 no_approval (apply instead); under the current version already, 409 already_accepted.',
    access: atLeast('L1'),
    before,
    response: { description: 'The approval under the new version', schema: duaApplication },
    handle: (_input, ctx) => ctx.services.agreements.acceptCurrentVersion(actorOf(ctx)),
  }),
  route({
    method: 'get',
    path: '/api/dua/reports',
    tag,
    summary: "The requester's own usage reports, newest first",
    access: loggedIn,
    before,
    response: { description: 'The reports', schema: usageReportList },
    handle: async (_input, ctx) => ({ items: await ctx.services.agreements.myReports(requesterOf(ctx)) }),
  }),
  route({
    method: 'post',
    path: '/api/dua/reports',
    tag,
    summary: 'File the annual usage report that renews a current approval once approved',
    description:
      'It needs an approval that has not run out (409 no_approval: apply again instead). DOIs may be given as https://doi.org/… links. One report waits for a decision at a time (409 report_open).',
    access: loggedIn,
    body: report,
    before,
    response: { status: 201, description: 'The report, submitted', schema: usageReport },
    handle: ({ body }, ctx) => ctx.services.agreements.fileReport(actorOf(ctx), body),
  }),

  route({
    method: 'get',
    path: '/api/admin/dua/versions',
    tag,
    summary: 'Every published version of the agreement',
    access: adminOnly,
    before,
    response: { description: 'The versions', schema: duaVersionList },
    handle: async (_input, ctx) => ({ items: await ctx.services.agreements.versions() }),
  }),
  route({
    method: 'post',
    path: '/api/admin/dua/versions',
    tag,
    summary: 'Publish a new version of the agreement',
    description:
      'With requiresReacceptance, approvals under older versions stop counting (their holders fall to L1) until the holders accept this one. A version label used before is 409 version_taken.',
    access: adminOnly,
    body: newVersion,
    before,
    response: { status: 201, description: 'The published version', schema: duaVersion },
    handle: ({ body }, ctx) => ctx.services.agreements.publishVersion(actorOf(ctx), body),
  }),
  route({
    method: 'post',
    path: '/api/admin/dua/versions/{id}/review',
    tag,
    summary: 'Mark a published text (the default one installed on the first start) as reviewed: it stays in force',
    access: adminOnly,
    params: versionId,
    before,
    response: { description: 'The version, with reviewedAt', schema: duaVersion },
    handle: ({ params }, ctx) => ctx.services.agreements.markReviewed(actorOf(ctx), params.id),
  }),
  route({
    method: 'get',
    path: '/api/admin/dua/pending',
    tag,
    summary: 'What waits for an administrator: applications and reports to decide, and whether the default agreement text is unreviewed',
    access: adminOnly,
    before,
    response: { description: 'The counts', schema: duaPending },
    handle: (_input, ctx) => ctx.services.agreements.pending(),
  }),
  route({
    method: 'get',
    path: '/api/admin/dua/drafts',
    tag,
    summary: 'Agreement texts being prepared, newest first; researchers never see them',
    access: adminOnly,
    before,
    response: { description: 'The drafts, each with its rendered preview', schema: duaDraftList },
    handle: async (_input, ctx) => ({ items: await ctx.services.agreements.drafts() }),
  }),
  route({
    method: 'post',
    path: '/api/admin/dua/drafts',
    tag,
    summary: 'Save a new draft of the agreement text (Markdown)',
    access: adminOnly,
    body: draftText,
    before,
    response: { status: 201, description: 'The draft, with its rendered preview', schema: duaDraft },
    handle: ({ body }, ctx) => ctx.services.agreements.createDraft(actorOf(ctx), body),
  }),
  route({
    method: 'get',
    path: '/api/admin/dua/drafts/{id}',
    tag,
    summary: 'One draft, with its rendered preview',
    access: adminOnly,
    params: draftId,
    before,
    response: { description: 'The draft', schema: duaDraft },
    handle: ({ params }, ctx) => ctx.services.agreements.draft(params.id),
  }),
  route({
    method: 'put',
    path: '/api/admin/dua/drafts/{id}',
    tag,
    summary: 'Change a draft',
    access: adminOnly,
    params: draftId,
    body: draftText,
    before,
    response: { description: 'The draft as changed, with its rendered preview', schema: duaDraft },
    handle: ({ params, body }, ctx) => ctx.services.agreements.updateDraft(actorOf(ctx), params.id, body),
  }),
  route({
    method: 'delete',
    path: '/api/admin/dua/drafts/{id}',
    tag,
    summary: 'Discard a draft',
    access: adminOnly,
    params: draftId,
    before,
    response: { status: 204, description: 'Gone' },
    handle: async ({ params }, ctx) => {
      await ctx.services.agreements.deleteDraft(actorOf(ctx), params.id);
    },
  }),
  route({
    method: 'post',
    path: '/api/admin/dua/drafts/{id}/publish',
    tag,
    summary: 'Publish a draft as the agreement in force; the draft is gone from the drafts',
    description:
      'With requiresReacceptance, approvals under older versions stop counting (their holders fall to L1) until the holders accept this one (POST /api/dua/accept). A version label used before is 409 version_taken.',
    access: adminOnly,
    params: draftId,
    body: draftPublication,
    before,
    response: { status: 201, description: 'The published version', schema: duaVersion },
    handle: ({ params, body }, ctx) => ctx.services.agreements.publishDraft(actorOf(ctx), params.id, body),
  }),
  route({
    method: 'get',
    path: '/api/admin/dua/users/{id}/applications',
    tag,
    summary: "One user's applications and the decisions on them, newest first",
    access: adminOnly,
    params: userId,
    before,
    response: { description: 'The applications', schema: duaApplicationList },
    handle: async ({ params }, ctx) => ({ items: await ctx.services.agreements.applicationsOfUser(params.id) }),
  }),
  route({
    method: 'post',
    path: '/api/admin/dua/applications/{id}/revoke',
    tag,
    summary: 'Revoke an approval before its term: the holder falls to the level they still hold and is sent the reason',
    description: 'Only an approval can be revoked (409 not_approved). Audited as dua.revoked.',
    access: adminOnly,
    params: applicationId,
    body: revocation,
    before,
    response: { description: 'The application, revoked', schema: duaApplication },
    handle: ({ params, body }, ctx) => ctx.services.agreements.revoke(actorOf(ctx), params.id, body.reason),
  }),
  route({
    method: 'get',
    path: '/api/admin/dua/applications',
    tag,
    summary: 'Applications, newest first, of one status or all',
    access: adminOnly,
    query: applicationsQuery,
    before,
    response: { description: 'Up to 50 applications', schema: duaApplicationList },
    handle: async ({ query }, ctx) => ({ items: await ctx.services.agreements.listApplications(query.status) }),
  }),
  ...(['approve', 'reject'] as const).flatMap((verdict) => [
    route({
      method: 'post',
      path: `/api/admin/dua/applications/{id}/${verdict}`,
      tag,
      summary: verdict === 'approve' ? 'Approve an application: the applicant is L2 for a year' : 'Reject an application, with a reason the applicant is sent',
      description:
        (verdict === 'approve' ? '' : 'The reason is required (400 reason_required). ') +
        'The decision is mailed to the applicant and audited; an application decided already is 409 already_decided.',
      access: adminOnly,
      params: applicationId,
      body: decision,
      before,
      response: { description: 'The application as decided', schema: duaApplication },
      handle: ({ params, body }, ctx) => ctx.services.agreements.decide(actorOf(ctx), params.id, { decision: verdict, ...body }),
    }),
    route({
      method: 'post',
      path: `/api/admin/dua/reports/{id}/${verdict}`,
      tag,
      summary: verdict === 'approve' ? "Approve a usage report: the approval runs a year longer" : 'Reject a usage report, with a reason the researcher is sent',
      description:
        (verdict === 'approve' ? 'The approval runs a year past its current end, or a year from now when it has ended. ' : 'The reason is required (400 reason_required). ') +
        'The decision is mailed to the researcher and audited; a report decided already is 409 already_decided.',
      access: adminOnly,
      params: reportId,
      body: decision,
      before,
      response: { description: 'The report as decided', schema: usageReport },
      handle: ({ params, body }, ctx) => ctx.services.agreements.decideReport(actorOf(ctx), params.id, { decision: verdict, ...body }),
    }),
  ]),
  route({
    method: 'get',
    path: '/api/admin/dua/reports',
    tag,
    summary: 'Usage reports, newest first, of one status or all',
    access: adminOnly,
    query: reportsQuery,
    before,
    response: { description: 'Up to 50 reports', schema: usageReportList },
    handle: async ({ query }, ctx) => ({ items: await ctx.services.agreements.listReports(query.status) }),
  }),

  route({
    method: 'get',
    path: '/api/admin/institutions',
    tag,
    summary: 'The partner institutions',
    access: adminOnly,
    before,
    response: { description: 'The institutions', schema: institutionList },
    handle: async (_input, ctx) => ({ items: await ctx.services.agreements.institutions() }),
  }),
  route({
    method: 'post',
    path: '/api/admin/institutions',
    tag,
    summary: 'Add a partner institution: its members are L3 while its agreement holds',
    description: 'Members are the users an administrator assigns, and confirmed users whose address is in one of emailDomains. A name used before is 409 name_taken.',
    access: adminOnly,
    body: newInstitution,
    before,
    response: { status: 201, description: 'The institution', schema: institution },
    handle: ({ body }, ctx) => ctx.services.agreements.createInstitution(actorOf(ctx), body),
  }),
  route({
    method: 'patch',
    path: '/api/admin/institutions/{id}',
    tag,
    summary: "Move the end of an institution's agreement; its members' levels follow",
    access: adminOnly,
    params: institutionId,
    body: validity,
    before,
    response: { description: 'The institution as changed', schema: institution },
    handle: ({ params, body }, ctx) => ctx.services.agreements.setInstitutionValidity(actorOf(ctx), params.id, body.validUntil),
  }),
  route({
    method: 'put',
    path: '/api/admin/institutions/{id}/members/{userId}',
    tag,
    summary: 'Make a user a member of an institution, whatever their address',
    access: adminOnly,
    params: membership,
    before,
    response: { status: 204, description: 'A member' },
    handle: async ({ params }, ctx) => {
      await ctx.services.agreements.addMember(actorOf(ctx), params.id, params.userId);
    },
  }),
  route({
    method: 'delete',
    path: '/api/admin/institutions/{id}/members/{userId}',
    tag,
    summary: 'End an assigned membership; the user falls to the level they still hold',
    description: 'Only assigned memberships end here (404 member_not_found otherwise); a member by e-mail domain stays one while the address is in the domain.',
    access: adminOnly,
    params: membership,
    before,
    response: { status: 204, description: 'No longer a member' },
    handle: async ({ params }, ctx) => {
      await ctx.services.agreements.removeMember(actorOf(ctx), params.id, params.userId);
    },
  }),
];
