import { constants } from 'node:zlib';
import type { Middleware } from 'koa';
import compress from 'koa-compress';

/** Tiles are JPEG or PNG already, and a slide viewer asks for hundreds a minute: never spend a CPU on their descriptors either. */
const NEVER = /^\/(tiles|iiif)\//;

/**
 * gzip or brotli for what compresses well (JSON, scripts, styles, HTML,
 * SVG, text), by the client's Accept-Encoding. Left alone: images and
 * archives (their types are not compressible), partial answers (Range),
 * anything sent as an attachment (downloads stream as they are, so that
 * their length, digests and resumption hold), tiles, and the portal files
 * that webApp sends pre-compressed (they carry Content-Encoding already).
 *
 * A strong ETag on a compressed answer is made weak, as the encoded bytes
 * are not the ones it names; a weak If-None-Match still matches it.
 */
export function compression(): Middleware {
  const encode = compress({
    threshold: 1024,
    br: { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } },
    gzip: { level: 6 },
    deflate: false,
    zstd: false,
  });
  return async (ctx, next) => {
    await encode(ctx, async () => {
      await next();
      if (NEVER.test(ctx.path) || /^attachment\b/i.test(String(ctx.response.get('Content-Disposition') ?? ''))) ctx.compress = false;
    });
    // (Koa 3's get() answers undefined for a header that is not set.)
    const etag = ctx.response.get('ETag') as string | undefined;
    if (ctx.response.get('Content-Encoding') && etag?.startsWith('"')) ctx.set('ETag', `W/${etag}`);
  };
}
