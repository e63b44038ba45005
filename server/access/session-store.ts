import type { SessionsRepository } from './sessions.repository.js';

/**
 * koa-session's external store over the sessions table, so that every app node
 * sees every session. koa-session passes the cookie's id as `key` and the
 * lifetime in `maxAge` (ms).
 */
export class DatabaseSessionStore {
  constructor(
    private readonly sessions: SessionsRepository,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async get(key: string): Promise<Record<string, unknown> | undefined> {
    return this.sessions.get(key, this.clock());
  }

  async set(key: string, data: Record<string, unknown>, maxAge: number): Promise<void> {
    const now = this.clock();
    const user = (data.passport as { user?: unknown } | undefined)?.user;
    await this.sessions.set(key, data, typeof user === 'number' ? user : null, new Date(now.getTime() + maxAge), now);
  }

  async destroy(key: string): Promise<void> {
    await this.sessions.destroy(key);
  }
}
