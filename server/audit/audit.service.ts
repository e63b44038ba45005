import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { csvStream } from '../lib/csv.js';
import type { AuditActor } from './audit-log.js';
import type { AuditEntry, AuditFilters, AuditRepository } from './audit.repository.js';
import type { AuditPage } from './views.js';

/** What administrators look for in the audit log; every filter is optional and they combine with AND. */
export interface AuditQuery {
  /** An exact action (`dua.approved`), or a family ending in `.*` (`dua.*`). */
  action?: string;
  /** The acting user's id. */
  actor?: number;
  subjectType?: string;
  subjectId?: string;
  /** Events at or after this instant. */
  from?: Date;
  /** Events before this instant. */
  to?: Date;
}

/** An audit query with the page to show. */
export interface AuditPageQuery extends AuditQuery {
  page: number;
  pageSize: number;
}

export interface CsvDownload {
  filename: string;
  stream: Readable;
}

export const AUDIT_PAGE_SIZE = { default: 50, max: 500 } as const;

/** The columns of the CSV export, in order. */
export const AUDIT_CSV_COLUMNS = ['id', 'at', 'action', 'actor_id', 'actor_email', 'subject_type', 'subject_id', 'ip', 'details'] as const;

/**
 * The audit log as administrators read it: `GET /api/admin/audit` (JSON,
 * newest first, paged) and `GET /api/admin/audit.csv` (every match, oldest
 * first, streamed). Exports are themselves recorded (`audit.exported`):
 * the log holds addresses and who did what.
 */
export class AuditService {
  constructor(private readonly audit: AuditRepository) {}

  async search({ page, pageSize, ...query }: AuditPageQuery): Promise<AuditPage> {
    const { items, total } = await this.audit.list({ ...filtersOf(query), limit: pageSize, offset: (page - 1) * pageSize });
    return { items, total, page, pageSize };
  }

  async exportCsv(query: AuditQuery, actor: AuditActor, now = new Date()): Promise<CsvDownload> {
    const filters = filtersOf(query);
    await this.audit.record({ action: 'audit.exported', actorId: actor.actorId, ip: actor.ip ?? null, details: { filters: describeFilters(filters) } });
    const csv = csvStream({ columns: AUDIT_CSV_COLUMNS });
    const rows = Readable.from(csvRows(this.audit.entries(filters)));
    // An error part-way destroys `csv` with it; the HTTP layer then cuts the response.
    pipeline(rows, csv).catch(() => undefined);
    return { filename: `slidebank-audit-${now.toISOString().replace(/[:.]/g, '-')}.csv`, stream: csv };
  }
}

async function* csvRows(entries: AsyncIterable<AuditEntry>): AsyncGenerator<Record<(typeof AUDIT_CSV_COLUMNS)[number], string | number | null>> {
  for await (const entry of entries) {
    yield {
      id: entry.id,
      at: entry.at.toISOString(),
      action: entry.action,
      actor_id: entry.actorId,
      actor_email: entry.actorEmail,
      subject_type: entry.subjectType,
      subject_id: entry.subjectId,
      ip: entry.ip,
      details: JSON.stringify(entry.details),
    };
  }
}

/** The repository's filters: only those given. */
function filtersOf({ action, actor, subjectType, subjectId, from, to }: AuditQuery): AuditFilters {
  const filters: AuditFilters = {};
  if (action !== undefined) filters.action = action;
  if (actor !== undefined) filters.actorId = actor;
  if (subjectType !== undefined) filters.subjectType = subjectType;
  if (subjectId !== undefined) filters.subjectId = subjectId;
  if (from !== undefined) filters.from = from;
  if (to !== undefined) filters.to = to;
  return filters;
}

function describeFilters(filters: AuditFilters): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(filters).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : (value as string | number)]),
  );
}
