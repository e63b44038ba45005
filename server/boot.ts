import { accessSync, constants, mkdirSync } from 'node:fs';
import { ensureInitialAdmin, type InitialAdmin } from './access/initial-admin.js';
import { UsersRepository } from './access/users.repository.js';
import type { Config } from './config/index.js';
import { publicUrlWarning } from './config/public-url.js';
import { migrateToLatest, openDatabase, waitForDatabase, type Database } from './db/index.js';
import { ExitCode, FatalError } from './errors.js';
import { createApp } from './http/app.js';
import { listen, type HttpServer } from './http/server.js';
import type { Logger } from './logging.js';
import { version } from './package-info.js';
import { createIngestService } from './ingest/create.js';
import { createJobRuns, startScheduler } from './jobs/index.js';
import { seedDemoSlides } from './ingest/demo.js';
import { IngestRepository } from './ingest/ingest.repository.js';
import { ensureDefaultGuide } from './pages/index.js';
import { installDefaultAgreement } from './agreements/default-agreement.js';
import { PagesRepository } from './pages/pages.repository.js';
import { createServices } from './services.js';
import { ensureSiteKey } from './datasets/site-key.js';
import { startWorkerProcesses } from './queue/processes.js';

export interface Appliance {
  db: Database;
  http: HttpServer;
  /** Set on the first start of an empty installation. */
  initialAdmin?: InitialAdmin;
  /** Drain HTTP within the configured bound, then close the database. */
  stop(reason: string): Promise<void>;
}

/**
 * The boot sequence, in order: folders → database → migrations → first-start
 * data (initial admin, demo slides) → HTTP. Each step's duration is logged; the first failure stops the
 * boot with a FatalError that says what to do.
 */
export async function startAppliance(config: Config, log: Logger): Promise<Appliance> {
  const startedAt = new Date();
  const step = async <T>(name: string, work: () => Promise<T> | T): Promise<T> => {
    const t0 = performance.now();
    const result = await work();
    log.info({ step: name, ms: Math.round(performance.now() - t0) }, `boot: ${name}`);
    return result;
  };

  log.info({ version, database: config.database.target.client }, 'starting slidebank');
  await step('folders', () => prepareFolders(config));
  const db = openDatabase(config.database.target, { poolMax: config.database.poolMax, log });
  try {
    await step('database', () =>
      waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log }),
    );
    await step('migrations', () => migrateToLatest(db, { log }));
    const initialAdmin = await step('first start', () =>
      ensureInitialAdmin(new UsersRepository(db.knex), {
        email: config.initialAdmin.email,
        dataDir: config.paths.data,
        log,
      }),
    );
    await step('user guide', () => ensureDefaultGuide(new PagesRepository(db.knex)));
    await step('agreement', () => installDefaultAgreement(db, log));
    await step('site key', () => {
      const key = ensureSiteKey(config.paths.data);
      if (key.created) log.info({ file: key.file, publicKey: key.publicKey }, 'created the site signing key for export bags (GET /api/site shows its public half)');
    });
    if (config.demo) {
      await step('demo data', async () => {
        const service = createIngestService(config, db, log);
        return seedDemoSlides(service, new IngestRepository(db.knex), log);
      });
    }
    const services = createServices(config, db, log, { startedAt });
    const app = createApp({ config, log, db, services });
    const http = await step('http', () => listen(app, { port: config.port, host: config.host, log }));
    log.info({ url: http.url, database: db.description }, `slidebank ${version} listening on ${http.url}`);
    const publicUrlProblem = publicUrlWarning(config.mail.publicUrl, { host: config.host, port: http.port });
    if (publicUrlProblem) log.warn({ key: 'mail.publicUrl', publicUrl: config.mail.publicUrl, url: http.url }, publicUrlProblem);
    const scheduler = startScheduler(services.scheduledJobs, createJobRuns(db), config.jobs.timeZone, log);
    // Toolbox jobs run in processes of their own, so that they never hold up tile requests.
    const workers = config.queue.workers > 0 ? startWorkerProcesses(config.queue.workers, { databaseUrl: config.database.url, log }) : undefined;

    let stopping: Promise<void> | undefined;
    const stop = (reason: string) =>
      (stopping ??= (async () => {
        log.info({ reason }, 'shutting down: draining requests');
        const { cut } = await http.close(config.http.shutdownTimeoutSeconds * 1000);
        await scheduler.stop();
        await workers?.stop();
        await services.close();
        await db.close();
        log.info({ cut }, 'stopped');
      })());
    return { db, http, initialAdmin, stop };
  } catch (error) {
    await db.close();
    throw error;
  }
}

function prepareFolders(config: Config): void {
  for (const [key, folder] of Object.entries(config.paths)) {
    try {
      mkdirSync(folder, { recursive: true });
      accessSync(folder, constants.W_OK);
    } catch (error) {
      throw new FatalError(
        ExitCode.config,
        `paths.${key}: cannot use ${folder} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}). Create it writable for the service user or point SLIDEBANK_PATHS_${key.toUpperCase()} elsewhere`,
        { cause: error },
      );
    }
  }
}
