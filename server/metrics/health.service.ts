import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { checkDatabase, type Database } from '../db/index.js';
import { version } from '../package-info.js';
import type { MetricsRepository } from './metrics.repository.js';
import type { FolderHealth, Health, HealthDetails, TileEngineHealth } from './views.js';

const DATABASE_CHECK_TIMEOUT_MS = 2000;

export interface HealthSources {
  db: Database;
  repository: MetricsRepository;
  /** The data folders whose state the details report, by configuration key (config `paths`). */
  folders: Record<string, string>;
  /** When the server started, for the uptime. */
  startedAt: Date;
  /** The tile engine's fast paths in this process (TilesService.enginePaths). */
  tiles?: () => TileEngineHealth;
}

/**
 * Whether the server is well: the public answer (`/healthz`, up or not and
 * never why) and what an operator needs when something is wrong (the
 * database round trip, each data folder present, writable, whether it is
 * its own mount, and its free space, the scheduled jobs' run counts, the
 * toolbox queue, and which of the tile engine's fast paths are in use).
 */
export class HealthService {
  constructor(private readonly sources: HealthSources) {}

  /** The public health, and why the database is down when it is (for the log, not the answer). */
  async summary(): Promise<{ health: Health; databaseProblem?: string }> {
    const { db, startedAt } = this.sources;
    const database = await checkDatabase(db, DATABASE_CHECK_TIMEOUT_MS);
    const health: Health = {
      status: database.status === 'up' ? 'ok' : 'unavailable',
      version,
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      database: { status: database.status, dialect: database.dialect, latencyMs: database.latencyMs },
    };
    return database.error === undefined ? { health } : { health, databaseProblem: database.error };
  }

  /** Operators only: it names server paths. */
  async details(): Promise<HealthDetails> {
    const { db, repository, folders } = this.sources;
    const [database, checked] = await Promise.all([
      checkDatabase(db, DATABASE_CHECK_TIMEOUT_MS),
      Promise.all(Object.entries(folders).map(async ([name, folder]) => [name, await folderHealth(folder)] as const)),
    ]);
    const up = database.status === 'up';
    const jobs = up ? (await repository.jobRunsByStatus()).map(({ key, count }) => ({ ...key, count })) : [];
    const queue = up ? (await repository.queueJobsByStatus()).map(({ key, count }) => ({ ...key, count })) : [];
    const status = !up ? 'unavailable' : checked.some(([, f]) => f.status !== 'ok') ? 'degraded' : 'ok';
    const tiles = this.sources.tiles?.();
    return { status, database, folders: Object.fromEntries(checked), jobs, queue, ...(tiles ? { tiles } : {}) };
  }
}

async function folderHealth(folder: string): Promise<FolderHealth> {
  const health: FolderHealth = { path: folder, status: 'ok', mountPoint: null, freeBytes: null, totalBytes: null };
  try {
    const [own, parent] = await Promise.all([stat(folder), stat(path.dirname(folder))]);
    health.mountPoint = own.dev !== parent.dev;
  } catch (error) {
    return { ...health, status: 'missing', error: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
  try {
    await access(folder, constants.W_OK);
  } catch (error) {
    health.status = 'read-only';
    health.error = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
  }
  const fs = await statfs(folder).catch(() => null);
  if (fs) {
    health.freeBytes = fs.bavail * fs.bsize;
    health.totalBytes = fs.blocks * fs.bsize;
  }
  return health;
}
