import type { Middleware } from 'koa';
import { z } from 'zod';
import { sourceLabel } from '../../access/directory/index.js';
import { adminUserView, adminUserViewOf, meView } from '../../access/views.js';
import { AppError } from '../../errors.js';
import { adminOnly, publicAccess } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { idParam, textQuery } from '../params.js';
import { route } from '../route.js';
import { forgetLink, pendingLinkOf, rememberLink, rememberSignIn, rememberSso, safeReturnPath, ssoOf, takeSignIn } from './sign-in-session.js';

/**
 * Hospital sign-in: what the login page offers, single sign-on through
 * OpenID Connect (start, the provider's answer, logging out at the provider),
 * linking a directory or single sign-on identity with the local account of
 * the same address, and what administrators see of it. The login form itself
 * is `POST /api/auth/login`, which asks the directory where configured.
 */

const anonymousCsrf: Middleware = (ctx, next) => ctx.services.access.csrf.requireForAnonymous(ctx, next);
const before = [noStore, retryAfter];
const tag = 'Accounts';

const providerParam = z.strictObject({
  provider: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,39}$/, 'provider must name a single sign-on provider')
    .meta({ description: 'The provider’s name in auth.oidc.providers', 'x-not-found': 'provider_not_found' }),
});

const signInOptions = z
  .object({
    directory: z.object({
      enabled: z.boolean().meta({ description: 'The login form also checks the hospital directory (LDAP, Active Directory)' }),
      domains: z.array(z.string()).meta({ description: 'Mail domains whose addresses log in through the directory' }),
    }),
    providers: z.array(
      z.object({
        name: z.string(),
        label: z.string().meta({ description: 'The text of the button' }),
        startUrl: z.string().meta({ description: 'Where the button leads (GET, a redirect to the provider)' }),
      }),
    ),
  })
  .meta({ id: 'SignInOptions' });

const pendingLinkView = z
  .object({ email: z.string(), source: z.string(), sourceLabel: z.string(), expiresAt: z.number().int().meta({ description: 'Milliseconds since 1970' }) })
  .nullable()
  .meta({ id: 'PendingLink' });

const groupsView = z.object({ admin: z.array(z.string()), curator: z.array(z.string()), pathologist: z.array(z.string()) });
const institutionsView = z.array(z.object({ institution: z.string(), groups: z.array(z.string()) }));
const signInOverview = z
  .object({
    directory: z
      .object({
        url: z.string(),
        security: z.enum(['ldaps', 'starttls', 'plain']),
        caFile: z.string(),
        bindDn: z.string(),
        userSearchBase: z.string(),
        userFilter: z.string(),
        emailAttribute: z.string(),
        nameAttribute: z.string(),
        groupSearchBase: z.string(),
        nestedGroups: z.string(),
        timeoutSeconds: z.number(),
        domains: z.array(z.string()),
        roleGroups: groupsView,
        institutionGroups: institutionsView,
      })
      .nullable()
      .meta({ description: 'auth.ldap in effect (its password never shown); null when directory login is off' }),
    providers: z.array(
      z.object({
        name: z.string(),
        label: z.string(),
        issuer: z.string(),
        clientId: z.string(),
        redirectUri: z.string().meta({ description: 'The address to register with the provider' }),
        scopes: z.array(z.string()),
        groupsClaim: z.string(),
        roleGroups: groupsView,
        institutionGroups: institutionsView,
      }),
    ),
    accounts: z.array(z.object({ source: z.string(), count: z.number().int() })).meta({ description: 'How many accounts come from each source' }),
  })
  .meta({ id: 'SignInOverview' });

