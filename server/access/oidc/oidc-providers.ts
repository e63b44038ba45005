import * as client from 'openid-client';
import { AppError } from '../../errors.js';
import type { Logger } from '../../logging.js';
import type { ExternalIdentity } from '../directory/external-accounts.service.js';
import { mapGroups, type InstitutionGroups, type RoleGroups } from '../directory/group-mapping.js';

/** One entry of auth.oidc.providers. */
export interface OidcProviderSettings {
  name: string;
  label: string;
  issuer: string;
  clientId: string;
  clientSecret: string;
  scopes: readonly string[];
  groupsClaim: string;
  roleGroups: RoleGroups;
  institutionGroups: readonly InstitutionGroups[];
}

/** What the browser's sign-in carries between the start and the provider's answer (kept in a signed cookie, never a provider's token). */
export interface PendingSignIn {
  provider: string;
  state: string;
  nonce: string;
  codeVerifier: string;
  /** The portal page to open afterwards: a path on this site. */
  returnTo: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

/** A sign-in the provider finished: who it is, and the ID token kept in the session for logging out at the provider. */
export interface FinishedSignIn {
  identity: ExternalIdentity;
  idToken: string;
}

/** How long a browser may take at the provider before its answer is refused. */
export const PENDING_SIGN_IN_MINUTES = 10;

/** Why a provider's answer was refused, without the details an attacker could use (those go to the log). */
export class SignInRefusedError extends AppError {
  constructor(code: string, message: string, cause?: unknown) {
    super(401, code, message);
    this.cause = cause;
  }
}

/**
 * Single sign-on through OpenID Connect: the authorization code flow with
 * PKCE (S256), a random state and nonce per sign-in, the client
 * authenticated with its secret. openid-client checks the ID token's issuer,
 * audience, expiry, nonce and — with non-repudiation checks on — its
 * signature against the provider's published keys (JWKS). The provider's
 * tokens are used here and kept in the server's session store only: never
 * sent to the browser or to any other service. Discovery happens at the
 * first use and is kept; a failed discovery is tried again next time.
 */
export class OidcProviders {
  private readonly configurations = new Map<string, Promise<client.Configuration>>();
  private readonly byName: Map<string, OidcProviderSettings>;

  constructor(
    readonly providers: readonly OidcProviderSettings[],
    private readonly publicUrl: string,
    private readonly log: Logger,
    private readonly timeoutSeconds = 10,
  ) {
    this.byName = new Map(providers.map((provider) => [provider.name, provider]));
  }

  list(): { name: string; label: string }[] {
    return this.providers.map(({ name, label }) => ({ name, label }));
  }

  settingsOf(name: string): OidcProviderSettings {
    const provider = this.byName.get(name);
    if (!provider) throw new AppError(404, 'provider_not_found', `No single sign-on provider is named ${name}`);
    return provider;
  }

  /** Where the provider sends the browser back to; register exactly this address with the provider. */
  redirectUri(name: string): string {
    return `${this.publicUrl.replace(/\/+$/, '')}/api/auth/oidc/${encodeURIComponent(name)}/callback`;
  }

  /** The provider's metadata, client and keys, discovered once. */
  configuration(name: string): Promise<client.Configuration> {
    const provider = this.settingsOf(name);
    let found = this.configurations.get(name);
    if (!found) {
      const issuer = new URL(provider.issuer);
      const insecure = issuer.protocol === 'http:';
      found = client
        .discovery(issuer, provider.clientId, { redirect_uris: [this.redirectUri(name)], response_types: ['code'] }, client.ClientSecretBasic(provider.clientSecret), {
          timeout: this.timeoutSeconds,
          // http:// is accepted for loopback issuers only (the configuration refuses it elsewhere).
          execute: [client.enableNonRepudiationChecks, ...(insecure ? [client.allowInsecureRequests] : [])],
        })
        .catch((error: unknown) => {
          this.configurations.delete(name);
          throw error;
        });
      this.configurations.set(name, found);
    }
    return found;
  }

