import { createHmac } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { newSecret, sameSecret } from '../../access/secrets.js';
import { AppError } from '../../errors.js';
import { requesterOf } from '../requester.js';
import { sessionOf } from './session.js';

export const CSRF_HEADER = 'X-CSRF-Token';
/** The cookie that carries an anonymous visitor's signed token (httpOnly: clients read the token from `GET /api/auth/csrf`). */
export const CSRF_COOKIE = 'slidebank.csrf';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CsrfSettings {
  /** `mail.publicUrl`: writes from its origin are same-site as well. */
  publicUrl: string;
  /** The session keys: the first signs anonymous tokens, every one verifies them (so all nodes that share the keys accept them). */
  keys: string[];
  /** How long an anonymous token works. */
  maxAgeMs: number;
  /** As for the session cookie: auto is Secure on HTTPS requests. */
  secureCookies: 'auto' | boolean;
}

export interface Csrf {
  /** App-level, after authentication: the origin checks on every write without a bearer token, and the session's token on writes made with a session. */
  protect: Middleware;
  /** On routes that anonymous visitors write to (login, registration, mailed links): such a write must carry the signed token of its own cookie. */
  requireForAnonymous: Middleware;
  /** The token this requester sends back in X-CSRF-Token: the session's own, or for an anonymous visitor a signed one (its cookie set on the answer). */
  tokenFor(ctx: Context): string;
  /** At login: a new session token; the anonymous one is dropped. */
  renew(ctx: Context): string;
}

/**
 * Cross-site request forgery protection for writes made by browsers, in
 * three layers (OWASP CSRF Prevention Cheat Sheet):
 *
 * 1. The session cookie is SameSite=Lax: browsers do not send it on
 *    cross-site POST, PUT, PATCH or DELETE.
 * 2. Fetch metadata and origin: a write whose `Sec-Fetch-Site` is
 *    `cross-site`, or whose `Origin` is not this server's own origin (scheme,
 *    host and port) or that of `mail.publicUrl`, is refused — whether or not
 *    a session is present, so nobody can be logged into someone else's
 *    account from another site.
 * 3. Tokens in the `X-CSRF-Token` header. A write made with a logged-in
 *    session must carry the session's synchronizer token, kept in the
 *    session row the login made anyway; it changes at login. An anonymous
 *    write to the account routes must carry a signed double-submit token: a
 *    random value and an expiry with an HMAC under the session keys, in an
 *    httpOnly SameSite=Strict cookie and echoed in the header. It needs no
 *    row, so handing one to every visitor costs nothing that lasts. Clients
 *    get either from `GET /api/auth/csrf` (and the session's from login and
 *    `GET /api/auth/me`). Missing or wrong: 403 `csrf_token_invalid`.
 *
 * Requests with `Authorization: Bearer` are exempt: a browser never adds that
 * header to a cross-site request by itself. Request bodies are JSON only (the
 * body parser reads nothing else), which a cross-site form cannot send.
 */
