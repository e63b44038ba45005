import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';
import type { AuditEvent, AuditLog } from './audit-log.js';

/** One recorded event as read back. */
export interface AuditEntry {
  id: number;
  at: Date;
  action: string;
  actorId: number | null;
  /** The actor's current address; null for anonymous events and deleted users. */
  actorEmail: string | null;
  subjectType: string | null;
  subjectId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

export interface AuditFilters {
  /** An exact action (`dua.approved`), or a family ending in `.*` (`dua.*`). */
  action?: string;
  actorId?: number;
  subjectType?: string;
  subjectId?: string;
  /** Events at or after this instant. */
  from?: Date;
  /** Events before this instant. */
  to?: Date;
}

export interface AuditListOptions extends AuditFilters {
  limit: number;
  offset: number;
}

interface AuditRow {
  id: number;
  at: string;
  action: string;
  actor_id: number | null;
  actor_email: string | null;
  subject_type: string | null;
  subject_id: string | null;
  ip: string | null;
  details: string | null;
}

export const AUDIT_LIMITS = { action: 64, subjectType: 32, subjectId: 128, ip: 45, detailsBytes: 64 * 1024 } as const;

const ACTION = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$/;
/** Keys whose values never belong in the log, whoever passes them (AuditEvent.details says so too). */
const SECRET_KEYS = /^(password|passwordHash|newPassword|currentPassword|token|secret|csrf|cookie)$/i;

/**
 * The append-only audit log: `record` and reads, and nothing that changes or
 * removes a row (the database refuses those too; see the migration).
 * Entries come back newest first, in the order they were recorded.
 */
export class AuditRepository implements AuditLog {
  constructor(
    private readonly knex: Knex,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  async record(event: AuditEvent, trx: Knex = this.knex): Promise<void> {
    if (!ACTION.test(event.action) || event.action.length > AUDIT_LIMITS.action) {
      throw new Error(`audit action "${event.action}" must be dotted lower-case words (auth.login) of at most ${AUDIT_LIMITS.action} characters`);
    }
    const row = {
      at: toDbTime(this.clock()),
      action: event.action,
      actor_id: event.actorId,
      subject_type: clip(event.subjectType, AUDIT_LIMITS.subjectType),
      subject_id: clip(event.subjectId === undefined ? undefined : String(event.subjectId), AUDIT_LIMITS.subjectId),
      ip: clip(event.ip ?? undefined, AUDIT_LIMITS.ip),
      details: detailsText(event.details),
    };
    // On its own, the insert is a transaction of its own, so that a database node stopping before the commit does not lose the row: it runs again on another.
    if (trx === this.knex) await this.knex.transaction(async (own) => own('audit_log').insert(row));
    else await trx('audit_log').insert(row);
  }

  async list(options: AuditListOptions): Promise<{ items: AuditEntry[]; total: number }> {
    const [rows, total] = await Promise.all([this.select(options).orderBy('audit_log.id', 'desc').limit(options.limit).offset(options.offset), this.count(options)]);
    return { items: rows.map(toEntry), total };
  }

  /**
   * How many events match. With no filter but the action, the sum of the
   * counts per action a trigger keeps (see the catalog-counts migration)
   * instead of a count of millions of rows; other filters count through
   * their indexes.
   */
  private async count(filters: AuditFilters): Promise<number> {
    const { action, actorId, subjectType, subjectId, from, to } = filters;
    if ([actorId, subjectType, subjectId, from, to].every((value) => value === undefined)) {
      const row = (await byAction(this.knex('audit_action_counts'), 'action', action).sum({ n: 'events' }).first()) as { n: number | string | null } | undefined;
      return Number(row?.n ?? 0);
    }
    const row = (await filtered(this.knex('audit_log'), filters).count({ n: '*' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  /**
   * Every matching entry, oldest first, read in batches by id so that no
   * connection is held while the consumer (a slow download) catches up.
   */
  async *entries(filters: AuditFilters, batchSize = 1000): AsyncGenerator<AuditEntry> {
    let after = 0;
    for (;;) {
      const rows = await this.select(filters).where('audit_log.id', '>', after).orderBy('audit_log.id', 'asc').limit(batchSize);
      for (const row of rows) yield toEntry(row);
      if (rows.length < batchSize) return;
      after = rows[rows.length - 1]!.id;
    }
  }

  private select(filters: AuditFilters): Knex.QueryBuilder<AuditRow, AuditRow[]> {
    return filtered(this.knex('audit_log'), filters)
      .leftJoin('users', 'users.id', 'audit_log.actor_id')
      .select('audit_log.*', 'users.email as actor_email') as unknown as Knex.QueryBuilder<AuditRow, AuditRow[]>;
  }
}

/** An exact action, or a family (`dua.*`), on `column`. */
function byAction(query: Knex.QueryBuilder, column: string, action: string | undefined): Knex.QueryBuilder {
  if (action === undefined) return query;
  if (action.endsWith('.*')) {
    // A family: `dua.*` is every action that starts with `dua.`. `_` is a LIKE wildcard, so it is escaped
    // (with `!`: a backslash means different things in MariaDB's and SQLite's string literals).
    const prefix = action.slice(0, -1).replace(/[!%_]/g, (c) => `!${c}`);
    return query.whereRaw(`${column} LIKE ? ESCAPE '!'`, [`${prefix}%`]);
  }
  return query.where(column, action);
}

function filtered(query: Knex.QueryBuilder, filters: AuditFilters): Knex.QueryBuilder {
  byAction(query, 'audit_log.action', filters.action);
  if (filters.actorId !== undefined) query.where('audit_log.actor_id', filters.actorId);
  if (filters.subjectType !== undefined) query.where('audit_log.subject_type', filters.subjectType);
  if (filters.subjectId !== undefined) query.where('audit_log.subject_id', filters.subjectId);
  if (filters.from !== undefined) query.where('audit_log.at', '>=', toDbTime(filters.from));
  if (filters.to !== undefined) query.where('audit_log.at', '<', toDbTime(filters.to));
  return query;
}

function toEntry(row: AuditRow): AuditEntry {
  return {
    id: Number(row.id),
    at: fromDbTime(row.at),
    action: row.action,
    actorId: row.actor_id === null ? null : Number(row.actor_id),
    actorEmail: row.actor_email ?? null,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    ip: row.ip,
    details: row.details === null ? {} : (JSON.parse(row.details) as Record<string, unknown>),
  };
}

function clip(value: string | undefined, max: number): string | null {
  if (value === undefined) return null;
  return value.length > max ? value.slice(0, max) : value;
}

/** JSON text with secrets masked; an oversized object is replaced by a note of its size, so that recording never fails on it. */
function detailsText(details: Record<string, unknown> | undefined): string | null {
  if (details === undefined) return null;
  const text = JSON.stringify(details, (key, value: unknown) => (key !== '' && SECRET_KEYS.test(key) ? '****' : value));
  const bytes = Buffer.byteLength(text);
  if (bytes <= AUDIT_LIMITS.detailsBytes) return text;
  return JSON.stringify({ truncated: true, bytes, preview: text.slice(0, 1000) });
}
