import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { Database } from '../../db/index.js';
import { AppError } from '../../errors.js';
import { healthDetails, type AddressAllowList, type AppMetrics, type MetricsRepository } from '../../metrics/index.js';
import { requesterOf } from '../middleware/permissions.js';

export interface MetricsRouteOptions {
  /** config `metrics.allow`: client addresses that may read without a token. */
  allow: AddressAllowList;
  /** The data folders whose state /healthz/details reports (config `paths`). */
  folders: Record<string, string>;
}

/**
 * For operators:
 * - `GET /metrics`: Prometheus text format;
 * - `GET /healthz/details`: database, data folders (present, writable, own mount, free space) and job runs as JSON.
 *
 * Access: a client address in `metrics.allow` (loopback by default), or an
 * administrator (a bearer token, as Prometheus sends it, or a session); anybody else 403.
 */
export function metricsRoutes(metrics: AppMetrics, db: Database, repository: MetricsRepository, { allow, folders }: MetricsRouteOptions): Router {
  const router = new Router();
  const operator = allowedOperator(allow);
  router.get('/metrics', operator, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = metrics.contentType;
    ctx.body = await metrics.text();
  });
  router.get('/healthz/details', operator, async (ctx) => {
    const details = await healthDetails(db, repository, folders);
    ctx.set('Cache-Control', 'no-store');
    ctx.status = details.status === 'unavailable' ? 503 : 200;
    ctx.body = details;
  });
  return router;
}

function allowedOperator(allow: AddressAllowList): Middleware {
  return (ctx: Context, next) => {
    if (allow.allows(ctx.ip) || requesterOf(ctx).roles.includes('admin')) return next();
    throw new AppError(403, 'metrics_forbidden', 'Metrics and health details are for operators: call from an address in metrics.allow or as an administrator');
  };
}
