import type Koa from 'koa';
import type { Context, Middleware } from 'koa';
import createSession from 'koa-session';
import { newSecret } from '../../access/secrets.js';

/** The session cookie; with it comes `slidebank.sid.sig`, its signature. */
export const SESSION_COOKIE = 'slidebank.sid';

export interface SessionSettings {
  /** Keys that sign the cookie (first signs, all verify). */
  keys: string[];
  maxAgeMs: number;
  /** auto: Secure on HTTPS requests (behind a proxy, when http.trustProxy lets Koa see X-Forwarded-Proto); true/false: always/never. */
  secureCookies: 'auto' | boolean;
}

/** The store koa-session calls (see access/session-store.ts). */
export interface SessionStore {
  get(key: string): Promise<Record<string, unknown> | undefined>;
  set(key: string, data: Record<string, unknown>, maxAge: number): Promise<void>;
  destroy(key: string): Promise<void>;
}

/** What handlers may read and write on `ctx.session`. */
export interface SessionData {
  csrf?: string;
  passport?: { user?: unknown };
  /** Set by koa-session: the id in the cookie. */
  readonly externalKey?: string;
  regenerate(): Promise<void>;
  [key: string]: unknown;
}

/**
 * Sessions in the database (koa-session with an external store), so every
 * app node sees every session. The cookie holds only a random 256-bit id,
 * signed with the configured keys; it is httpOnly, SameSite=Lax and Secure as
 * configured. The id changes at login (passport regenerates the session) and
 * the session is destroyed at logout.
 */
export function sessions(app: Koa, store: SessionStore, settings: SessionSettings): Middleware {
  app.keys = settings.keys;
  const middleware = createSession(
    {
      key: SESSION_COOKIE,
      maxAge: settings.maxAgeMs,
      renew: true,
      rolling: false,
      httpOnly: true,
      sameSite: 'lax',
      signed: true,
      overwrite: true,
      genid: () => newSecret(),
      store: {
        get: (key: string) => store.get(key),
        set: (key: string, data: Record<string, unknown>, maxAge: number) => store.set(key, data, maxAge),
        destroy: (key: string) => store.destroy(key),
      },
    } as Parameters<typeof createSession>[0],
    app,
  );
  return async (ctx, next) => {
    // With Secure forced on, the cookie must be sent even where Koa cannot see the HTTPS (a proxy without trustProxy).
    if (settings.secureCookies === true) ctx.cookies.secure = true;
    await middleware(ctx, async () => {
      (ctx as unknown as { sessionOptions: { secure?: boolean } }).sessionOptions.secure =
        settings.secureCookies === 'auto' ? ctx.secure : settings.secureCookies;
      await next();
    });
  };
}

export function sessionOf(ctx: Context): SessionData | null {
  return (ctx as unknown as { session: SessionData | null }).session;
}

/** Ends the session: its row is deleted and the cookie cleared when the response is sent. */
export function destroySession(ctx: Context): void {
  (ctx as unknown as { session: SessionData | null }).session = null;
}
