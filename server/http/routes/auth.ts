import type { Middleware } from 'koa';
import { z } from 'zod';
import { accepted, accountView, meView } from '../../access/views.js';
import { publicAccess } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import { credentials, emailOnly, linkOnly, passwordResetConfirmation, registration } from '../schemas/accounts.js';

/**
 * Registration, confirmation, login and logout, password reset, who is
 * logged in: open to everyone (L0). Anonymous writes here carry the signed
 * CSRF token of `GET /csrf` (X-CSRF-Token); answers are never cached, and a
 * 429 or 503 says in Retry-After when to come back.
 */

/** Anonymous writes to these routes must carry the signed token of their own CSRF cookie. */
const anonymousCsrf: Middleware = (ctx, next) => ctx.services.access.csrf.requireForAnonymous(ctx, next);
const before = [noStore, retryAfter, anonymousCsrf];

const tag = 'Accounts';
const ANSWERED_ALIKE = 'The answer is the same whether or not the address has an account; what depends on it (the look-up, the mail) happens after the answer.';

export const authRoutes = [
  route({
    method: 'get',
    path: '/api/auth/csrf',
    tag,
    summary: 'The token to send in X-CSRF-Token with writes made from a browser',
    description:
      'For a logged-in session, the session\'s own token. For an anonymous visitor, a signed token that is also set in an httpOnly, SameSite=Strict cookie (slidebank.csrf); it works for auth.sessionHours and is renewed once half of that has passed; it stores nothing on the server.',
    access: publicAccess,
    before,
    response: { description: 'The token', schema: z.object({ csrfToken: z.string() }).meta({ id: 'CsrfToken' }) },
    handle: (_input, ctx) => ({ csrfToken: ctx.services.access.csrf.tokenFor(ctx) }),
  }),
  route({
    method: 'post',
    path: '/api/auth/register',
    tag,
    summary: 'Register an account; a confirmation link is mailed to the address',
    description: `${ANSWERED_ALIKE} The password must satisfy the password policy (400 weak_password). Limited per client address (429 too_many_requests). An address that has an account already gets a mail saying so (or, unconfirmed, a new confirmation link) instead of a second account.`,
    access: publicAccess,
    body: registration,
    before,
    response: { status: 202, description: 'Accepted; a mail is on its way', schema: accepted },
    handle: ({ body }, ctx) => ctx.services.access.accounts.register(body, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/auth/confirm',
    tag,
    summary: 'Confirm the e-mail address with the code of the mailed link; the account becomes L1',
    description: `A link works once, for auth.confirmationHours: an unknown code is 400 link_invalid, a used or expired one 410 link_used or link_expired.`,
    access: publicAccess,
    body: linkOnly,
    before,
    response: { description: 'The account, now confirmed', schema: accountView },
    handle: ({ body }, ctx) => ctx.services.access.accounts.confirmEmail(body.token, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/auth/confirm/resend',
    tag,
    summary: 'Mail a new confirmation link to an account waiting for confirmation',
    description: `${ANSWERED_ALIKE} A link goes out only to an account still waiting for confirmation. Limited per client address (429 too_many_requests).`,
    access: publicAccess,
    body: emailOnly,
    before,
    response: { status: 202, description: 'Accepted', schema: accepted },
    handle: ({ body }, ctx) => ctx.services.access.accounts.resendConfirmation(body.email, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/auth/login',
    tag,
    summary: 'Log in with e-mail address and password: a new session cookie, and who is logged in',
    description:
      'A wrong password and an unknown address are the same 401 invalid_credentials. Each attempt is counted before its password is checked: past auth.lockout.maxFailures for the address typed, or auth.lockout.maxFailuresPerAddress for the client address, within auth.lockout.minutes, the answer is 429 too_many_attempts with Retry-After, and the failure that used the last attempt locks for auth.lockout.minutes. A disabled or unconfirmed account is a 403 (account_disabled, email_unconfirmed) once the password is right. The session cookie is httpOnly, SameSite=Lax and Secure as http.secureCookies says. With a directory configured (auth.ldap), addresses in auth.ldap.domains, directory accounts and addresses without a local account are checked against the directory (docs/sign-in.md): 503 directory_unavailable when it cannot be reached (local accounts still log in), 409 link_required when the address has a local account to link first (POST /api/auth/sign-in/link), 403 no_email for a directory entry without an address, 403 local_login_disabled for a directory or single sign-on account whose local password an administrator turned off.',
    access: publicAccess,
    body: credentials,
    before,
    response: { description: 'Logged in; the session cookie is set and the answer carries the session\'s CSRF token', schema: meView },
    handle: ({ body }, ctx) => ctx.services.access.authentication.login(ctx, body),
  }),
  route({
    method: 'post',
    path: '/api/auth/logout',
    tag,
    summary: 'Log out: the session ends and its cookie is cleared',
    access: publicAccess,
    before,
    response: { status: 204, description: 'Logged out (also when nobody was logged in)' },
    handle: async (_input, ctx) => {
      await ctx.services.access.authentication.logout(ctx);
    },
  }),
  route({
    method: 'get',
    path: '/api/auth/me',
    tag,
    summary: 'Who is logged in: the account, its level in force, and whether by session or token; null for nobody',
    description:
      'Nobody logged in (no session, or one that ended) is a 200 with the JSON `null`, so that a page asking who is there meets no error. A bad, expired or revoked bearer token is still a 401.',
    access: publicAccess,
    before,
    response: { description: 'The account (a session also gets its CSRF token), or null', schema: meView.nullable() },
    handle: async (_input, ctx) => {
      if (requesterOf(ctx).user) return ctx.services.access.authentication.me(ctx);
      // Koa would turn a null body into a 204: the JSON text is set instead.
      ctx.type = 'application/json';
      ctx.body = 'null';
      return undefined;
    },
  }),
  route({
    method: 'post',
    path: '/api/auth/password-reset',
    tag,
    summary: 'Mail a link to choose a new password (valid for auth.resetMinutes)',
    description: `${ANSWERED_ALIKE} Limited per client address (429 too_many_requests). The link works once.`,
    access: publicAccess,
    body: emailOnly,
    before,
    response: { status: 202, description: 'Accepted', schema: accepted },
    handle: ({ body }, ctx) => ctx.services.access.accounts.requestPasswordReset(body.email, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/auth/password-reset/confirm',
    tag,
    summary: 'Set a new password with the code of the mailed link; every session ends and every access token is revoked',
    description: 'An unknown code is 400 link_invalid, a used or expired one 410 link_used or link_expired; a password the policy refuses (400 weak_password) leaves the link usable.',
    access: publicAccess,
    body: passwordResetConfirmation,
    before,
    response: { status: 204, description: 'The password is changed; the owner is sent a notice' },
    handle: async ({ body }, ctx) => {
      await ctx.services.access.accounts.resetPassword(body, actorOf(ctx));
    },
  }),
];
