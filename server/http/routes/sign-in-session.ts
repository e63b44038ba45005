import type { Context } from 'koa';
import type { SignInServices } from '../../access/directory/index.js';
import type { PendingLink } from '../../access/directory/external-accounts.service.js';
import type { PendingSignIn } from '../../access/oidc/oidc-providers.js';
import { AppError } from '../../errors.js';
import { actorOf } from '../actor.js';
import type { VerifyLogin } from '../middleware/authenticate.js';
import { sessionOf } from '../middleware/session.js';

/**
 * What hospital sign-in keeps between requests. A single sign-on that has
 * started travels in a signed, httpOnly cookie of its own (state, nonce, PKCE
 * verifier, the page to return to; no provider token), so that an anonymous
 * visitor's click stores nothing on the server. A proven identity waiting
 * for the local password that links it, and the provider's ID token of a
 * single sign-on session (for logging out at the provider), live in the
 * session, in the database: never in the browser.
 */

export const PENDING_SIGN_IN_COOKIE = 'slidebank.oidc';

export function cookieOptions(ctx: Context, signIn: SignInServices) {
  const { secureCookies } = signIn.settings;
  return { httpOnly: true, sameSite: 'lax', secure: secureCookies === 'auto' ? ctx.secure : secureCookies, signed: true, overwrite: true, path: '/api/auth/oidc/' } as const;
}

export function rememberSignIn(ctx: Context, signIn: SignInServices, pending: PendingSignIn): void {
  const value = Buffer.from(JSON.stringify(pending), 'utf8').toString('base64url');
  ctx.cookies.set(PENDING_SIGN_IN_COOKIE, value, { ...cookieOptions(ctx, signIn), maxAge: pending.expiresAt - Date.now() });
}

/** The started sign-in, once: the cookie is cleared as it is read. Undefined when it is missing or its signature is wrong. */
export function takeSignIn(ctx: Context, signIn: SignInServices): PendingSignIn | undefined {
  const value = ctx.cookies.get(PENDING_SIGN_IN_COOKIE, { signed: true });
  ctx.cookies.set(PENDING_SIGN_IN_COOKIE, null, cookieOptions(ctx, signIn));
  if (!value) return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64url').toString('utf8')) as Partial<PendingSignIn>;
    const fields = [parsed.provider, parsed.state, parsed.nonce, parsed.codeVerifier, parsed.returnTo];
    if (fields.some((field) => typeof field !== 'string') || typeof parsed.expiresAt !== 'number') return undefined;
    return parsed as PendingSignIn;
  } catch {
    return undefined;
  }
}

/** The single sign-on this session came from, for logging out at the provider. */
export interface SsoSession {
  provider: string;
  idToken: string;
}

export function rememberSso(ctx: Context, sso: SsoSession): void {
  const session = sessionOf(ctx);
  if (session) session.sso = sso;
}

export function ssoOf(ctx: Context): SsoSession | undefined {
  const value = sessionOf(ctx)?.sso as Partial<SsoSession> | undefined;
  return typeof value?.provider === 'string' && typeof value.idToken === 'string' ? (value as SsoSession) : undefined;
}

export function rememberLink(ctx: Context, pending: PendingLink): void {
  const session = sessionOf(ctx);
  if (!session) throw new Error('no session to keep the pending link in');
  session.pendingLink = pending;
}

export function pendingLinkOf(ctx: Context): PendingLink | undefined {
  const value = sessionOf(ctx)?.pendingLink as PendingLink | undefined;
  return value && typeof value.userId === 'number' && typeof value.email === 'string' && typeof value.expiresAt === 'number' ? value : undefined;
}

export function forgetLink(ctx: Context): void {
  const session = sessionOf(ctx);
  if (session) delete session.pendingLink;
}

/** The message of a sign-in whose address has a local account already. */
export function linkRequired(pending: PendingLink): AppError {
  return new AppError(409, 'link_required', `${pending.email} has a Slidebank account already. Enter its Slidebank password once to link it with your hospital sign-in.`, {
    details: { email: pending.email, source: pending.identity.source },
  });
}

/** The login form's check (passport-local's verify step): the directory or the local password; an address with a local account waits for the link to be confirmed. */
export function signInVerifier(signIn: SignInServices): VerifyLogin {
  return async (credentials, ctx) => {
    const result = await signIn.password.login(credentials, actorOf(ctx));
    if (result.status === 'ok') return result.user;
    rememberLink(ctx, result.pending);
    throw linkRequired(result.pending);
  };
}

/** A page of the portal to return to after signing in: a path on this site, never another site's address. */
export function safeReturnPath(value: string | undefined): string {
  if (!value || !value.startsWith('/') || value.startsWith('//') || value.startsWith('/\\') || /[\s\p{Cc}]/u.test(value)) return '/';
  return value.slice(0, 500);
}
