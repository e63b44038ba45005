import { AccessTokensRepository } from '../../server/access/access-tokens.repository.js';
import { hashPassword } from '../../server/access/password.js';
import { newSecret, sha256Hex } from '../../server/access/secrets.js';
import { UsersRepository, type Level, type StaffRole, type User } from '../../server/access/users.repository.js';
import { toDbTime } from '../../server/db/index.js';
import type { TestApp } from './app.js';

/** A password that passes the policy; every test account has it unless told otherwise. */
export const TEST_PASSWORD = 'grey heron over the river 42';

let counter = 0;
let hashed: Promise<string> | undefined;

export interface UserSpec {
  level: Level;
  roles?: StaffRole[];
  email?: string;
  name?: string;
  institution?: string;
  /** Defaults to confirmed. */
  confirmed?: boolean;
  levelExpiresAt?: Date | null;
  disabled?: boolean;
}

/** An account straight in the database, as `slidebank user add` would make it. */
export async function createUser(app: TestApp, spec: UserSpec): Promise<User> {
  const users = new UsersRepository(app.database.db.knex);
  const email = spec.email ?? `user${++counter}-${spec.level.toLowerCase()}${spec.roles?.length ? `-${spec.roles.join('-')}` : ''}@hospital.example`;
  const user = await users.create({
    email,
    name: spec.name ?? `Test ${spec.level}`,
    institution: spec.institution ?? 'Test Hospital',
    passwordHash: await (hashed ??= hashPassword(TEST_PASSWORD)),
    level: spec.level,
    levelExpiresAt: spec.levelExpiresAt ?? null,
    roles: spec.roles ?? [],
    emailConfirmedAt: spec.confirmed === false ? null : new Date(),
  });
  if (spec.disabled) await app.database.db.knex('users').where({ id: user.id }).update({ disabled_at: toDbTime(new Date()) });
  return (await users.findById(user.id))!;
}

export interface Answer<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  body?: unknown;
  headers?: Record<string, string>;
  /** Send the session's CSRF token on writes (default true). */
  csrf?: boolean;
}

/**
 * An HTTP client with a cookie jar, like a browser tab: it keeps the session
 * cookie and sends the CSRF token it was given on writes (fetching one from
 * `GET /api/auth/csrf` before its first write, as the portal does). With
 * `token` it authenticates with `Authorization: Bearer` instead.
 */
export class Client {
  readonly cookies = new Map<string, string>();
  csrfToken: string | undefined;

  constructor(
    /** Anything that turns a path into a URL: a TestApp, or a server started as its own process. */
    readonly app: Pick<TestApp, 'url'>,
    readonly token?: string,
  ) {}

  get<T = unknown>(pathname: string, options: RequestOptions = {}): Promise<Answer<T>> {
    return this.request<T>('GET', pathname, options);
  }

  post<T = unknown>(pathname: string, body?: unknown, options: RequestOptions = {}): Promise<Answer<T>> {
    return this.request<T>('POST', pathname, { ...options, body });
  }

  put<T = unknown>(pathname: string, body?: unknown, options: RequestOptions = {}): Promise<Answer<T>> {
    return this.request<T>('PUT', pathname, { ...options, body });
  }

  patch<T = unknown>(pathname: string, body?: unknown, options: RequestOptions = {}): Promise<Answer<T>> {
    return this.request<T>('PATCH', pathname, { ...options, body });
  }

  delete<T = unknown>(pathname: string, options: RequestOptions = {}): Promise<Answer<T>> {
    return this.request<T>('DELETE', pathname, options);
  }

  async request<T = unknown>(method: string, pathname: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const write = method !== 'GET' && method !== 'HEAD';
    if (write && options.csrf !== false && !this.token && this.csrfToken === undefined) await this.get('/api/auth/csrf');
    const headers: Record<string, string> = {};
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    if (write && options.csrf !== false && this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    Object.assign(headers, options.headers);
    const response = await fetch(this.app.url(pathname), {
      method,
      headers,
      redirect: 'manual',
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
    this.keepCookies(response.headers);
    const type = response.headers.get('content-type') ?? '';
    const raw = Buffer.from(await response.arrayBuffer());
    const body = (/json/.test(type) && raw.length > 0 ? JSON.parse(raw.toString('utf8')) : raw) as T;
    const token = (body as { csrfToken?: unknown } | null)?.csrfToken;
    if (typeof token === 'string') this.csrfToken = token;
    return { status: response.status, headers: response.headers, body };
  }

  private keepCookies(headers: Headers): void {
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const equals = pair.indexOf('=');
      const name = pair.slice(0, equals).trim();
      const value = pair.slice(equals + 1).trim();
      const expired = attributes.some((a) => /^\s*expires=/i.test(a) && new Date(a.split('=')[1]!).getTime() < Date.now());
      if (value === '' || expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** Waits for the account work that runs after the answers (registrations, links and mails), so that a test can read what it did. */
export function accountWorkDone(app: Pick<TestApp, 'services'>): Promise<void> {
  return app.services.access.deferred.idle();
}

/** Logs in through `POST /api/auth/login` and returns the logged-in client; fails the test setup if the login does not succeed. */
export async function logIn(app: Pick<TestApp, 'url'>, email: string, password = TEST_PASSWORD): Promise<Client> {
  const client = new Client(app);
  const answer = await client.post('/api/auth/login', { email, password });
  if (answer.status !== 200) throw new Error(`login of ${email} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return client;
}

/** Makes a personal access token through the API of a logged-in client and returns a client that uses it. */
export async function tokenClient(session: Client, name = 'test token', scope: 'all' | 'read' = 'all'): Promise<Client> {
  const answer = await session.post<{ token: string }>('/api/tokens', { name, scope });
  if (answer.status !== 201) throw new Error(`token creation answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return new Client(session.app, answer.body.token);
}

/** A user of the given kind, logged in, and a token client for the same account. */
export async function signedIn(app: TestApp, spec: UserSpec): Promise<{ user: User; session: Client; token: Client }> {
  const user = await createUser(app, spec);
  const session = await logIn(app, user.email);
  return { user, session, token: await tokenClient(session) };
}

/**
 * `Authorization` headers of a fresh account of the given kind (default: an
 * L1 viewer), with a token stored straight in the database: for tests of
 * protected routes that are not about access, e.g.
 * `fetch(app.url('/tiles/1.dzi'), { headers: await bearerHeaders(app) })`.
 */
export async function bearerHeaders(app: TestApp, spec: UserSpec = { level: 'L1' }): Promise<Record<string, string>> {
  const user = await createUser(app, spec);
  const token = `sbk_${newSecret()}`;
  await new AccessTokensRepository(app.database.db.knex).create(
    { userId: user.id, name: 'test', prefix: token.slice(0, 12), tokenHash: sha256Hex(token), scope: 'all', expiresAt: null },
    new Date(),
  );
  return { authorization: `Bearer ${token}` };
}

const viewers = new WeakMap<TestApp, Promise<Record<string, string>>>();

/**
 * `fetch` of a path of the test app as an L1 viewer (one account per app,
 * made on first use): for tests of the catalog, tiles and IIIF that are not
 * about access. The access rules themselves are tested in access-matrix.test.ts.
 */
export async function viewerFetch(app: TestApp, pathname: string, init: RequestInit = {}): Promise<Response> {
  let headers = viewers.get(app);
  if (!headers) viewers.set(app, (headers = bearerHeaders(app)));
  return fetch(app.url(pathname), { ...init, headers: { ...(await headers), ...(init.headers as Record<string, string> | undefined) } });
}
