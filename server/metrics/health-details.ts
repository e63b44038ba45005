import { constants } from 'node:fs';
import { access, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { checkDatabase, type Database, type DatabaseHealth } from '../db/index.js';
import type { MetricsRepository } from './metrics.repository.js';

const DATABASE_CHECK_TIMEOUT_MS = 2000;

export interface FolderHealth {
  path: string;
  status: 'ok' | 'missing' | 'read-only';
  /** True when the folder is the root of a file system of its own (an NFS or CephFS mount, a dedicated disk). */
  mountPoint: boolean | null;
  freeBytes: number | null;
  totalBytes: number | null;
  error?: string;
}

export interface HealthDetails {
  status: 'ok' | 'degraded' | 'unavailable';
  database: DatabaseHealth;
  folders: Record<string, FolderHealth>;
  jobs: { job: string; status: string; count: number }[];
  queue: { type: string; status: string; count: number }[];
}

/**
 * What an operator needs when something is wrong: the database round trip,
 * each data folder present, writable, whether it is its own mount, and its
 * free space, the scheduled jobs' run counts and the toolbox queue. Admin or metrics-allowed
 * callers only: it names server paths.
 */
export async function healthDetails(db: Database, repository: MetricsRepository, folders: Record<string, string>): Promise<HealthDetails> {
  const [database, checked] = await Promise.all([
    checkDatabase(db, DATABASE_CHECK_TIMEOUT_MS),
    Promise.all(Object.entries(folders).map(async ([name, folder]) => [name, await folderHealth(folder)] as const)),
  ]);
  const up = database.status === 'up';
  const jobs = up ? (await repository.jobRunsByStatus()).map(({ key, count }) => ({ ...key, count })) : [];
  const queue = up ? (await repository.queueJobsByStatus()).map(({ key, count }) => ({ ...key, count })) : [];
  const folderMap = Object.fromEntries(checked);
  const status = database.status !== 'up' ? 'unavailable' : checked.some(([, f]) => f.status !== 'ok') ? 'degraded' : 'ok';
  return { status, database, folders: folderMap, jobs, queue };
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
