import type { Context } from 'koa';
import type { BundleDelivery, FileAnswer, FileFacts, FileKind, Settle } from '../downloads/index.js';
import { contentRange, etagFor, unsatisfiedRange } from '../downloads/range.js';
import { attachment, digestHeaders, DOWNLOAD_CACHE_CONTROL } from './download-headers.js';
import type { ErrorBody } from './middleware/error-handler.js';

/**
 * Downloads as HTTP: the services decide what is sent (which bytes of which
 * file, under which name, with which checksum); these functions write that
 * as a status, headers and a body, and tell the service when it is over.
 */

const MEDIA_TYPES: Record<FileKind, string> = {
  // SVS is TIFF inside, but no viewer should try to open a multi-gigabyte pyramid inline.
  slide: 'application/octet-stream',
  annotation: 'application/xml',
};

/** One file: 200 whole, 206 a range, 416 a range it does not have (with the error body), or 200 handed to nginx. */
export function sendFile(ctx: Context, answer: FileAnswer): void {
  const { file } = answer;
  if (answer.kind === 'unsatisfiable') {
    ctx.status = 416;
    ctx.set({ 'Accept-Ranges': 'bytes', 'Content-Range': unsatisfiedRange(file.size), 'Cache-Control': DOWNLOAD_CACHE_CONTROL });
    const body: ErrorBody = { error: { code: 'range_not_satisfiable', message: answer.message, requestId: ctx.requestId } };
    ctx.body = body;
    return;
  }
  ctx.set(fileHeaders(file));
  if (answer.kind === 'offload') {
    // nginx sends the bytes (and answers the Range itself): this response carries only the headers.
    ctx.status = 200;
    ctx.set('X-Accel-Redirect', answer.uri);
    ctx.body = '';
    return;
  }
  const { range } = answer;
  ctx.status = range ? 206 : 200;
  ctx.set('Content-Length', String(range ? range.end - range.start + 1 : file.size));
  if (range) ctx.set('Content-Range', contentRange(range.start, range.end, file.size));
  // HEAD: no body; Koa sends the headers, Content-Length included.
  if (answer.body) {
    ctx.body = answer.body.stream;
    settleWhenDone(ctx, answer.body.settle);
  }
}

/** The headers every answer with a file's bytes carries: what it is, what to save it as, its validators and checksums. */
function fileHeaders(file: FileFacts): Record<string, string> {
  return {
    'Accept-Ranges': 'bytes',
    'Content-Type': MEDIA_TYPES[file.kind],
    'Content-Disposition': attachment(file.name),
    'Cache-Control': DOWNLOAD_CACHE_CONTROL,
    'Last-Modified': file.lastModified.toUTCString(),
    ...(file.sha256 ? { ETag: etagFor(file.sha256), ...digestHeaders(file.sha256) } : {}),
  };
}

/** Stream a generated ZIP archive (a download bundle, a bag); when the response ends the service learns how. */
export function deliverBundle(ctx: Context, delivery: BundleDelivery): void {
  ctx.status = 200;
  ctx.set({ 'Content-Type': 'application/zip', 'Content-Disposition': attachment(delivery.fileName), 'Cache-Control': DOWNLOAD_CACHE_CONTROL });
  ctx.body = delivery.body;
  settleWhenDone(ctx, delivery.settle);
}

/** Tell the service how the response ended: every byte handed to the connection, or cut off by the client or an error. */
export function settleWhenDone(ctx: Context, settle: Settle): void {
  const { res } = ctx;
  const done = () => {
    settle(res.writableFinished).catch((error: unknown) => ctx.log.error({ err: error }, 'download: settling the delivery failed'));
  };
  if (res.closed) done();
  else res.once('close', done);
}
