import test from 'ava';
import { isConnectionLost, isTransactionConflict, retryTransaction, type RetryPolicy } from '../../../server/db/transaction.js';

/**
 * The retry rule on its own, with errors shaped as the mariadb driver and
 * Galera report them (code, errno); test/db/transaction-retry.test.ts makes
 * real deadlocks on a real server.
 */

const deadlock = () => Object.assign(new Error('Deadlock found when trying to get lock; try restarting transaction'), { code: 'ER_LOCK_DEADLOCK', errno: 1213 });
const connectionLost = () => Object.assign(new Error('socket has unexpectedly been closed'), { code: 'ER_SOCKET_UNEXPECTED_CLOSE', errno: 45009 });
const duplicate = () => Object.assign(new Error("Duplicate entry '1' for key 'PRIMARY'"), { code: 'ER_DUP_ENTRY', errno: 1062 });
const policy = (retried: unknown[]): RetryPolicy => ({ retries: 3, firstDelayMs: 1, onRetry: (error) => retried.push(error) });

test('a transaction rolled back by a conflict runs again until it commits', async (t) => {
  const retried: unknown[] = [];
  let runs = 0;
  const result = await retryTransaction(async () => {
    runs++;
    if (runs < 3) throw deadlock();
    return 'committed';
  }, policy(retried));
  t.is(result, 'committed');
  t.is(runs, 3);
  t.is(retried.length, 2);
});

test('retries are bounded: the last conflict reaches the caller', async (t) => {
  let runs = 0;
  const error = await t.throwsAsync(
    retryTransaction(async () => {
      runs++;
      throw deadlock();
    }, policy([])),
  );
  t.is((error as { code?: string }).code, 'ER_LOCK_DEADLOCK');
  t.is(runs, 4, 'the first run and three retries');
});

test('an error that running again would not cure is not retried', async (t) => {
  let runs = 0;
  await t.throwsAsync(
    retryTransaction(async () => {
      runs++;
      throw duplicate();
    }, policy([])),
    { message: /Duplicate entry/ },
  );
  t.is(runs, 1);
});

test('a lost connection is retried before the commit, but not while committing (the commit may have happened)', async (t) => {
  let runs = 0;
  t.is(
    await retryTransaction(async () => {
      runs++;
      if (runs === 1) throw connectionLost();
      return 'second run';
    }, policy([])),
    'second run',
  );
  runs = 0;
  await t.throwsAsync(
    retryTransaction(async (state) => {
      runs++;
      state.committing = true;
      throw connectionLost();
    }, policy([])),
    { message: /unexpectedly been closed/ },
  );
  t.is(runs, 1);
});

test('Galera and InnoDB conflicts and lost connections are told apart from other errors', (t) => {
  t.true(isTransactionConflict(deadlock()));
  t.true(isTransactionConflict({ errno: 1047, code: 'ER_UNKNOWN_COM_ERROR' }), 'WSREP has not yet prepared node for application use');
  t.true(isTransactionConflict({ code: 'SQLITE_BUSY' }));
  t.false(isTransactionConflict(duplicate()));
  t.true(isConnectionLost(connectionLost()));
  t.true(isConnectionLost({ code: 'ECONNREFUSED' }));
  t.false(isConnectionLost(deadlock()));
  t.false(isConnectionLost(null));
});
