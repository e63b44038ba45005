import type { Context } from 'koa';
import type { AuditActor } from '../audit/audit-log.js';
import { requesterOf } from './requester.js';

/**
 * Who acts in this request, for the services that record what they do: the
 * user the authenticate middleware resolved (session or token; null when
 * anonymous) and the client address (`ctx.ip`, which honours X-Forwarded-For
 * only when http.trustProxy is set).
 */
export function actorOf(ctx: Context): AuditActor {
  return { actorId: requesterOf(ctx).user?.id ?? null, ip: ctx.ip || null };
}
