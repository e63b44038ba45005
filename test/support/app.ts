import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type Koa from 'koa';
import { loadConfig, type Config } from '../../server/config/index.js';
import { createApp } from '../../server/http/app.js';
import { listen, type HttpServer } from '../../server/http/server.js';
import { packageRoot } from '../../server/package-info.js';
import { createServices, type Services } from '../../server/services.js';
import { createMigratedTestDatabase, type TestDatabase } from './database.js';
import { memoryLogger, type LogLine } from './logs.js';
import { RecordingAudit } from './recording-audit.js';
import { RecordingMailer } from './recording-mailer.js';

export interface TestApp {
  app: Koa;
  http: HttpServer;
  database: TestDatabase;
  services: Services;
  config: Config;
  logs: LogLine[];
  /** What the accounts services mailed and audited (test doubles; see recording-*.ts). */
  mailer: RecordingMailer;
  audit: RecordingAudit;
  url(pathname: string): string;
}

/**
 * The real application on a migrated test database, listening on a free
 * loopback port. `extend` may add middleware after the routes (tests use it to
 * raise errors the product's routes cannot be made to raise). Mail and the
 * accounts' audit events are recorded in memory (`mailer`, `audit`); the
 * session cookies are signed with a random key of the test's own.
 */
export async function startTestApp(
  t: { teardown(fn: () => Promise<void> | void): void },
  { env = {}, extend }: { env?: Record<string, string>; extend?: (app: Koa) => void } = {},
): Promise<TestApp> {
  const database = await createMigratedTestDatabase();
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: {
      DATABASE_URL: database.url,
      PORT: '0',
      SLIDEBANK_HOST: '127.0.0.1',
      SLIDEBANK_AUTH_SESSION_SECRET: randomBytes(32).toString('hex'),
      ...env,
    },
  });
  const { log, lines } = memoryLogger();
  const mailer = new RecordingMailer();
  const audit = new RecordingAudit();
  const services = createServices(config, database.db, log, { mailer, audit });
  const app = createApp({ config, log, db: database.db, services });
  extend?.(app);
  const http = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(async () => {
    await http.close(1000);
    await services.close();
    await database.drop();
  });
  return { app, http, database, services, config, logs: lines, mailer, audit, url: (pathname) => `${http.url}${pathname}` };
}
