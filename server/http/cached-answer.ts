import type { Context } from 'koa';

/**
 * Answers for what a browser keeps (tiles, descriptors, images, thumbnails):
 * a strong ETag, and a 304 without a body when the request's If-None-Match
 * names it. Cache-Control is the route's (`before: [cacheControl(...)]`).
 */

/** Whether If-None-Match names this ETag; the comparison is weak (`W/"x"` matches `"x"`), as RFC 9110 asks. */
export function notModified(ctx: Context, etag: string): boolean {
  const match = ctx.get('If-None-Match');
  if (!match || !match.split(/\s*,\s*/).some((tag) => tag === '*' || tag.replace(/^W\//, '') === etag)) return false;
  ctx.status = 304;
  ctx.set('ETag', etag);
  return true;
}

export interface CachedBody {
  etag: string;
  contentType: string;
  /** The bytes, or a stream opened only when the body is sent. */
  body: Buffer | (() => NodeJS.ReadableStream);
  /** For a stream, its length in bytes. */
  length?: number;
  /** Extra headers (X-Tile-Source). */
  headers?: Record<string, string>;
}

/** The body with its ETag, or a 304 when the client's copy is current. */
export function sendCached(ctx: Context, answer: CachedBody): void {
  if (notModified(ctx, answer.etag)) return;
  ctx.set('ETag', answer.etag);
  for (const [name, value] of Object.entries(answer.headers ?? {})) ctx.set(name, value);
  ctx.type = answer.contentType;
  if (answer.length !== undefined) ctx.length = answer.length;
  ctx.body = typeof answer.body === 'function' ? answer.body() : answer.body;
}
