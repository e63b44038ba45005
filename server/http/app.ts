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
import type { TilesService } from '../tiles/tiles.service.js';
import type { SlideAccessPolicy } from '../access/slide-access.js';
import type { CatalogService } from '../catalog/catalog.service.js';
import { slideRoutes } from './routes/slides.js';

export interface AppDependencies {
  config: Config;
  log: Logger;
  db: Database;
  tiles: TilesService;
  slideAccess: SlideAccessPolicy;
  catalog: CatalogService;
  startedAt?: Date;
}

/** The Koa application: shared middleware, then each area's routes. */
export function createApp({ config, log, db, tiles, slideAccess, catalog, startedAt = new Date() }: AppDependencies): Koa {
  const app = new Koa({ proxy: config.http.trustProxy });
  // Errors are answered and logged by errorHandler; Koa's own stderr printing would duplicate them.
  app.silent = true;

  app.use(requestContext(log));
  app.use(securityHeaders());
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'], jsonLimit: config.http.bodyLimit, encoding: 'utf-8' }));

  for (const router of [healthRoutes(db, startedAt), tileRoutes(tiles, slideAccess), slideRoutes(catalog, slideAccess)]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
