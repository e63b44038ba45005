import type { Queryable } from '../db/index.js';

/** One audited event. `action` is a dotted name such as `auth.login`, `auth.login_failed`, `user.level_changed`, `dua.approved`, `token.created`, `download.slide`. */
export interface AuditEvent {
  action: string;
  /** The user who acted; null for anonymous requests and scheduled jobs. */
  actorId: number | null;
  /** What the event concerns, e.g. `user` 12, `dua_application` 3, `slide` 8. */
  subjectType?: string;
  subjectId?: string | number;
  /** The client address, when the event came through HTTP. */
  ip?: string | null;
  /** Anything else worth keeping; never a password or token. */
  details?: Record<string, unknown>;
}

/** The append-only audit log. Pass `trx` to record inside the transaction that made the change. */
export interface AuditLog {
  record(event: AuditEvent, trx?: Queryable): Promise<void>;
}

/** Who is acting and from where: what a service needs to record an event for a request. */
export interface AuditActor {
  actorId: number | null;
  ip?: string | null;
  /** Where the change came from, for services that record it: an HTTP request (the default) or the CLI (no account). */
  via?: 'http' | 'cli';
}