  /** The address to send the browser to, and what must come back with it. */
  async start(name: string, returnTo: string, now: Date): Promise<{ url: string; pending: PendingSignIn }> {
    const provider = this.settingsOf(name);
    const config = await this.available(name);
    const codeVerifier = client.randomPKCECodeVerifier();
    const pending: PendingSignIn = {
      provider: name,
      state: client.randomState(),
      nonce: client.randomNonce(),
      codeVerifier,
      returnTo,
      expiresAt: now.getTime() + PENDING_SIGN_IN_MINUTES * 60_000,
    };
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri(name),
      scope: provider.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
    });
    return { url: url.href, pending };
  }

  /** Checks the provider's answer (`callbackUrl` as the browser brought it) against what the start sent, and reads who signed in. */
  async finish(name: string, callbackUrl: URL, pending: PendingSignIn | undefined, now: Date): Promise<FinishedSignIn> {
    const provider = this.settingsOf(name);
    if (!pending || pending.provider !== name) throw new SignInRefusedError('sign_in_state', 'This sign-in was not started here, or its cookie is gone; start again');
    if (pending.expiresAt < now.getTime()) throw new SignInRefusedError('sign_in_expired', 'The sign-in took too long; start again');
    const providerError = callbackUrl.searchParams.get('error');
    if (providerError) throw new SignInRefusedError('sign_in_denied', `The provider did not sign you in (${providerError.slice(0, 100)})`);
    const config = await this.available(name);
    let tokens: Awaited<ReturnType<typeof client.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      this.log.warn({ err: error, provider: name }, 'a single sign-on answer was refused');
      throw new SignInRefusedError('sign_in_refused', 'The single sign-on answer could not be verified; start again', error);
    }
    const claims = tokens.claims();
    const idToken = tokens.id_token;
    if (!claims || !idToken) throw new SignInRefusedError('sign_in_refused', 'The provider sent no ID token');
    let groupsValue: unknown = claimAt(claims, provider.groupsClaim);
    let emailValue: unknown = claims.email;
    let verified: unknown = claims.email_verified;
    let nameValue: unknown = claims.name;
    if ((groupsValue === undefined || emailValue === undefined) && tokens.access_token) {
      // Providers that keep the ID token small put these in the user info.
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
        groupsValue ??= claimAt(info, provider.groupsClaim);
        emailValue ??= info.email;
        verified ??= info.email_verified;
        nameValue ??= info.name;
      } catch (error) {
        this.log.warn({ err: error, provider: name }, 'the provider’s user info could not be read');
      }
    }
    const groups = Array.isArray(groupsValue) ? groupsValue.filter((group): group is string => typeof group === 'string') : typeof groupsValue === 'string' ? [groupsValue] : [];
    const email = typeof emailValue === 'string' && verified !== false ? emailValue.trim().toLowerCase() : '';
    return {
      idToken,
      identity: {
        source: `oidc:${name}`,
        externalId: claims.sub,
        email,
        name: typeof nameValue === 'string' ? nameValue.trim().slice(0, 200) : '',
        groups,
        mapping: mapGroups(groups, provider.roleGroups, provider.institutionGroups),
        managedInstitutions: provider.institutionGroups.map((entry) => entry.institution),
      },
    };
  }

  /** RP-initiated logout: where to send the browser so that the provider ends its session too; none when the provider has no end-session endpoint. */
  async endSessionUrl(name: string, idToken: string, postLogoutRedirectUri: string): Promise<string | null> {
    const config = await this.available(name);
    if (!config.serverMetadata().end_session_endpoint) return null;
    return client.buildEndSessionUrl(config, { id_token_hint: idToken, post_logout_redirect_uri: postLogoutRedirectUri }).href;
  }

  private async available(name: string): Promise<client.Configuration> {
    try {
      return await this.configuration(name);
    } catch (error) {
      this.log.error({ err: error, provider: name }, 'the single sign-on provider could not be reached');
      throw new AppError(503, 'provider_unavailable', `${this.settingsOf(name).label} cannot be reached just now; try again in a few minutes, or log in with a password`, {
        expose: true,
        details: { retryAfterSeconds: 60 },
      });
    }
  }
}

/** A claim by name, or by a dotted path into nested claims (Keycloak's `realm_access.roles`). */
function claimAt(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let node: unknown = claims;
  for (const part of path.split('.')) node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[part] : undefined;
  return node;
}
