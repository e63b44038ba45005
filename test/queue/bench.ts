import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { UsersRepository, type User } from '../../server/access/users.repository.js';
import type { SlideRecord } from '../../server/catalog/slides.repository.js';
import { loadConfig, type Config } from '../../server/config/index.js';
import { packageRoot } from '../../server/package-info.js';
import { createQueueWorker, QueueRepository, type QueueWorker } from '../../server/queue/index.js';
import { createMigratedTestDatabase, type TestDatabase } from '../support/database.js';
import { memoryLogger, type LogLine } from '../support/logs.js';
import { makeSlide, registerSlide } from '../support/slides.js';

export interface QueueBench {
  root: string;
  config: Config;
  database: TestDatabase;
  repository: QueueRepository;
  logs: LogLine[];
  worker(id?: string): QueueWorker;
  slide(options?: { width?: number; height?: number; seed?: number }): Promise<SlideRecord & { svs: string; xml: string }>;
  user(email?: string): Promise<User>;
}

let users = 0;

/** The queue on a migrated test database, with its data folder in a temporary folder and a worker factory. */
export async function queueBench(t: { teardown(fn: () => Promise<void> | void): void }, env: Record<string, string> = {}): Promise<QueueBench> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-queue-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_QUEUE_RETRY_SECONDS: '1', ...env },
  });
  const { log, lines } = memoryLogger();
  return {
    root,
    config,
    database,
    repository: new QueueRepository(database.db.knex, database.db.dialect),
    logs: lines,
    worker: (id) => createQueueWorker(config, database.db, log, id ? { id } : {}),
    async slide({ width = 1600, height = 1200, seed = 3 } = {}) {
      const { svs, xml } = await makeSlide({ width, height, levels: 2, seed, out: path.join(root, `slide-${seed}-${width}`) });
      return { ...(await registerSlide(database.db, svs)), svs, xml };
    },
    async user(email = `queue-user-${++users}@hospital.example`) {
      return new UsersRepository(database.db.knex).create({
        email,
        name: 'Queue tester',
        institution: 'Test Hospital',
        passwordHash: 'x',
        level: 'L2',
        levelExpiresAt: null,
        roles: [],
        emailConfirmedAt: new Date(),
      });
    },
  };
}
