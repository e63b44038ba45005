import { createReadStream } from 'node:fs';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { Actor, AgreementsService } from '../../agreements/agreements.service.js';
import { AppError } from '../../errors.js';
import { requesterOf, requireAdmin, requireAuthenticated, requireLevel } from '../middleware/permissions.js';
import { noStore } from './auth.js';

const MAX_PDF_BYTES = 10 * 1024 * 1024;

/** The logged-in user as the acting party (the routes below all require one). */
function actor(ctx: Context): Actor & { id: number } {
  const user = requesterOf(ctx).user;
  if (!user) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return { id: user.id, ip: ctx.ip || null };
}

function isAdmin(ctx: Context): boolean {
  return requesterOf(ctx).roles.includes('admin');
}

function id(text: string | undefined, what: string): number {
  if (!text || !/^[1-9]\d{0,9}$/.test(text)) throw new AppError(404, `${what}_not_found`, `No ${what.replace('_', ' ')} ${text ?? ''}`.trim());
  return Number(text);
}

function status(ctx: Context): string | undefined {
  const value = ctx.query.status;
  return typeof value === 'string' ? value : undefined;
}

/** A raw `application/pdf` request body, refused past the limit without reading the rest. */
async function pdfBody(ctx: Context): Promise<Buffer> {
  if (!ctx.is('application/pdf')) throw new AppError(415, 'not_a_pdf', 'Send the signed agreement as Content-Type: application/pdf');
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > MAX_PDF_BYTES) throw new AppError(413, 'pdf_too_large', `The PDF must be at most ${MAX_PDF_BYTES / 1024 / 1024} MiB`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_PDF_BYTES) throw new AppError(413, 'pdf_too_large', `The PDF must be at most ${MAX_PDF_BYTES / 1024 / 1024} MiB`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/**
 * Data use agreements, for researchers (`/api/dua/…`) and administrators
 * (`/api/admin/dua/…`, `/api/admin/institutions/…`). See docs/api.md.
 */
export function agreementRoutes(agreements: AgreementsService): Router {
  const router = new Router();
  router.use(noStore);

  router.get('/api/dua/current', async (ctx) => {
    ctx.body = await agreements.currentVersion();
  });
  router.get('/api/dua/applications', requireAuthenticated(), async (ctx) => {
    ctx.body = { items: await agreements.myApplications(actor(ctx).id) };
  });
  router.post('/api/dua/applications', requireLevel('L1'), async (ctx) => {
    ctx.status = 201;
    ctx.body = await agreements.apply(actor(ctx), ctx.request.body);
  });
  router.get('/api/dua/applications/:id', requireAuthenticated(), async (ctx) => {
    ctx.body = await agreements.applicationFor({ id: actor(ctx).id, isAdmin: isAdmin(ctx) }, id(ctx.params.id, 'application'));
  });
  router.post('/api/dua/applications/:id/withdraw', requireAuthenticated(), async (ctx) => {
    ctx.body = await agreements.withdraw(actor(ctx), id(ctx.params.id, 'application'));
  });
  router.put('/api/dua/applications/:id/signed-pdf', requireAuthenticated(), async (ctx) => {
    ctx.body = await agreements.attachSignedPdf(actor(ctx), id(ctx.params.id, 'application'), await pdfBody(ctx));
  });
  router.get('/api/dua/applications/:id/signed-pdf', requireAuthenticated(), async (ctx) => {
    const file = await agreements.signedPdfFile({ id: actor(ctx).id, isAdmin: isAdmin(ctx) }, id(ctx.params.id, 'application'));
    ctx.type = 'application/pdf';
    ctx.attachment(`dua-application-${ctx.params.id}.pdf`);
    ctx.body = createReadStream(file);
  });
  router.post('/api/dua/accept', requireLevel('L1'), async (ctx) => {
    ctx.body = await agreements.acceptCurrentVersion(actor(ctx));
  });
  router.get('/api/dua/reports', requireAuthenticated(), async (ctx) => {
    ctx.body = { items: await agreements.myReports(actor(ctx).id) };
  });
  router.post('/api/dua/reports', requireAuthenticated(), async (ctx) => {
    ctx.status = 201;
    ctx.body = await agreements.fileReport(actor(ctx), ctx.request.body);
  });

  router.get('/api/admin/dua/versions', requireAdmin, async (ctx) => {
    ctx.body = { items: await agreements.versions() };
  });
  router.post('/api/admin/dua/versions', requireAdmin, async (ctx) => {
    ctx.status = 201;
    ctx.body = await agreements.publishVersion(actor(ctx), ctx.request.body);
  });
  router.get('/api/admin/dua/applications', requireAdmin, async (ctx) => {
    ctx.body = { items: await agreements.listApplications(status(ctx)) };
  });
  for (const decision of ['approve', 'reject'] as const) {
    router.post(`/api/admin/dua/applications/:id/${decision}`, requireAdmin, async (ctx) => {
      ctx.body = await agreements.decide(actor(ctx), id(ctx.params.id, 'application'), decision, ctx.request.body);
    });
    router.post(`/api/admin/dua/reports/:id/${decision}`, requireAdmin, async (ctx) => {
      ctx.body = await agreements.decideReport(actor(ctx), id(ctx.params.id, 'report'), decision, ctx.request.body);
    });
  }
  router.get('/api/admin/dua/reports', requireAdmin, async (ctx) => {
    ctx.body = { items: await agreements.listReports(status(ctx)) };
  });

  router.get('/api/admin/institutions', requireAdmin, async (ctx) => {
    ctx.body = { items: await agreements.institutions() };
  });
  router.post('/api/admin/institutions', requireAdmin, async (ctx) => {
    ctx.status = 201;
    ctx.body = await agreements.createInstitution(actor(ctx), ctx.request.body);
  });
  router.patch('/api/admin/institutions/:id', requireAdmin, async (ctx) => {
    ctx.body = await agreements.setInstitutionValidity(actor(ctx), id(ctx.params.id, 'institution'), ctx.request.body);
  });
  router.put('/api/admin/institutions/:id/members/:userId', requireAdmin, async (ctx) => {
    await agreements.addMember(actor(ctx), id(ctx.params.id, 'institution'), id(ctx.params.userId, 'user'));
    ctx.status = 204;
  });
  router.delete('/api/admin/institutions/:id/members/:userId', requireAdmin, async (ctx) => {
    await agreements.removeMember(actor(ctx), id(ctx.params.id, 'institution'), id(ctx.params.userId, 'user'));
    ctx.status = 204;
  });
  return router;
}
