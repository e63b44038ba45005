import type { Context, Middleware } from 'koa';
import helmet from 'koa-helmet';

type Header = [name: string, value: string | number | readonly string[]];

/**
 * Conservative headers for an intranet appliance: nothing from other origins,
 * no framing. Inline styles are allowed because Leaflet positions tiles with
 * them; images may come from data: and blob: URLs (thumbnails, canvases).
 *
 * Helmet's headers do not depend on the request, so they are worked out once
 * (helmet run on a stand-in response) and set as they are on every answer,
 * tiles included: helmet itself, per request, was a noticeable share of a
 * warm tile's main-thread time.
 */
export function securityHeaders(): Middleware {
  const helmetMiddleware = helmet(HELMET_OPTIONS) as Middleware;
  let headers: Header[] | undefined;
  return async (ctx, next) => {
    headers ??= await headersOf(helmetMiddleware);
    for (const [name, value] of headers) ctx.res.setHeader(name, value);
    ctx.res.removeHeader('X-Powered-By');
    await next();
  };
}

/** The headers a helmet middleware sets, recorded from a stand-in response. */
async function headersOf(middleware: Middleware): Promise<Header[]> {
  const headers: Header[] = [];
  const res = {
    setHeader(name: string, value: Header[1]) {
      headers.push([name, value]);
      return res;
    },
    removeHeader() {},
  };
  await middleware({ req: {}, res } as unknown as Context, async () => undefined);
  return headers;
}

const HELMET_OPTIONS: Parameters<typeof helmet>[0] = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'", "'unsafe-inline'"],
      imgSrc: ["'self'", 'data:', 'blob:'],
      connectSrc: ["'self'"],
      fontSrc: ["'self'"],
      objectSrc: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'self'"],
      formAction: ["'self'"],
    },
  },
  crossOriginEmbedderPolicy: false,
  frameguard: { action: 'deny' },
  referrerPolicy: { policy: 'same-origin' },
};
