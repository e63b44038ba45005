import { healthDetails } from '../../metrics/index.js';
import { operatorOnly } from '../access.js';
import { noStore } from '../middleware/cache-control.js';
import { route } from '../route.js';

/**
 * For operators (a client address in `metrics.allow`, loopback by default, or
 * an administrator with a bearer token, as Prometheus sends it, or a session):
 * the Prometheus metrics and the health details. Scrapers may add query
 * parameters of their own: the query is not read.
 */
export const metricsRoutes = [
  route({
    method: 'get',
    path: '/metrics',
    tag: 'Operations',
    summary: 'Prometheus metrics: tile latencies, caches, downloads, agreements, accounts, scheduled and toolbox jobs, the process',
    description: 'For a client address in metrics.allow (loopback by default) or an administrator, by token as Prometheus sends it or by session; anyone else gets 403 operator_only. The metrics are listed in [operations.md](operations.md#monitoring).',
    access: operatorOnly,
    before: [noStore],
    response: { description: 'The Prometheus text format', contentType: 'text/plain; version=0.0.4; charset=utf-8' },
    handle: async (_input, ctx) => {
      const { metrics } = ctx.services;
      ctx.type = metrics.contentType;
      ctx.body = await metrics.text();
    },
  }),
  route({
    method: 'get',
    path: '/healthz/details',
    tag: 'Operations',
    summary: 'The database, each data folder (present, writable, own mount, free space), job runs, the toolbox queue, and the tile engine\'s fast paths (scaled JPEG decoding and its libjpeg-turbo, page-cache reads)',
    description: 'Answers 503 with the same body when the database is down.',
    access: operatorOnly,
    before: [noStore],
    response: { description: 'The details (status ok or degraded)', schema: healthDetails },
    handle: async (_input, ctx) => {
      const details = await ctx.services.health.details();
      ctx.status = details.status === 'unavailable' ? 503 : 200;
      return details;
    },
  }),
];
