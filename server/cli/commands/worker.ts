import { Command } from 'commander';
import { mkdirSync } from 'node:fs';
import { migrateToLatest, openDatabase, waitForDatabase } from '../../db/index.js';
import { createLogger } from '../../logging.js';
import { createQueueWorker, lowerOwnPriority, resultsRoot } from '../../queue/index.js';
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
        'Run several, on one machine or several, against one MariaDB: claiming is safe.\n' +
        'It runs at a lower CPU and I/O priority than the web server (queue.workerNice, queue.workerIoPriority; the I/O class on Linux only).',
    )
    .action(async (options: { databaseUrl?: string }, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), {
          databaseUrl: { value: options.databaseUrl, option: '--database-url' },
        });
        const log = createLogger(config.log.level);
        // Toolbox work yields the CPU and the disk to the web server's tiles and downloads.
        const priority = lowerOwnPriority({ nice: config.queue.workerNice, io: config.queue.workerIoPriority });
        log.info({ nice: priority.nice, io: priority.io }, `queue worker: running at nice ${priority.nice}, I/O ${priority.io ?? 'unchanged'}`);
        for (const problem of priority.problems) log.warn({ key: 'queue.workerIoPriority' }, `queue worker: ${problem}`);
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
