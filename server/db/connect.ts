import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import knexFactory, { type Knex } from 'knex';
import { describeDatabase, type DatabaseTarget } from '../config/index.js';
import { ExitCode, FatalError } from '../errors.js';
import type { Logger } from '../logging.js';
import { knexConfigFor, type DialectName } from './dialect.js';
import { failOverBetween } from './failover.js';
import { retryTransactions } from './transaction.js';

export interface Database {
  knex: Knex;
  dialect: DialectName;
  target: DatabaseTarget;
  /** Password-free, for logs and messages. */
  description: string;
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  poolMax?: number;
  /** How long one query may wait for a pooled connection. */
  acquireTimeoutMs?: number;
  /** Where knex's own messages go; connection failures are reported by waitForDatabase, so they are debug here. */
  log?: Logger;
}

/** Create the knex instance for a target. Nothing is contacted until the first query. */
export function openDatabase(target: DatabaseTarget, options: OpenDatabaseOptions = {}): Database {
  if (target.client === 'sqlite') mkdirSync(path.dirname(target.filename), { recursive: true });
  const log = options.log;
  const knex = knexFactory({
    ...knexConfigFor(target, { poolMax: options.poolMax ?? 10, acquireTimeoutMs: options.acquireTimeoutMs ?? 10_000 }),
    log: {
      debug: (message: unknown) => log?.trace({ knex: message }, 'knex'),
      warn: (message: unknown) => log?.debug({ knex: String(message) }, 'knex warning'),
      error: (message: unknown) => log?.error({ knex: String(message) }, 'knex error'),
      deprecate: (method: string, alternative: string) => log?.warn(`knex: ${method} is deprecated; use ${alternative}`),
    },
  });
  retryTransactions(knex, {
    retries: 5,
    firstDelayMs: 20,
    onRetry: (error, attempt) => log?.info({ attempt, reason: (error as Error).message.split('\n')[0] }, 'transaction rolled back by the database; running it again'),
  });
  if (target.client === 'mariadb' && target.failover && !target.socketPath) failOverBetween(knex, [target, ...target.failover], log);
  let closed: Promise<void> | undefined;
  return {
    knex,
    dialect: target.client,
    target,
    description: describeDatabase(target),
    close: () => (closed ??= knex.destroy()),
  };
}

export interface WaitOptions {
  /** Give up after this long; 0 means try once. */
  timeoutMs: number;
  log?: Logger;
}

/**
 * Wait until the database answers a query. Transient failures (MariaDB not up
 * yet, network) are retried with exponential back-off until the deadline;
 * failures that waiting cannot fix (wrong password, no such database, a file
 * that is not SQLite) end at once. Either way the FatalError says what to do.
 */
export async function waitForDatabase(db: Database, { timeoutMs, log }: WaitOptions): Promise<void> {
  const started = Date.now();
  let delay = 250;
  for (let attempt = 1; ; attempt++) {
    try {
      await db.knex.raw('select 1 as ok');
      if (attempt > 1) log?.info({ attempt }, 'database reachable');
      return;
    } catch (error) {
      const problem = classifyConnectError(db, error);
      const elapsed = Date.now() - started;
      if (!problem.transient || elapsed + delay > timeoutMs) {
        const waited = problem.transient && timeoutMs > 0 ? ` after ${Math.round(elapsed / 1000)} s` : '';
        throw new FatalError(ExitCode.database, `database: ${problem.message}${waited}. ${problem.advice}`, { cause: error });
      }
      log?.warn({ attempt, retryInMs: delay, reason: problem.message }, 'database not reachable yet; retrying');
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    }
  }
}

interface ConnectProblem {
  transient: boolean;
  message: string;
  advice: string;
}

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE',
  'ER_CONNECTION_TIMEOUT', 'ER_SOCKET_UNEXPECTED_CLOSE', 'ER_GET_CONNECTION_TIMEOUT', 'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN', 'ER_SOCKET_TIMEOUT',
]);

export function classifyConnectError(db: Database, error: unknown): ConnectProblem {
  const err = error as { code?: string; message?: string; name?: string };
  const code = err.code ?? '';
  const reason = (err.message ?? String(error)).split('\n')[0]!;
  const target = db.target;

  if (target.client === 'sqlite') {
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
      return {
        transient: false,
        message: `${target.filename} is not a usable SQLite database (${reason})`,
        advice: 'Restore it from a backup, or move it aside to start with an empty database',
      };
    }
    if (code === 'SQLITE_CANTOPEN' || code === 'SQLITE_READONLY' || code === 'EACCES') {
      return {
        transient: false,
        message: `cannot open ${target.filename} for writing (${reason})`,
        advice: 'Check that the folder exists and the service user may write to it, or set DATABASE_URL',
      };
    }
    return { transient: false, message: `${target.filename}: ${reason}`, advice: 'Check DATABASE_URL' };
  }

  const where = target.socketPath ?? `${target.host}:${target.port}`;
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === 'ER_DBACCESS_DENIED_ERROR') {
    return {
      transient: false,
      message: `MariaDB at ${where} refused user "${target.user}" (${reason})`,
      advice: 'Check the user and password in DATABASE_URL and the grants on the database',
    };
  }
  if (code === 'ER_BAD_DB_ERROR') {
    return {
      transient: false,
      message: `MariaDB at ${where} has no database "${target.database}"`,
      advice: `Create it (CREATE DATABASE \`${target.database}\` CHARACTER SET utf8mb4) or correct DATABASE_URL`,
    };
  }
  if (code === 'ENOTFOUND') {
    return { transient: false, message: `the host "${target.host}" is unknown`, advice: 'Correct the host in DATABASE_URL' };
  }
  if (TRANSIENT_CODES.has(code) || err.name === 'KnexTimeoutError') {
    return {
      transient: true,
      message: `cannot reach MariaDB at ${where} (${reason})`,
      advice: 'Start MariaDB, or correct DATABASE_URL',
    };
  }
  return { transient: false, message: `MariaDB at ${where}: ${reason}`, advice: 'Check the database server and DATABASE_URL' };
}
