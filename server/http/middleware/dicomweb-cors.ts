import type { Middleware } from 'koa';

/**
 * CORS for DICOMweb (/dicomweb/), so that a browser viewer served from
 * another origin can search and fetch frames: only for the origins in
 * dicom.corsOrigins (none by default; `*` for any, then without cookies).
 * Preflight requests are answered here, before authentication asks for
 * credentials a preflight never carries. Everything else under /dicomweb/
 * goes on to the routes and their access checks as usual.
 */
export function dicomwebCors(origins: readonly string[]): Middleware {
  const any = origins.includes('*');
  const allowed = new Set(origins);
  return async (ctx, next) => {
    if (origins.length === 0 || !(ctx.path === '/dicomweb' || ctx.path.startsWith('/dicomweb/'))) return next();
    ctx.vary('Origin');
    const origin = ctx.get('Origin');
    if (origin && (any || allowed.has(origin))) {
      ctx.set('Access-Control-Allow-Origin', any ? '*' : origin);
      if (!any) ctx.set('Access-Control-Allow-Credentials', 'true');
      ctx.set('Access-Control-Expose-Headers', 'Content-Type, Content-Length, ETag, Warning');
      ctx.set('Cross-Origin-Resource-Policy', 'cross-origin');
      if (ctx.method === 'OPTIONS' && ctx.get('Access-Control-Request-Method')) {
        ctx.set('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
        ctx.set('Access-Control-Allow-Headers', 'Authorization, Accept, Content-Type');
        ctx.set('Access-Control-Max-Age', '600');
        ctx.status = 204;
        return;
      }
    }
    await next();
  };
}
