import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { badRequest } from '../errors.js';
import { csvStream } from '../lib/csv.js';
import type { AuditActor } from './audit-log.js';
import { AUDIT_LIMITS, type AuditEntry, type AuditFilters, type AuditRepository } from './audit.repository.js';

/** Query parameters as Koa parses them. */
export type QueryParameters = Record<string, string | string[] | undefined>;

export interface AuditPage {
  items: AuditEntry[];
  total: number;
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

  async search(query: QueryParameters): Promise<AuditPage> {
    const { filters, page, pageSize } = parseAuditQuery(query, { paged: true });
    const { items, total } = await this.audit.list({ ...filters, limit: pageSize, offset: (page - 1) * pageSize });
    return { items, total, page, pageSize };
  }

  async exportCsv(query: QueryParameters, actor: AuditActor, now = new Date()): Promise<CsvDownload> {
    const { filters } = parseAuditQuery(query, { paged: false });
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

function describeFilters(filters: AuditFilters): Record<string, string | number> {
  return Object.fromEntries(
    Object.entries(filters).map(([key, value]) => [key, value instanceof Date ? value.toISOString() : (value as string | number)]),
  );
}

const once = (parameter: string) =>
  z.string({ error: (issue) => (Array.isArray(issue.input) ? `${parameter} is given more than once; give it once` : `${parameter} must be text`) });

const wholeNumber = (parameter: string, min: number, max: number) =>
  once(parameter)
    .regex(/^\d{1,10}$/, `${parameter} must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${parameter} must be a whole number from ${min} to ${max}`);

const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** A UTC day (`2026-11-29`) or an instant with its zone (`2026-11-29T08:00:00+09:00`). A day as `to` means the end of that day. */
const instant = (parameter: 'from' | 'to') =>
  once(parameter)
    .refine((text) => DAY.test(text) || INSTANT.test(text), `${parameter} must be a date (2026-11-29, a UTC day) or a time with its zone (2026-11-29T08:00:00Z)`)
    .transform((text, ctx) => {
      const date = new Date(DAY.test(text) ? `${text}T00:00:00Z` : text);
      // Date accepts 2026-02-30 as 2 March; the calendar day must exist as written.
      const day = text.slice(0, 10);
      if (Number.isNaN(date.getTime()) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
        ctx.addIssue({ code: 'custom', message: `${parameter} is not a real date: ${text}` });
        return z.NEVER;
      }
      if (parameter === 'to' && DAY.test(text)) date.setUTCDate(date.getUTCDate() + 1);
      return date;
    });

const filterShape = {
  action: once('action').regex(
    /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$/,
    'action must be an action name such as dua.approved, or a family such as dua.*',
  ).max(AUDIT_LIMITS.action, `action is at most ${AUDIT_LIMITS.action} characters`),
  actor: wholeNumber('actor', 1, 4_294_967_295),
  subjectType: once('subjectType').min(1, 'subjectType is empty').max(AUDIT_LIMITS.subjectType, `subjectType is at most ${AUDIT_LIMITS.subjectType} characters`),
  subjectId: once('subjectId').min(1, 'subjectId is empty').max(AUDIT_LIMITS.subjectId, `subjectId is at most ${AUDIT_LIMITS.subjectId} characters`),
  from: instant('from'),
  to: instant('to'),
};
const pagedShape = {
  ...filterShape,
  page: wholeNumber('page', 1, 1_000_000_000),
  pageSize: wholeNumber('pageSize', 1, AUDIT_PAGE_SIZE.max),
};

/** Parse the audit query; every problem is reported at once as a 400 `invalid_query` with `details.problems`. */
export function parseAuditQuery(query: QueryParameters, { paged }: { paged: boolean }): { filters: AuditFilters; page: number; pageSize: number } {
  const shape = paged ? pagedShape : filterShape;
  const parsed = z.strictObject(shape).partial().safeParse({ ...query });
  if (!parsed.success) {
    const allowed = Object.keys(shape).join(', ');
    const problems = parsed.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ parameter: key, message: `${key} is not an audit query parameter; use ${allowed}` }))
        : [{ parameter: String(issue.path[0] ?? ''), message: issue.message }],
    );
    throw badRequest('invalid_query', problems.map((p) => p.message).join('; '), { problems });
  }
  const { action, actor, subjectType, subjectId, from, to } = parsed.data;
  if (from && to && from >= to) {
    throw badRequest('invalid_query', 'from must be before to', { problems: [{ parameter: 'from', message: 'from must be before to' }] });
  }
  const filters: AuditFilters = {};
  if (action !== undefined) filters.action = action;
  if (actor !== undefined) filters.actorId = actor;
  if (subjectType !== undefined) filters.subjectType = subjectType;
  if (subjectId !== undefined) filters.subjectId = subjectId;
  if (from !== undefined) filters.from = from;
  if (to !== undefined) filters.to = to;
  const data = parsed.data as { page?: number; pageSize?: number };
  return { filters, page: data.page ?? 1, pageSize: data.pageSize ?? AUDIT_PAGE_SIZE.default };
}
