import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import Provider from 'oidc-provider';

/**
 * A real OpenID Connect provider inside the test process (the `oidc-provider`
 * package, which certified providers are built on): discovery, keys, the
 * authorization code flow with PKCE, its own login and consent pages (any
 * login name, any password: the "development interactions"), and
 * RP-initiated logout. `tamper` makes the token endpoint answer with an ID
 * token re-signed with the provider's own key but for another audience, or
 * already expired, as a misbehaving or attacked provider would.
 */

export interface TestPerson {
  email?: string;
  emailVerified?: boolean;
  name: string;
  groups: string[];
}

export interface TestProvider {
  /** http://127.0.0.1:<port> */
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The people the provider knows, by login name (what the test types on its login page). */
  people: Map<string, TestPerson>;
  /** How the next token answers are changed: `none`, another audience, or expired. */
  tamper: 'none' | 'wrong-audience' | 'expired';
  /** Token endpoint answers so far (to see that a flow got as far as the token). */
  tokenRequests: number;
  /** Registers the client: its redirect address and where it may send the browser after logout. */
  register(redirectUri: string, postLogoutRedirectUri: string): void;
}

/** Starts listening now (so the issuer is known for the app's configuration); the provider answers once `register` has been called. */
export async function startOidcProvider(t: { teardown(fn: () => Promise<void> | void): void }): Promise<TestProvider> {
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;
  const server: Server = createServer((req, res) => {
    if (!handler) {
      res.statusCode = 503;
      res.end('not configured yet');
      return;
    }
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as { port: number };
  const issuer = `http://127.0.0.1:${port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'test-key-1';
  const jwk = { ...(privateKey.export({ format: 'jwk' }) as Record<string, unknown>), kid, use: 'sig', alg: 'RS256' };

  const state: TestProvider = {
    issuer,
    clientId: 'slidebank-test',
    clientSecret: randomBytes(24).toString('base64url'),
    people: new Map(),
    tamper: 'none',
    tokenRequests: 0,
    register(redirectUri, postLogoutRedirectUri) {
      const provider = new Provider(issuer, {
        clients: [
          {
            client_id: state.clientId,
            client_secret: state.clientSecret,
            redirect_uris: [redirectUri],
            post_logout_redirect_uris: [postLogoutRedirectUri],
            response_types: ['code'],
            grant_types: ['authorization_code'],
            token_endpoint_auth_method: 'client_secret_basic',
          },
        ],
        jwks: { keys: [jwk] },
        cookies: { keys: [randomBytes(32).toString('hex')] },
        scopes: ['openid', 'email', 'profile', 'groups'],
        claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
        // The claims go into the ID token itself, as many hospital providers configure it.
        conformIdTokenClaims: false,
        pkce: { required: () => true },
        features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
        findAccount: (_ctx, id) => {
          const person = state.people.get(id);
          if (!person) return undefined;
          return {
            accountId: id,
            claims: () => ({
              sub: id,
              name: person.name,
              groups: person.groups,
              ...(person.email !== undefined ? { email: person.email, email_verified: person.emailVerified ?? true } : {}),
            }),
          };
        },
      });
      provider.use(async (ctx, next) => {
        await next();
        if (ctx.path !== '/token' || ctx.status !== 200) return;
        state.tokenRequests++;
        const body = ctx.body as { id_token?: string } | undefined;
        if (state.tamper === 'none' || !body?.id_token) return;
        const [, payload] = body.id_token.split('.');
        const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
        const now = Math.floor(Date.now() / 1000);
        if (state.tamper === 'wrong-audience') claims.aud = 'some-other-application';
        if (state.tamper === 'expired') Object.assign(claims, { iat: now - 7200, exp: now - 3600 });
        ctx.body = { ...body, id_token: signJwt(claims, privateKey, kid) };
      });
      const callback = provider.callback();
      handler = (req, res) => void callback(req, res);
    },
  };
  return state;
}

function signJwt(claims: Record<string, unknown>, key: KeyObject, kid: string): string {
  const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = sign('sha256', Buffer.from(`${header}.${payload}`), key).toString('base64url');
  return `${header}.${payload}.${signature}`;
}
