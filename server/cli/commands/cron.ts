import { Command } from 'commander';
import { migrateToLatest, openDatabase, waitForDatabase, type Database } from '../../db/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { createJobRuns, createJobs, runJob } from '../../jobs/index.js';
import { createLogger, type Logger } from '../../logging.js';
import type { Config } from '../../config/index.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

async function withDatabase<T>(config: Config, log: Logger, work: (db: Database) => Promise<T>): Promise<T> {
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    return await work(db);
  } finally {
    await db.close();
  }
}

export function cronCommand(): Command {
  const cron = new Command('cron').description('scheduled jobs: list them, or run one now');

  cron
    .command('list')
    .description('each job with its schedule and its last run')
    .action(async (_options: unknown, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
        const log = createLogger('warn');
        await withDatabase(config, log, async (db) => {
          const runs = createJobRuns(db);
          for (const job of createJobs(config, db, log)) {
            const [last] = await runs.recentRuns(job.name, 1);
            const lastText = last ? `last run ${last.startedAt.toISOString()} ${last.status}` : 'never run';
            process.stdout.write(`${job.name.padEnd(20)} ${(job.schedule || 'on demand').padEnd(16)} ${lastText}  ${job.description}\n`);
          }
          process.stdout.write(`schedules are read in time zone ${config.jobs.timeZone} (jobs.timeZone)\n`);
        });
      }),
    );

  cron
    .command('run')
    .description('run one job at once, as if the clock read --now (for operators and tests)')
    .argument('<job>', 'the job name (see cron list)')
    .option('--now <iso-date>', 'the time the job should believe it is, e.g. 2027-11-29T09:00:00Z')
    .action(async (name: string, options: { now?: string }, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
        const now = options.now === undefined ? new Date() : new Date(options.now);
        if (Number.isNaN(now.getTime())) throw new FatalError(ExitCode.config, `--now: "${options.now}" is not an ISO date such as 2027-11-29T09:00:00Z`);
        const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
        return withDatabase(config, log, async (db) => {
          const jobs = createJobs(config, db, log);
          const job = jobs.find((j) => j.name === name);
          if (!job) throw new FatalError(ExitCode.config, `no job "${name}"; the jobs are: ${jobs.map((j) => j.name).join(', ')}`);
          const outcome = await runJob(job, createJobRuns(db), { now, trigger: 'cli', log });
          process.stdout.write(`${JSON.stringify({ job: name, now: now.toISOString(), ...outcome })}\n`);
          return outcome.status === 'failed' ? ExitCode.failure : ExitCode.ok;
        });
      }),
    );
  return cron;
}
