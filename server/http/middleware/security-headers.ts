import helmet from 'koa-helmet';
import type { Middleware } from 'koa';

/**
 * Conservative headers for an intranet appliance: nothing from other origins,
 * no framing. Inline styles are allowed because Leaflet positions tiles with
 * them; images may come from data: and blob: URLs (thumbnails, canvases).
 */
export function securityHeaders(): Middleware {
  return helmet({
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
  }) as Middleware;
}
