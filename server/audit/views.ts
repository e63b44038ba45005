import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';

/** One recorded event as administrators read it. */
export const auditEntry = z
  .object({
    id: z.number().int(),
    at: timestamp,
    action: z.string().meta({ description: 'A dotted name such as auth.login or dua.approved' }),
    actorId: z.number().int().nullable().meta({ description: 'Null for anonymous requests and scheduled jobs' }),
    actorEmail: z.string().nullable().meta({ description: "The actor's current address; null for anonymous events and deleted users" }),
    subjectType: z.string().nullable(),
    subjectId: z.string().nullable(),
    ip: z.string().nullable(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });

/** A page of the audit log, newest first. */
export const auditPage = z
  .object({ items: z.array(auditEntry), total: z.number().int(), page: z.number().int(), pageSize: z.number().int() })
  .meta({ id: 'AuditPage' });
export type AuditPage = z.infer<typeof auditPage>;