export const signInRoutes = [
  route({
    method: 'get',
    path: '/api/auth/sign-in/options',
    tag,
    summary: 'How one can log in here: the directory (with its mail domains) and the single sign-on providers',
    access: publicAccess,
    before,
    response: { description: 'The sign-in options', schema: signInOptions },
    handle: (_input, ctx) => {
      const { directory, oidc } = ctx.services.access.signIn;
      return {
        directory: { enabled: directory !== undefined, domains: [...(directory?.settings.domains ?? [])] },
        providers: oidc.list().map((provider) => ({ ...provider, startUrl: `/api/auth/oidc/${provider.name}/start` })),
      };
    },
  }),
  route({
    method: 'get',
    path: '/api/auth/oidc/{provider}/start',
    tag,
    summary: 'Start single sign-on: a redirect to the provider (authorization code flow with PKCE)',
    description:
      'The state, nonce and PKCE verifier travel in a signed, httpOnly cookie for ten minutes; nothing is stored on the server. 503 provider_unavailable when the provider cannot be reached.',
    access: publicAccess,
    params: providerParam,
    query: z.object({ returnTo: textQuery('returnTo', 500).meta({ description: 'The portal page to open afterwards (a path on this site)' }) }),
    before,
    response: { status: 302, description: 'To the provider' },
    handle: async ({ params, query }, ctx) => {
      const { signIn } = ctx.services.access;
      const { url, pending } = await signIn.oidc.start(params.provider, safeReturnPath(query.returnTo), new Date());
      rememberSignIn(ctx, signIn, pending);
      ctx.status = 302;
      ctx.redirect(url);
    },
  }),
  route({
    method: 'get',
    path: '/api/auth/oidc/{provider}/callback',
    tag,
    summary: 'The provider’s answer: checked (state, PKCE, issuer, audience, nonce, signature, expiry), then logged in',
    description:
      'A new session is started and the browser sent to the page the sign-in began on. A refused answer, an address of another source or an account that is disabled sends the browser to the login page with `signInError=<code>`; an address that has a local account already sends it there with `link=1` to confirm the link with the local password.',
    access: publicAccess,
    params: providerParam,
    query: z.object({}).catchall(z.unknown()),
    before,
    response: { status: 302, description: 'To the portal' },
    handle: async ({ params }, ctx) => {
      const { signIn, authentication } = ctx.services.access;
      const pending = takeSignIn(ctx, signIn);
      const actor = actorOf(ctx);
      const toLogin = (query: string) => {
        ctx.status = 302;
        ctx.redirect(`/account/login?${query}`);
      };
      try {
        const callbackUrl = new URL(`${signIn.oidc.redirectUri(params.provider)}?${ctx.querystring}`);
        const finished = await signIn.oidc.finish(params.provider, callbackUrl, pending, new Date());
        const result = await signIn.external.signIn(finished.identity, actor);
        if (result.status === 'link_required') {
          rememberLink(ctx, result.pending);
          toLogin(`link=1&returnTo=${encodeURIComponent(pending?.returnTo ?? '/')}`);
          return;
        }
        await authentication.loginAs(ctx, result.user);
        rememberSso(ctx, { provider: params.provider, idToken: finished.idToken });
        ctx.status = 302;
        ctx.redirect(pending?.returnTo ?? '/');
      } catch (error) {
        if (!(error instanceof AppError)) throw error;
        if (error.code === 'provider_not_found') throw error;
        ctx.log.info({ code: error.code, provider: params.provider }, 'single sign-on refused');
        await signIn.external.recordRefusal(`oidc:${params.provider}`, error.code, actor);
        toLogin(`signInError=${encodeURIComponent(error.code)}`);
      }
    },
  }),
  route({
    method: 'get',
    path: '/api/auth/sign-in/link',
    tag,
    summary: 'The directory or single sign-on identity waiting to be linked with the local account of its address, if any',
    access: publicAccess,
    before,
    response: { description: 'The link waiting for the local password, or null', schema: pendingLinkView },
    handle: (_input, ctx) => {
      const pending = pendingLinkOf(ctx);
      if (!pending || pending.expiresAt < Date.now()) {
        ctx.type = 'application/json';
        ctx.body = 'null';
        return undefined;
      }
      return { email: pending.email, source: pending.identity.source, sourceLabel: sourceLabel(pending.identity.source), expiresAt: pending.expiresAt };
    },
  }),
  route({
    method: 'post',
    path: '/api/auth/sign-in/link',
    tag,
    summary: 'Link the waiting directory or single sign-on identity with the local account: its local password proves the owner',
    description:
      'The local password is checked like a login (counted, locked out alike). The account then signs in through the directory or provider: its source changes, its roles follow the groups, and a new session starts. 404 link_not_found without a waiting link, 410 link_expired after ten minutes.',
    access: publicAccess,
    body: z.strictObject({ password: z.string().min(1, 'password must not be empty').max(1000, 'password is too long') }).meta({ id: 'LinkConfirmation' }),
    before: [...before, anonymousCsrf],
    response: { description: 'Logged in; the session cookie is set', schema: meView },
    handle: async ({ body }, ctx) => {
      const pending = pendingLinkOf(ctx);
      if (!pending) throw new AppError(404, 'link_not_found', 'No sign-in is waiting to be linked; sign in with the directory or single sign-on first');
      const { accounts, signIn, authentication } = ctx.services.access;
      const actor = actorOf(ctx);
      await accounts.verifyLogin({ email: pending.email, password: body.password }, actor);
      const user = await signIn.external.confirmLink(pending, actor);
      forgetLink(ctx);
      return authentication.loginAs(ctx, user);
    },
  }),
  route({
    method: 'post',
    path: '/api/auth/sign-in/logout',
    tag,
    summary: 'Log out, and where to send the browser so that the single sign-on provider logs out too',
    description: 'As POST /api/auth/logout; for a session that came from single sign-on, the answer names the provider’s end-session address (RP-initiated logout, with the ID token as hint) for the browser to open.',
    access: publicAccess,
    before: [...before, anonymousCsrf],
    response: { description: 'Logged out', schema: z.object({ redirect: z.string().nullable() }).meta({ id: 'SignOut' }) },
    handle: async (_input, ctx) => {
      const { signIn, authentication } = ctx.services.access;
      const sso = ssoOf(ctx);
      await authentication.logout(ctx);
      if (!sso) return { redirect: null };
      try {
        return { redirect: await signIn.oidc.endSessionUrl(sso.provider, sso.idToken, `${signIn.settings.publicUrl.replace(/\/+$/, '')}/`) };
      } catch (error) {
        ctx.log.warn({ err: error, provider: sso.provider }, 'the provider’s end-session address is not known');
        return { redirect: null };
      }
    },
  }),
  route({
    method: 'get',
    path: '/api/admin/sign-in',
    tag: 'Administration',
    summary: 'The directory and single sign-on settings in effect, their group mappings, and how many accounts come from each source',
    access: adminOnly,
    before,
    response: { description: 'The mapping in effect', schema: signInOverview },
    handle: async (_input, ctx) => {
      const { directory, oidc, repository } = ctx.services.access.signIn;
      const ldap = directory?.settings;
      return {
        directory: ldap
          ? {
              url: ldap.url,
              security: ldap.url.toLowerCase().startsWith('ldaps://') ? ('ldaps' as const) : ldap.startTls ? ('starttls' as const) : ('plain' as const),
              caFile: ldap.caFile,
              bindDn: ldap.bindDn,
              userSearchBase: ldap.userSearchBase,
              userFilter: ldap.userFilter,
              emailAttribute: ldap.emailAttribute,
              nameAttribute: ldap.nameAttribute,
              groupSearchBase: ldap.groupSearchBase,
              nestedGroups: ldap.nestedGroups,
              timeoutSeconds: ldap.timeoutSeconds,
              domains: [...ldap.domains],
              roleGroups: groupsOf(ldap.roleGroups),
              institutionGroups: ldap.institutionGroups.map((entry) => ({ institution: entry.institution, groups: [...entry.groups] })),
            }
          : null,
        providers: oidc.providers.map((provider) => ({
          name: provider.name,
          label: provider.label,
          issuer: provider.issuer,
          clientId: provider.clientId,
          redirectUri: oidc.redirectUri(provider.name),
          scopes: [...provider.scopes],
          groupsClaim: provider.groupsClaim,
          roleGroups: groupsOf(provider.roleGroups),
          institutionGroups: provider.institutionGroups.map((entry) => ({ institution: entry.institution, groups: [...entry.groups] })),
        })),
        accounts: await repository.countBySource(),
      };
    },
  }),
  route({
    method: 'put',
    path: '/api/admin/users/{id}/local-login',
    tag: 'Administration',
    summary: 'Allow or forbid the local password of a directory or single sign-on account',
    description: 'Only accounts that come from the directory or single sign-on can have their local password turned off (409 local_account otherwise). Audited.',
    access: adminOnly,
    params: z.strictObject({ id: idParam('user') }),
    body: z.strictObject({ allowed: z.boolean({ error: 'allowed must be true or false' }) }).meta({ id: 'LocalLoginChange' }),
    before: [noStore],
    response: { description: 'The account as changed', schema: adminUserView },
    handle: async ({ params, body }, ctx) => adminUserViewOf(await ctx.services.access.signIn.external.setLocalLogin(params.id, body.allowed, actorOf(ctx)), new Date()),
  }),
];

function groupsOf(groups: { admin: readonly string[]; curator: readonly string[]; pathologist: readonly string[] }) {
  return { admin: [...groups.admin], curator: [...groups.curator], pathologist: [...groups.pathologist] };
}
