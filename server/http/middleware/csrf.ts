import type { Context, Middleware } from 'koa';
import { newSecret, sameSecret } from '../../access/secrets.js';
import { AppError } from '../../errors.js';
import { requesterOf } from './permissions.js';
import { sessionOf } from './session.js';

export const CSRF_HEADER = 'X-CSRF-Token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Cross-site request forgery protection for cookie-authenticated writes, in
 * three layers (OWASP CSRF Prevention Cheat Sheet):
 *
 * 1. The session cookie is SameSite=Lax: browsers do not send it on
 *    cross-site POST, PUT, PATCH or DELETE.
 * 2. Fetch metadata and origin: a write whose `Sec-Fetch-Site` is
 *    `cross-site`, or whose `Origin` names another host than this one (or
 *    than `mail.publicUrl`), is refused — whether or not a session is present,
 *    so nobody can be logged into someone else's account from another site.
 * 3. Synchronizer token: a write made with a logged-in session must carry the
 *    session's token in the `X-CSRF-Token` header. Clients get it from
 *    `GET /api/auth/csrf`, and in the answers of login and `GET /api/auth/me`;
 *    it changes at login. Missing or wrong: 403 `csrf_token_invalid`.
 *
 * Requests with `Authorization: Bearer` are exempt: a browser never adds that
 * header to a cross-site request by itself. Request bodies are JSON only (the
 * body parser reads nothing else), which a cross-site form cannot send.
 */
export function csrfProtection({ publicUrl }: { publicUrl: string }): Middleware {
  const publicOrigin = originOf(publicUrl);
  return async (ctx, next) => {
    if (SAFE_METHODS.has(ctx.method)) return next();
    const requester = requesterOf(ctx);
    if (requester.via === 'token') return next();

    if (ctx.get('Sec-Fetch-Site') === 'cross-site') throw crossSite('the browser reports it as cross-site');
    const origin = ctx.get('Origin');
    if (origin !== '') {
      const parsed = originOf(origin);
      if (!parsed || (parsed.hostname !== ctx.hostname && parsed.origin !== publicOrigin?.origin)) {
        throw crossSite(`it comes from ${origin}`);
      }
    }

    if (requester.via === 'session') {
      const expected = sessionOf(ctx)?.csrf;
      const given = ctx.get(CSRF_HEADER);
      if (typeof expected !== 'string' || given === '' || !sameSecret(given, expected)) {
        throw new AppError(403, 'csrf_token_invalid', `Missing or wrong ${CSRF_HEADER} header; get the token from GET /api/auth/csrf`);
      }
    }
    return next();
  };
}

/** The session's CSRF token, made (and the session saved) on first use. */
export function csrfTokenOf(ctx: Context): string {
  const session = sessionOf(ctx);
  if (!session) throw new Error('csrfTokenOf needs the session middleware');
  if (typeof session.csrf !== 'string') session.csrf = newSecret();
  return session.csrf;
}

/** A fresh token, at login. */
export function renewCsrfToken(ctx: Context): string {
  const session = sessionOf(ctx);
  if (!session) throw new Error('renewCsrfToken needs the session middleware');
  session.csrf = newSecret();
  return session.csrf;
}

function originOf(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function crossSite(why: string): AppError {
  return new AppError(403, 'cross_site_request', `Refused: this request may not come from another site (${why})`);
}
