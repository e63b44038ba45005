import { z } from 'zod';
import { AUDIT_LIMITS, AUDIT_PAGE_SIZE, auditPage } from '../../audit/index.js';
import { adminOnly } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idQuery, textQuery, wholeQuery } from '../params.js';
import { route } from '../route.js';

/** The audit log for administrators: a page at a time as JSON, or every match as a CSV download (itself audited). */

const ACTION_FILTER = /^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*(\.\*)?$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** A UTC day (`2026-11-29`) or an instant with its zone (`2026-11-29T08:00:00+09:00`). A day as `to` means the end of that day. */
function instant(name: 'from' | 'to') {
  return textQuery(name)
    .transform((text, ctx) => {
      if (text === undefined) return undefined;
      if (!DAY.test(text) && !INSTANT.test(text)) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a date (2026-11-29, a UTC day) or a time with its zone (2026-11-29T08:00:00Z)` });
        return z.NEVER;
      }
      const date = new Date(DAY.test(text) ? `${text}T00:00:00Z` : text);
      // Date accepts 2026-02-30 as 2 March; the calendar day must exist as written.
      const day = text.slice(0, 10);
      if (Number.isNaN(date.getTime()) || new Date(`${day}T00:00:00Z`).toISOString().slice(0, 10) !== day) {
        ctx.addIssue({ code: 'custom', message: `${name} is not a real date: ${text}` });
        return z.NEVER;
      }
      if (name === 'to' && DAY.test(text)) date.setUTCDate(date.getUTCDate() + 1);
      return date;
    })
    .meta({ description: name === 'from' ? 'Events at or after: a UTC day (2026-11-29) or a time with its zone' : 'Events before: a time with its zone, or a UTC day (up to its end)' });
}

const filters = {
  action: textQuery('action', AUDIT_LIMITS.action)
    .refine((text) => text === undefined || ACTION_FILTER.test(text), 'action must be an action name such as dua.approved, or a family such as dua.*')
    .meta({ description: 'An action (dua.approved) or a family of them (dua.*)' }),
  actor: idQuery('actor').optional().meta({ description: "The acting user's id" }),
  subjectType: textQuery('subjectType', AUDIT_LIMITS.subjectType),
  subjectId: textQuery('subjectId', AUDIT_LIMITS.subjectId),
  from: instant('from'),
  to: instant('to'),
};

const inOrder = (query: { from?: Date; to?: Date }) => !(query.from && query.to && query.from >= query.to);
const fromBeforeTo = { message: 'from must be before to', path: ['from'] };

const pageQuery = z
  .strictObject({
    ...filters,
    page: wholeQuery('page', 1, 1, 1_000_000_000),
    pageSize: wholeQuery('pageSize', AUDIT_PAGE_SIZE.default, 1, AUDIT_PAGE_SIZE.max),
  })
  .refine(inOrder, fromBeforeTo);
const exportQuery = z.strictObject(filters).refine(inOrder, fromBeforeTo);

const tag = 'Administration';

export const auditRoutes = [
  route({
    method: 'get',
    path: '/api/admin/audit',
    tag,
    summary: 'The audit log, newest first, filtered and a page at a time',
    access: adminOnly,
    query: pageQuery,
    before: [noStore],
    response: { description: 'A page of audit events', schema: auditPage },
    handle: ({ query }, ctx) => ctx.services.audit.search(query),
  }),
  route({
    method: 'get',
    path: '/api/admin/audit.csv',
    tag,
    summary: 'Every audit event matching the filters, oldest first, as a CSV download; the export is itself audited',
    access: adminOnly,
    query: exportQuery,
    before: [noStore],
    response: { description: 'A CSV file with a header row; cells that a spreadsheet would take for formulas start with a quote', contentType: 'text/csv; charset=utf-8' },
    handle: async ({ query }, ctx) => {
      const download = await ctx.services.audit.exportCsv(query, actorOf(ctx));
      ctx.set('Content-Disposition', `attachment; filename="${download.filename}"`);
      ctx.type = 'text/csv; charset=utf-8';
      // Once rows are flowing the status is sent; a failure can only cut the response, so it is logged here.
      download.stream.once('error', (error) => ctx.log.error({ err: error }, 'audit export failed part-way; the response was cut'));
      ctx.body = download.stream;
    },
  }),
];
