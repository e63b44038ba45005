import { reactive } from 'vue';
import { ApiError, get, post, setCsrfToken } from './api';
import type { Level, Me } from './types';

const ORDER: Level[] = ['L0', 'L1', 'L2', 'L3'];

/** Who is using the portal; `loaded` once the first `GET /api/auth/me` answered. */
export const session = reactive<{ user: Me | null; loaded: boolean }>({ user: null, loaded: false });

let loading: Promise<void> | null = null;

export function loadSession(force = false): Promise<void> {
  if (loading && !force) return loading;
  loading = (async () => {
    try {
      // Nobody logged in is a `null`, not an error.
      const me = await get<Me | null>('/api/auth/me', { expect401: true });
      setCsrfToken(me?.csrfToken);
      session.user = me;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      session.user = null;
    } finally {
      session.loaded = true;
    }
  })();
  return loading;
}

export async function logIn(email: string, password: string): Promise<Me> {
  const me = await post<Me>('/api/auth/login', { email, password }, { expect401: true });
  setCsrfToken(me.csrfToken);
  session.user = me;
  loading = Promise.resolve();
  return me;
}

export async function logOut(): Promise<void> {
  let redirect: string | null = null;
  try {
    // As /api/auth/logout; a single sign-on session also names where the provider logs out.
    redirect = (await post<{ redirect: string | null }>('/api/auth/sign-in/logout', {}, { expect401: true })).redirect;
  } finally {
    session.user = null;
    setCsrfToken(null);
  }
  if (redirect) window.location.assign(redirect);
}

/** The password was chosen by somebody else (the initial administrator's printed one): the portal asks for a new one first. */
export function mustChangePassword(): boolean {
  return session.user?.mustChangePassword ?? false;
}

export function forgetSession(): void {
  session.user = null;
  setCsrfToken(null);
}

/** The user's level is at least `level` (L0 for everybody). */
export function hasLevel(level: Level): boolean {
  const mine = session.user?.level ?? 'L0';
  return ORDER.indexOf(mine) >= ORDER.indexOf(level);
}

export function isAdmin(): boolean {
  return session.user?.roles.includes('admin') ?? false;
}

/** Any staff role (admin, curator, pathologist): curators read the ingest records. */
export function isStaff(): boolean {
  return (session.user?.roles.length ?? 0) > 0;
}

/** L2 and L3 may download (roles do not count). */
export function canDownload(): boolean {
  return hasLevel('L2');
}
