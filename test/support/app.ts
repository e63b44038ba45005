import path from 'node:path';
import type Koa from 'koa';
import { loadConfig, type Config } from '../../server/config/index.js';
import { migrateToLatest } from '../../server/db/index.js';
import { createApp } from '../../server/http/app.js';
import { listen, type HttpServer } from '../../server/http/server.js';
import { packageRoot } from '../../server/package-info.js';
import { createServices, type Services } from '../../server/services.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { memoryLogger, type LogLine } from './logs.js';

export interface TestApp {
  app: Koa;
  http: HttpServer;
  database: TestDatabase;
  services: Services;
  config: Config;
  logs: LogLine[];
  url(pathname: string): string;
}

/**
 * The real application on a migrated test database, listening on a free
 * loopback port. `extend` may add middleware after the routes (tests use it to
 * raise errors the product's routes cannot be made to raise).
 */
export async function startTestApp(
  t: { teardown(fn: () => Promise<void> | void): void },
  { env = {}, extend }: { env?: Record<string, string>; extend?: (app: Koa) => void } = {},
): Promise<TestApp> {
  const database = await createTestDatabase();
  await migrateToLatest(database.db);
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, PORT: '0', SLIDEBANK_HOST: '127.0.0.1', ...env },
  });
  const { log, lines } = memoryLogger();
  const services = createServices(config, database.db, log);
  const app = createApp({ config, log, db: database.db, tiles: services.tiles, slideAccess: services.slideAccess, catalog: services.catalog });
  extend?.(app);
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(async () => {
    await http.close(1000);
    await services.close();
    await database.drop();
  });
  return { app, http, database, services, config, logs: lines, url: (pathname) => `${http.url}${pathname}` };
}
