import { setTimeout as sleep } from 'node:timers/promises';
import type { Knex } from 'knex';

/**
 * An open database transaction, as a service hands it from one repository
 * call to the next so that their writes (and the audit record of them)
 * commit or roll back together. Repositories open it; services only pass it
 * on, never query it: knex stays in the repositories and in server/db/.
 */
export type Transaction = Knex.Transaction;

/** Where a repository call runs: an open transaction, or the database itself when the caller has none. */
export type Queryable = Knex;

/**
 * Errors after which the whole transaction was rolled back by the server and
 * may simply run again: an InnoDB deadlock, and on Galera a write set that
 * lost certification against another node's (reported as a deadlock, at any
 * statement or at COMMIT); a lock wait that timed out; a Galera node that is
 * not (yet) part of the primary component; SQLite's busy writer lock.
 */
const CONFLICT_CODES = new Set(['ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'ER_UNKNOWN_COM_ERROR', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT']);
const CONFLICT_ERRNOS = new Set([1213, 1205, 1047]);

/** The connection went away: whatever had not been committed was rolled back, but a COMMIT in flight may or may not have happened. */
const CONNECTION_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ER_SOCKET_UNEXPECTED_CLOSE', 'ER_CONNECTION_ALREADY_CLOSED',
  'ER_CMD_CONNECTION_CLOSED', 'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED', 'ER_GET_CONNECTION_TIMEOUT', 'PROTOCOL_CONNECTION_LOST',
]);
const CONNECTION_ERRNOS = new Set([1053, 1927, 2006, 2013, 45009, 45012, 45028]);

function codes(error: unknown): { code: string; errno: number } {
  const err = error as { code?: unknown; errno?: unknown } | null;
  return { code: typeof err?.code === 'string' ? err.code : '', errno: typeof err?.errno === 'number' ? err.errno : 0 };
}

/** Whether the server rolled the transaction back because of a conflict with another one, so that running it again is the remedy. */
export function isTransactionConflict(error: unknown): boolean {
  const { code, errno } = codes(error);
  return CONFLICT_CODES.has(code) || CONFLICT_ERRNOS.has(errno);
}

/** Whether the error is the loss of the connection to the database server (a node stopped or restarting). */
export function isConnectionLost(error: unknown): boolean {
  const { code, errno } = codes(error);
  return CONNECTION_CODES.has(code) || CONNECTION_ERRNOS.has(errno) || (error as Error | null)?.name === 'KnexTimeoutError';
}

export interface RetryPolicy {
  /** Runs after the first; the work runs at most `1 + retries` times. */
  retries: number;
  /** Wait before the first retry; doubled each time, with jitter so that two losers do not collide again. */
  firstDelayMs: number;
  /** Told of each retry, for the log. */
  onRetry?: (error: unknown, attempt: number) => void;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, firstDelayMs: 20 };

/**
 * Run `attempt` (one whole transaction, opened and committed inside it) and
 * run it again when it fails in a way that left nothing behind: a conflict
 * (the server rolled it back), or a lost connection before the commit was
 * sent (`committing()` false). A connection lost during COMMIT is not
 * retried, since the commit may have happened; the error goes to the caller.
 * Bounded by `policy.retries`; the work must have no effect outside the
 * transaction, which is what makes running it again safe.
 */
export async function retryTransaction<T>(
  attempt: (state: { committing: boolean }) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
): Promise<T> {
  let delayMs = policy.firstDelayMs;
  for (let run = 1; ; run++) {
    const state = { committing: false };
    try {
      return await attempt(state);
    } catch (error) {
      const again = isTransactionConflict(error) || (isConnectionLost(error) && !state.committing);
      if (!again || run > policy.retries) throw error;
      policy.onRetry?.(error, run);
      await sleep(delayMs / 2 + Math.random() * delayMs);
      delayMs *= 2;
    }
  }
}

/**
 * Run one statement that may safely run twice (a conditional update such as
 * "finish this job if this worker still holds it") again after a conflict or
 * a lost connection, whether or not the first try was committed.
 */
export function retryIdempotent<T>(work: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY_POLICY): Promise<T> {
  return retryTransaction(() => work(), policy);
}

type TransactionCallback = (trx: Knex.Transaction) => unknown;

/**
 * Make every `knex.transaction(callback)` on this instance retry as
 * `retryTransaction` does. Transactions are opened in many repositories; this
 * covers them all in one place. Nested transactions (savepoints, opened on a
 * `trx`) are not retried on their own: the outermost transaction is.
 */
export function retryTransactions(knex: Knex, policy: RetryPolicy = DEFAULT_RETRY_POLICY): void {
  const open = knex.transaction.bind(knex) as (...args: unknown[]) => unknown;
  const retrying = (callback?: unknown, config?: Knex.TransactionConfig) => {
    // Without a callback the caller commits by hand; that form is not retried.
    if (typeof callback !== 'function') return open(callback, config);
    return retryTransaction(
      (state) =>
        open(async (trx: Knex.Transaction) => {
          const result: unknown = await (callback as TransactionCallback)(trx);
          // From here knex sends COMMIT: a lost connection now leaves the outcome unknown.
          state.committing = true;
          return result;
        }, config) as Promise<unknown>,
      policy,
    );
  };
  // knex defines the method read-only but configurable.
  Object.defineProperty(knex, 'transaction', { value: retrying, writable: false, enumerable: false, configurable: true });
}
