// The queue's configuration keys: defaults, environment variables, and every bad value reported at once.
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../server/config/index.js';
import { FatalError } from '../../server/errors.js';
import { packageRoot } from '../../server/package-info.js';

const configDir = path.join(packageRoot, 'config');

test('defaults: one worker at nice 10 and idle I/O, 60 s leases, 3 attempts, a 2 s poll, 30 s first retry, preprocessing every 10 minutes; per-user quotas, a 4 h run time limit and output budgets', (t) => {
  const { config } = loadConfig({ configDir, env: {} });
  t.deepEqual(config.queue, {
    workers: 1,
    leaseSeconds: 60,
    maxAttempts: 3,
    pollSeconds: 2,
    retrySeconds: 30,
    maxQueuedPerUser: 20,
    maxRunningPerUser: 2,
    maxRunMinutes: 240,
    maxOutputCount: 1_000_000,
    maxOutputBytes: 16 * 1024 ** 3,
    workerNice: 10,
    workerIoPriority: 'idle',
  });
  t.is(config.jobs.preprocessSchedule, '*/10 * * * *');
  const { config: none } = loadConfig({ configDir, env: { SLIDEBANK_QUEUE_WORKERS: '0', SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '' } });
  t.is(none.queue.workers, 0);
  t.is(none.jobs.preprocessSchedule, '');
});

test('bad queue settings are all named at once', (t) => {
  const error = t.throws(
    () =>
      loadConfig({
        configDir,
        env: {
          SLIDEBANK_QUEUE_WORKERS: '-1',
          SLIDEBANK_QUEUE_LEASE_SECONDS: '0',
          SLIDEBANK_QUEUE_MAX_ATTEMPTS: '2.5',
          SLIDEBANK_QUEUE_POLL_SECONDS: 'often',
          SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: 'every ten minutes',
          SLIDEBANK_QUEUE_MAX_QUEUED_PER_USER: '-3',
          SLIDEBANK_QUEUE_MAX_RUN_MINUTES: 'forever',
          SLIDEBANK_QUEUE_MAX_OUTPUT_BYTES: '1.5',
        },
      }),
    { instanceOf: FatalError },
  );
  t.is(error.exitCode, 2);
  t.regex(error.message, /queue\.workers \(env SLIDEBANK_QUEUE_WORKERS\): must not be negative, got -1/);
  t.regex(error.message, /queue\.leaseSeconds \(env SLIDEBANK_QUEUE_LEASE_SECONDS\): must be at least 1 second, got 0/);
  t.regex(error.message, /queue\.maxAttempts .*must be a whole number, got 2\.5/);
  t.regex(error.message, /queue\.pollSeconds .*must be a number, got "often"/);
  t.regex(error.message, /jobs\.preprocessSchedule .*must be a cron expression/);
  t.regex(error.message, /queue\.maxQueuedPerUser \(env SLIDEBANK_QUEUE_MAX_QUEUED_PER_USER\): must not be negative \(0 turns the limit off\), got -3/);
  t.regex(error.message, /queue\.maxRunMinutes .*must be a number of minutes, got "forever"/);
  t.regex(error.message, /queue\.maxOutputBytes .*must be a whole number, got 1\.5/);
});
