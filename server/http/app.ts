import { bodyParser } from '@koa/bodyparser';
import Koa from 'koa';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { compression } from './middleware/compression.js';
import { dicomwebCors } from './middleware/dicomweb-cors.js';
import { errorHandler } from './middleware/error-handler.js';
import { requestContext } from './middleware/request-context.js';
import { securityHeaders } from './middleware/security-headers.js';
import { apiRoutes } from './routes/index.js';
import { mountRoutes } from './route.js';
import type { Services } from '../services.js';
import { sessions } from './middleware/session.js';
import { webApp } from './middleware/web-app.js';
import { tileCapability, unlessCapability } from './middleware/tile-capability.js';
import { packageRoot } from '../package-info.js';
import path from 'node:path';
import { AddressAllowList } from '../metrics/index.js';

export interface AppDependencies {
  config: Config;
  log: Logger;
  db: Database;
  services: Services;
  /** The built web portal (default `web/dist` in the package). */
  webRoot?: string;
}

/** The Koa application: shared middleware, then each area's routes, each declaring who may call it. */
export function createApp({ config, log, services, webRoot = path.join(packageRoot, 'web', 'dist') }: AppDependencies): Koa {
  const { access } = services;
  const app = new Koa({ proxy: config.http.trustProxy });
  // Errors are answered and logged by errorHandler; Koa's own stderr printing would duplicate them.
  app.silent = true;
  app.context.services = services;

  app.use(requestContext(log));
  // Outside the error handler, so that a failed tile request is timed with the status it was answered with.
  app.use(services.metrics.observeTiles);
  app.use(securityHeaders());
  // Outside the error handler, so that error answers are compressed like the rest.
  app.use(compression());
  // Before the error handler and authentication: error answers carry the CORS headers too, and preflights need no credentials.
  app.use(dicomwebCors(config.dicom.corsOrigins));
  app.use(errorHandler());
  // A slide's tiles asked for with a tile capability: admitted by it alone, without the database; the rest of this block is skipped for them.
  app.use(tileCapability(access.tileCapabilities));
  app.use(unlessCapability(bodyParser({ enableTypes: ['json'], jsonLimit: config.http.bodyLimit, encoding: 'utf-8' })));
  // Who is asking: the session (from the database) or a bearer token, resolved once; then CSRF checks on cookie-authenticated writes.
  const cookies = { keys: access.sessionKeys, maxAgeMs: config.auth.sessionHours * 3_600_000, secureCookies: config.http.secureCookies };
  app.use(unlessCapability(sessions(app, access.sessionStore, cookies)));
  app.use(unlessCapability(access.authentication.middleware));
  app.use(unlessCapability(access.csrf.protect));

  const allow = new AddressAllowList(config.metrics.allow);
  const api = mountRoutes(apiRoutes, { operatorAddress: (ip) => allow.allows(ip) });
  app.use(api.routes());
  app.use(api.allowedMethods());
  // The web portal last: it only answers what no API router did.
  app.use(webApp(webRoot, log));
  return app;
}
