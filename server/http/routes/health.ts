import Router from '@koa/router';
import { checkDatabase, type Database } from '../../db/index.js';
import { version } from '../../package-info.js';

const DATABASE_CHECK_TIMEOUT_MS = 2000;

/**
 * `GET /healthz`: 200 when the server and its database answer, 503 when the
 * database does not. Public, so it says what is down but not why; the reason
 * goes to the log.
 */
export function healthRoutes(db: Database, startedAt: Date): Router {
  const router = new Router();
  router.get('/healthz', async (ctx) => {
    const database = await checkDatabase(db, DATABASE_CHECK_TIMEOUT_MS);
    if (database.error) ctx.log.warn({ reason: database.error }, 'health check: database down');
    ctx.set('Cache-Control', 'no-store');
    ctx.status = database.status === 'up' ? 200 : 503;
    ctx.body = {
      status: database.status === 'up' ? 'ok' : 'unavailable',
      version,
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      database: { status: database.status, dialect: database.dialect, latencyMs: database.latencyMs },
    };
  });
  return router;
}
