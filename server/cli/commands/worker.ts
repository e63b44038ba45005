import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { migrateToLatest, openDatabase, waitForDatabase } from '../../db/index.js';
import { createLogger } from '../../logging.js';
import { createQueueWorker, resultsRoot } from '../../queue/index.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

export function workerCommand(): Command {
  return new Command('worker')
    .description('run toolbox jobs from the queue until SIGTERM or SIGINT (serve starts queue.workers of these itself)')
    .option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)')
    .addHelpText(
      'after',
      '\nThe worker claims one job at a time, in turns between users (at most queue.maxRunningPerUser of one user\'s jobs run at once), renews its lease\n' +
        'every leaseSeconds/3 while it runs, stops a job that runs past queue.maxRunMinutes (failed, partial results removed), and on SIGTERM stops the job\n' +
        'and gives it back to the queue (its partial results removed). A worker that dies leaves its job to be taken up by another once the lease\n' +
        '(queue.leaseSeconds) expires.\n' +
        'Run several, on one machine or several, against one MariaDB: claiming is safe.',
    )
    .action(async (options: { databaseUrl?: string }, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), {
          databaseUrl: { value: options.databaseUrl, option: '--database-url' },
        });
        const log = createLogger(config.log.level);
        mkdirSync(resultsRoot(config), { recursive: true });
        const db = openDatabase(config.database.target, { poolMax: 2, log });
        try {
          await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
          await migrateToLatest(db, { log });
          const worker = createQueueWorker(config, db, log);
          const onSignal = (signal: NodeJS.Signals) => {
            log.info({ signal, worker: worker.id }, 'queue worker: stopping');
            worker.stop();
          };
          process.once('SIGTERM', onSignal);
          process.once('SIGINT', onSignal);
          // Started by `serve`: stop with it, however it ended.
          if (process.send) {
            process.channel?.unref();
            process.once('disconnect', () => onSignal('SIGHUP'));
          }
          await worker.run();
        } finally {
          await db.close();
        }
      }),
    );
}
