import { Command } from 'commander';
import {
  migrateToLatest,
  migrationLockHeld,
  migrationStatus,
  openDatabase,
  releaseMigrationLock,
  rollbackLatest,
  waitForDatabase,
} from '../../db/index.js';
import { createLogger } from '../../logging.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

interface MigrateOptions {
  status?: boolean;
  dryRun?: boolean;
  rollback?: boolean;
  unlock?: boolean;
  databaseUrl?: string;
}

export function migrateCommand(): Command {
  return new Command('migrate')
    .description('bring the database schema up to date (the server also does this at start)')
    .option('--status', 'list applied and pending migrations; change nothing')
    .option('--dry-run', 'print what would be applied (or rolled back); change nothing')
    .option('--rollback', 'undo the most recent batch of migrations')
    .option('--unlock', 'release the migration lock left by a node that died while migrating')
    .option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)')
    .action(async (options: MigrateOptions, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), {
          databaseUrl: { value: options.databaseUrl, option: '--database-url' },
        });
        const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
        const db = openDatabase(config.database.target, { log });
        try {
          await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
          const out = (line: string) => process.stdout.write(`${line}\n`);

          if (options.unlock) {
            out((await releaseMigrationLock(db)) ? 'migration lock released' : 'the migration lock was not held');
            return;
          }
          if (options.status || options.dryRun) {
            const { applied, pending } = await migrationStatus(db);
            if (options.status) {
              for (const name of applied) out(`applied  ${name}`);
              for (const name of pending) out(`pending  ${name}`);
              out(`${db.description}: ${applied.length} applied, ${pending.length} pending`);
              if (await migrationLockHeld(db)) out('the migration lock is held (a node is migrating, or died while migrating)');
              return;
            }
            if (options.rollback) {
              out(applied.length ? `would roll back the latest batch (last applied: ${applied.at(-1)})` : 'nothing to roll back');
            } else {
              for (const name of pending) out(`would apply  ${name}`);
              out(pending.length ? `${pending.length} migration(s) would be applied` : 'up to date');
            }
            return;
          }

          if (options.rollback) {
            const undone = await rollbackLatest(db, { log });
            for (const name of undone) out(`rolled back  ${name}`);
            out(undone.length ? `${undone.length} migration(s) rolled back` : 'nothing to roll back');
            return;
          }
          const applied = await migrateToLatest(db, { log });
          for (const name of applied) out(`applied  ${name}`);
          out(applied.length ? `${applied.length} migration(s) applied to ${db.description}` : `${db.description}: up to date`);
        } finally {
          await db.close();
        }
      }),
    );
}