export function createCsrf(settings: CsrfSettings): Csrf {
  const publicOrigin = originOf(settings.publicUrl)?.origin;
  const signer = new AnonymousTokens(settings.keys, settings.maxAgeMs);
  // The value is the token itself, so the cookie carries no second signature cookie.
  const cookieOptions = (ctx: Context) =>
    ({ httpOnly: true, sameSite: 'strict', secure: settings.secureCookies === 'auto' ? ctx.secure : settings.secureCookies, overwrite: true, signed: false }) as const;

  const protect: Middleware = async (ctx, next) => {
    if (SAFE_METHODS.has(ctx.method)) return next();
    const requester = requesterOf(ctx);
    if (requester.via === 'token') return next();

    if (ctx.get('Sec-Fetch-Site') === 'cross-site') throw crossSite('the browser reports it as cross-site');
    const origin = ctx.get('Origin');
    if (origin !== '') {
      const given = originOf(origin)?.origin;
      const own = originOf(`${ctx.protocol}://${ctx.host}`)?.origin;
      if (given === undefined || (given !== own && given !== publicOrigin)) throw crossSite(`it comes from ${origin}`);
    }

    if (requester.via === 'session') {
      const expected = sessionOf(ctx)?.csrf;
      const given = ctx.get(CSRF_HEADER);
      if (typeof expected !== 'string' || given === '' || !sameSecret(given, expected)) throw tokenInvalid();
    }
    return next();
  };

  const requireForAnonymous: Middleware = async (ctx, next) => {
    if (SAFE_METHODS.has(ctx.method) || requesterOf(ctx).via !== 'anonymous') return next();
    const given = ctx.get(CSRF_HEADER);
    const cookie = ctx.cookies.get(CSRF_COOKIE, { signed: false }) ?? '';
    if (given === '' || !sameSecret(given, cookie) || !signer.valid(cookie, Date.now())) throw tokenInvalid();
    return next();
  };

  const tokenFor = (ctx: Context): string => {
    if (requesterOf(ctx).via === 'session') return sessionToken(ctx, false);
    const current = ctx.cookies.get(CSRF_COOKIE, { signed: false });
    if (current && signer.valid(current, Date.now() + settings.maxAgeMs / 2)) return current;
    const token = signer.issue(Date.now());
    ctx.cookies.set(CSRF_COOKIE, token, { ...cookieOptions(ctx), maxAge: settings.maxAgeMs });
    return token;
  };

  const renew = (ctx: Context): string => {
    if (ctx.cookies.get(CSRF_COOKIE, { signed: false }) !== undefined) ctx.cookies.set(CSRF_COOKIE, null, cookieOptions(ctx));
    return sessionToken(ctx, true);
  };

  return { protect, requireForAnonymous, tokenFor, renew };
}

/** The session's synchronizer token, made (and so the session saved) on first use, or anew. */
function sessionToken(ctx: Context, fresh: boolean): string {
  const session = sessionOf(ctx);
  if (!session) throw new Error('CSRF tokens of sessions need the session middleware');
  if (fresh || typeof session.csrf !== 'string') session.csrf = newSecret();
  return session.csrf;
}

/** `<random>.<expiry in seconds>.<HMAC-SHA256 of both>`, verifiable by every node that has the keys. */
class AnonymousTokens {
  private readonly macKeys: Buffer[];

  constructor(
    keys: string[],
    private readonly lifetimeMs: number,
  ) {
    if (keys.length === 0) throw new Error('anonymous CSRF tokens need at least one session key');
    // A key of its own for this use, derived from each session key.
    this.macKeys = keys.map((key) => createHmac('sha256', key).update('slidebank csrf token').digest());
  }

  issue(now: number): string {
    const body = `${newSecret()}.${Math.floor((now + this.lifetimeMs) / 1000)}`;
    return `${body}.${mac(this.macKeys[0]!, body)}`;
  }

  /** Signed by one of the keys, and still valid at `at`. */
  valid(token: string, at: number): boolean {
    const parts = token.split('.');
    if (parts.length !== 3 || !/^\d{1,12}$/.test(parts[1]!)) return false;
    if (Number(parts[1]) * 1000 <= at) return false;
    const body = `${parts[0]}.${parts[1]}`;
    return this.macKeys.some((key) => sameSecret(mac(key, body), parts[2]!));
  }
}

function mac(key: Buffer, body: string): string {
  return createHmac('sha256', key).update(body).digest('base64url');
}

function originOf(text: string): URL | undefined {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url : undefined;
  } catch {
    return undefined;
  }
}

function tokenInvalid(): AppError {
  return new AppError(403, 'csrf_token_invalid', `Missing or wrong ${CSRF_HEADER} header; get the token from GET /api/auth/csrf`);
}

function crossSite(why: string): AppError {
  return new AppError(403, 'cross_site_request', `Refused: this request may not come from another site (${why})`);
}
