import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { errorHandler } from './middleware/error-handler.js';
import { requestContext } from './middleware/request-context.js';
import { securityHeaders } from './middleware/security-headers.js';
import { healthRoutes } from './routes/health.js';
import { tileRoutes } from './routes/tiles.js';
import { overlayRoutes } from './routes/overlays.js';
import { slideRoutes } from './routes/slides.js';
import { auditRoutes } from './routes/audit.js';
import { apiRoutes } from './routes/index.js';
import { mountRoutes } from './route.js';
import type { Services } from '../services.js';
import { requireAdmin, requireLevel, requireStaff } from './middleware/permissions.js';
import { agreementRoutes } from './routes/agreements.js';
import { ingestRoutes } from './routes/ingest.js';
import { jobRoutes } from './routes/jobs.js';
import { annotationReviewRoutes } from './routes/annotation-review.js';
import { queueRoutes } from './routes/queue.js';
import { createAuthentication } from './middleware/authenticate.js';
import { createCsrf } from './middleware/csrf.js';
import { sessions } from './middleware/session.js';
import { accountRoutes } from './routes/account.js';
import { adminUserRoutes } from './routes/admin-users.js';
import { authRoutes } from './routes/auth.js';
import { tokenRoutes } from './routes/tokens.js';
import { downloadRoutes } from './routes/downloads.js';
import { siteRoutes } from './routes/site.js';
import { adminSlideRoutes } from './routes/admin-slides.js';
import { webApp } from './middleware/web-app.js';
import { packageRoot } from '../package-info.js';
import path from 'node:path';
import { AddressAllowList, AppMetrics, MetricsRepository } from '../metrics/index.js';
import { metricsRoutes } from './routes/metrics.js';

export interface AppDependencies {
  config: Config;
  log: Logger;
  db: Database;
  services: Services;
  startedAt?: Date;
  /** The built web portal (default `web/dist` in the package). */
  webRoot?: string;
}

/** The Koa application: shared middleware, then each area's routes, each declaring who may call it. */
export function createApp({ config, log, db, services, startedAt = new Date(), webRoot = path.join(packageRoot, 'web', 'dist') }: AppDependencies): Koa {
  const { access } = services;
  const app = new Koa({ proxy: config.http.trustProxy });
  // Errors are answered and logged by errorHandler; Koa's own stderr printing would duplicate them.
  app.silent = true;
  app.context.services = services;

  app.use(requestContext(log));
  const metricsRepository = new MetricsRepository(db.knex);
  const metrics = new AppMetrics({ tiles: services.tiles, downloads: services.downloads, repository: metricsRepository, log });
  // Outside the error handler, so that a failed tile request is timed with the status it was answered with.
  app.use(metrics.observeTiles);
  app.use(securityHeaders());
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: config.http.bodyLimit, encoding: 'utf-8' }));
  // Who is asking: the session (from the database) or a bearer token, resolved once; then CSRF checks on cookie-authenticated writes.
  const cookies = { keys: access.sessionKeys, maxAgeMs: config.auth.sessionHours * 3_600_000, secureCookies: config.http.secureCookies };
  app.use(sessions(app, access.sessionStore, cookies));
  const csrf = createCsrf({ ...cookies, publicUrl: config.mail.publicUrl });
  const authentication = createAuthentication(access.accounts, access.tokens, csrf);
  app.use(authentication.middleware);
  app.use(csrf.protect);

  const routers = [
    healthRoutes(db, startedAt),
    siteRoutes(services.site, services.exchange),
    metricsRoutes(metrics, db, metricsRepository, { allow: new AddressAllowList(config.metrics.allow), folders: { data: config.paths.data, slides: config.paths.slides, cache: config.paths.cache } }),
    overlayRoutes(services.overlays, services.slideAccess),
    tileRoutes(services.tiles, services.slideAccess),
    slideRoutes(services.catalog, services.slideAccess, services.annotations),
    authRoutes(access.accounts, authentication, csrf),
    accountRoutes(access.accounts, services.downloadHistory),
    tokenRoutes(access.tokens),
    adminUserRoutes(access.users),
    agreementRoutes(services.agreements),
    downloadRoutes(services.downloads, { requireDownloader: requireLevel('L2') }),
    ingestRoutes(services.ingestRecords, requireStaff()),
    adminSlideRoutes(services.slideStatus),
    auditRoutes(services.audit, requireAdmin),
    jobRoutes(services.jobs, requireAdmin),
    annotationReviewRoutes(services.annotationReview, services.slideRelease),
    queueRoutes(services.queue, services.slideAccess),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  const allow = new AddressAllowList(config.metrics.allow);
  const api = mountRoutes(apiRoutes, { operatorAddress: (ip) => allow.allows(ip) });
  app.use(api.routes());
  app.use(api.allowedMethods());
  // The web portal last: it only answers what no API router did.
  app.use(webApp(webRoot, log));
  return app;
}
