// The queue's configuration keys: defaults, environment variables, and every bad value reported at once.
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../server/config/index.js';
import { FatalError } from '../../server/errors.js';
import { packageRoot } from '../../server/package-info.js';

const configDir = path.join(packageRoot, 'config');

test('defaults: one worker, 60 s leases, 3 attempts, a 2 s poll, 30 s first retry, preprocessing every 10 minutes', (t) => {
  const { config } = loadConfig({ configDir, env: {} });
  t.deepEqual(config.queue, { workers: 1, leaseSeconds: 60, maxAttempts: 3, pollSeconds: 2, retrySeconds: 30 });
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
});
