import type { Context, Middleware } from 'koa';
import koaPassport from 'koa-passport';
import passportLocal from 'passport-local';
import type { AccountsService, Credentials } from '../../access/accounts.service.js';
import { ANONYMOUS, requesterFor } from '../../access/levels.js';
import type { TokensService } from '../../access/tokens.service.js';
import type { User } from '../../access/users.repository.js';
import type { MeView } from '../../access/views.js';
import { AppError } from '../../errors.js';
import { actorOf } from '../actor.js';
import { requesterOf } from '../requester.js';
import type { Csrf } from './csrf.js';
import { destroySession, sessionOf } from './session.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface Authentication {
  /** App-level, after the session middleware: resolves `ctx.state.requester` from a bearer token or the session. */
  middleware: Middleware;
  /** `POST /api/auth/login`: checks the credentials through passport, starts a new session, answers who is logged in. */
  login(ctx: Context, credentials: Credentials): Promise<MeView>;
  /** `POST /api/auth/logout`: ends the session, if any. */
  logout(ctx: Context): Promise<void>;
  /** The body of `GET /api/auth/me` and of a successful login. */
  me(ctx: Context): Promise<MeView>;
  /** Starts a new session for a user some other check proved (single sign-on, a confirmed link), as a password login does. */
  loginAs(ctx: Context, user: User): Promise<MeView>;
}

/** Checks the login form's credentials: the accounts service's local passwords, or the directory's sign-in in front of them (access/directory/). */
export type VerifyLogin = (credentials: Credentials, ctx: Context) => Promise<User>;

/**
 * Who is asking. A request with `Authorization: Bearer <token>` is that
 * token's owner and nothing else (a bad token is a 401, never a fall-back to
 * the session). Otherwise passport restores the session's user. The user is
 * read from the database on every request, so a changed level, a lapsed L2 or
 * a disabled account takes effect at once. Anonymous is L0.
 *
 * Passport (koa-passport's own instance per app, not the shared singleton)
 * does the password login through passport-local and regenerates the
 * session id when someone logs in. It is set up on the login route only:
 * every other request reads the user id passport stored in the session
 * itself, because koa-passport's per-request set-up (a request object built
 * on every call) took about a twelfth of the main thread under a tile load.
 */
export function createAuthentication(
  accounts: AccountsService,
  tokens: TokensService,
  csrf: Pick<Csrf, 'tokenFor' | 'renew'>,
  clock: () => Date = () => new Date(),
  verifyLogin: VerifyLogin = (credentials, ctx) => accounts.verifyLogin(credentials, actorOf(ctx)),
): Authentication {
  const passport = new koaPassport.KoaPassport();
  passport.use(
    new passportLocal.Strategy({ usernameField: 'email', passwordField: 'password', passReqToCallback: true }, (req, email, password, done) => {
      const ctx = (req as unknown as { ctx: Context }).ctx;
      verifyLogin({ email, password }, ctx).then((user) => done(null, user), done);
    }),
  );
  passport.serializeUser((user, done) => done(null, (user as User).id));
  const initialize = passport.initialize();

  /** The user passport's login recorded in the session (as passport.session() would restore it); a stale id is dropped. */
  const sessionUser = async (ctx: Context): Promise<User | undefined> => {
    const record = sessionOf(ctx)?.passport;
    if (record?.user === undefined) return undefined;
    const user = await accounts.sessionUser(record.user);
    if (!user) delete record.user;
    return user;
  };

  const resolve: Middleware = async (ctx, next) => {
    const authorization = ctx.get('Authorization');
    if (authorization !== '') {
      const bearer = /^Bearer +([^\s]+) *$/i.exec(authorization)?.[1];
      try {
        if (!bearer) throw new AppError(401, 'invalid_authorization', 'Authorization must be "Bearer <personal access token>"');
        ctx.state.requester = await tokens.resolve(bearer);
      } catch (error) {
        ctx.set('WWW-Authenticate', 'Bearer realm="slidebank", error="invalid_token"');
        throw error;
      }
      if (ctx.state.requester.token?.scope === 'read' && !SAFE_METHODS.has(ctx.method)) {
        throw new AppError(403, 'token_scope', 'This token may only read (GET); make one with scope "all" to change things');
      }
      return next();
    }
    const user = await sessionUser(ctx);
    ctx.state.user = user;
    ctx.state.requester = user ? requesterFor(user, 'session', clock()) : ANONYMOUS;
    return next();
  };

  const me: Authentication['me'] = async (ctx) => {
    const requester = requesterOf(ctx);
    // A tile capability opens only a slide's pixels, never this route.
    if (requester.via === 'capability') throw new Error('a tile capability reached GET /api/auth/me');
    const view = await accounts.profile(requester);
    return {
      ...view,
      via: requester.via,
      ...(requester.via === 'session' ? { csrfToken: csrf.tokenFor(ctx) } : {}),
      mustChangePassword: requester.user?.mustChangePassword ?? false,
    };
  };

  const login: Authentication['login'] = async (ctx, credentials) => {
    // passport-local reads the fields from the request body: it is given the checked ones (the address in lower case).
    ctx.request.body = credentials;
    let answer: MeView | undefined;
    const authenticate = passport.authenticate('local', { session: true }, async (error: unknown, user: User | false, info: unknown) => {
      if (error) throw error;
      if (!user) throw new AppError(400, 'invalid_request', `Send JSON {"email", "password"} (${(info as { message?: string } | undefined)?.message ?? 'missing credentials'})`);
      await ctx.login(user);
      ctx.state.requester = requesterFor(user, 'session', clock());
      csrf.renew(ctx);
      answer = await me(ctx);
    });
    await initialize(ctx, () => authenticate(ctx, async () => undefined));
    if (!answer) throw new Error('passport finished a login without calling back');
    return answer;
  };

  const loginAs: Authentication['loginAs'] = async (ctx, user) => {
    let answer: MeView | undefined;
    await initialize(ctx, async () => {
      await ctx.login(user);
      ctx.state.user = user;
      ctx.state.requester = requesterFor(user, 'session', clock());
      csrf.renew(ctx);
      answer = await me(ctx);
    });
    if (!answer) throw new Error('passport finished a login without calling back');
    return answer;
  };

  const logout: Authentication['logout'] = async (ctx) => {
    await accounts.recordLogout(requesterOf(ctx), actorOf(ctx));
    if (sessionOf(ctx)) destroySession(ctx);
    ctx.state.user = undefined;
    ctx.state.requester = ANONYMOUS;
  };

  return { middleware: resolve, login, logout, me, loginAs };
}
