import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { parseSlideId } from '../../catalog/catalog.service.js';
import type { DownloadRequester, DownloadsService, FileDelivery, ManifestResponse } from '../../downloads/index.js';
import type { FileKind } from '../../downloads/manifest.js';
import { deliverBundle, retryAfter, settleWhenDone } from '../deliver.js';
import type { ErrorBody } from '../middleware/error-handler.js';

export interface DownloadGuards {
  /** Lets through only requesters who may download (L2 or L3; staff roles do not count): `requireLevel('L2')`. */
  requireDownloader: Middleware;
}

/**
 * Downloads (DESIGN.md "Interfaces"), every route behind `requireDownloader`:
 *
 * - `GET|HEAD /api/slides/:id/files/slide` and `/files/annotation`: one file,
 *   with Range/If-Range (see downloads/range.ts), or an X-Accel-Redirect to
 *   nginx when `downloads.nginxAccelRedirect` is set;
 * - `POST /api/downloads` `{"slides": [ids]}` or `{"filter": "expr"}`: a ZIP;
 * - `GET /api/downloads/manifest?slides=…|filter=…|organ=…&format=json|tsv`.
 */
export function downloadRoutes(downloads: DownloadsService, { requireDownloader }: DownloadGuards): Router {
  const router = new Router();
  router.use(retryAfter);
  for (const kind of ['slide', 'annotation'] as const) {
    router.get(`/api/slides/:id/files/${kind}`, requireDownloader, async (ctx) => {
      deliverFile(ctx, await downloads.file(requester(ctx), parseSlideId(ctx.params.id), kind satisfies FileKind, fileRequest(ctx)));
    });
  }
  router.post('/api/downloads', requireDownloader, async (ctx) => {
    deliverBundle(ctx, await downloads.bundle(requester(ctx), ctx.request.body, origin(ctx)));
  });
  router.get('/api/downloads/manifest', requireDownloader, async (ctx) => {
    sendManifest(ctx, await downloads.manifest(ctx.query, origin(ctx)));
  });
  return router;
}

/** Who is asking, as the accounts middleware resolved it (`ctx.state.requester`); the guard has already let them through. */
function requester(ctx: Context): DownloadRequester {
  const found = (ctx.state as { requester?: { user?: { id?: unknown } | null } }).requester;
  const id = found?.user?.id;
  return { userId: typeof id === 'number' ? id : null, ip: ctx.ip || null };
}

/** This server as the client reached it (behind a proxy: as the proxy says, when http.trustProxy is on). */
function origin(ctx: Context): string {
  return `${ctx.protocol}://${ctx.host}`;
}

function fileRequest(ctx: Context) {
  const range = ctx.get('Range');
  const ifRange = ctx.get('If-Range');
  return { method: ctx.method, ...(range ? { range } : {}), ...(ifRange ? { ifRange } : {}) };
}

function deliverFile(ctx: Context, delivery: FileDelivery): void {
  ctx.status = delivery.status;
  ctx.set(delivery.headers);
  if (delivery.problem) {
    const body: ErrorBody = { error: { ...delivery.problem, requestId: ctx.requestId } };
    ctx.body = body;
  } else if (delivery.body) {
    ctx.body = delivery.body;
  } else if (ctx.method === 'GET') {
    // nginx offload: the bytes come from nginx, this response carries only the headers.
    ctx.body = '';
  }
  // HEAD: Koa sends the headers (Content-Length included) and no body.
  settleWhenDone(ctx, delivery.settle);
}

function sendManifest(ctx: Context, manifest: ManifestResponse): void {
  ctx.set('Cache-Control', 'private, no-store');
  if (manifest.format === 'tsv') {
    ctx.type = 'text/tab-separated-values; charset=utf-8';
    ctx.set('Content-Disposition', 'inline; filename="manifest.tsv"');
  }
  ctx.body = manifest.body;
}
