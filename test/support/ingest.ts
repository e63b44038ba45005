import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../../server/config/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { IngestRepository } from '../../server/ingest/ingest.repository.js';
import type { IngestService } from '../../server/ingest/ingest.service.js';
import { packageRoot } from '../../server/package-info.js';
import { createMigratedTestDatabase, type TestDatabase } from './database.js';
import { memoryLogger } from './logs.js';

export interface IngestBench {
  config: Config;
  database: TestDatabase;
  service: IngestService;
  repository: IngestRepository;
  /** A folder of its own for the inputs. */
  inbox: string;
}

/** The ingest service on a migrated test database, with every path under a temporary data folder. */
export async function ingestBench(
  t: { teardown(fn: () => Promise<void> | void): void },
  env: Record<string, string> = {},
): Promise<IngestBench> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ingest-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), ...env },
  });
  const { log } = memoryLogger();
  const inbox = path.join(root, 'in');
  await mkdir(inbox, { recursive: true });
  return { config, database, service: createIngestService(config, database.db, log), repository: new IngestRepository(database.db.knex), inbox };
}
