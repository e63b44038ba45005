import type { ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { loadConfig, type Config } from '../../server/config/index.js';
import { createApp } from '../../server/http/app.js';
import { listen } from '../../server/http/server.js';
import type { Logger } from '../../server/logging.js';
import { packageRoot } from '../../server/package-info.js';
import { createQueueWorker } from '../../server/queue/index.js';
import { createServices, type Services } from '../../server/services.js';
import { createMigratedTestDatabase, type TestDatabase } from './database.js';
import { memoryLogger } from './logs.js';

/** The application in the test's process with a toolbox queue worker beside it, once started. */
export interface QueueSite {
  services: Services;
  /** The address of a path on the running application. */
  url(pathname: string): string;
  database: TestDatabase;
}

/**
 * For browser tests of the toolbox: a folder of the test's own, a migrated
 * database and the configuration, to prepare slides with; then `start()`
 * serves the application with a queue worker polling every 0.2 s. The portal
 * is built from the current sources into the test's folder, so that a stale
 * web/dist cannot hide a change. Everything is undone at the test's end.
 */
export async function queueApp(t: ExecutionContext, name: string): Promise<{ root: string; database: TestDatabase; config: Config; log: Logger; start(): Promise<QueueSite> }> {
  const root = await mkdtemp(path.join(os.tmpdir(), `slidebank-${name}-`));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const webRoot = path.join(root, 'web');
  await promisify(execFile)(process.execPath, [path.join(packageRoot, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'web', '--outDir', webRoot, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: packageRoot,
    maxBuffer: 16 * 1024 * 1024,
  });
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_AUTH_SESSION_SECRET: `${name}-session-secret-of-32-characters-at-least`, SLIDEBANK_QUEUE_POLL_SECONDS: '0.2' },
  });
  const { log } = memoryLogger('warn');

  async function start(): Promise<QueueSite> {
    const services = createServices(config, database.db, log);
    const http = await listen(createApp({ config, log, db: database.db, services, webRoot }), { port: 0, host: '127.0.0.1', log });
    const worker = createQueueWorker(config, database.db, log);
    const working = worker.run();
    t.teardown(async () => {
      worker.stop();
      await working;
      await http.close(1000);
      await services.close();
    });
    return { services, url: (pathname) => `${http.url}${pathname}`, database };
  }
  return { root, database, config, log, start };
}
