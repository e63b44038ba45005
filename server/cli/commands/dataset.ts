import { Command, Option } from 'commander';
import { FilterError, parseFilter } from '../../catalog/filter.js';
import type { Config } from '../../config/index.js';
import { createDatasetsService, DatasetError, ImportError } from '../../datasets/index.js';
import { migrateToLatest, openDatabase, waitForDatabase, type Database } from '../../db/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { createLogger, type Logger } from '../../logging.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

export interface DatabaseOption {
  databaseUrl?: string;
}

export const databaseOption = () => new Option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)');

/**
 * Open and migrate the database for one command, run `work`, close. The
 * datasets' refusals become one line on stderr and exit status 1.
 */
export async function withDatabase<T>(command: Command, options: DatabaseOption, work: (config: Config, db: Database, log: Logger) => Promise<T>): Promise<T> {
  const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), { databaseUrl: { value: options.databaseUrl, option: '--database-url' } });
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    return await work(config, db, log);
  } catch (error) {
    if (error instanceof DatasetError || error instanceof ImportError || error instanceof FilterError) throw new FatalError(ExitCode.failure, error.message, { cause: error });
    throw error;
  } finally {
    await db.close();
  }
}

const out = (line: string): void => void process.stdout.write(`${line}\n`);

function slideIds(text: string): number[] {
  const ids = text.split(',').map((part) => part.trim());
  const bad = ids.filter((id) => !/^[1-9]\d{0,9}$/.test(id));
  if (bad.length > 0 || ids.length === 0) throw new FatalError(ExitCode.config, `--slides takes slide ids separated by commas (1,2,3), not ${JSON.stringify(bad.join(','))}`);
  return ids.map(Number);
}

/** `slidebank dataset create|add|release|withdraw|list`: curated, versioned datasets for export to partner sites. */
export function datasetCommand(): Command {
  const dataset = new Command('dataset').description('group published slides into named datasets with immutable, versioned releases');

  dataset
    .command('create')
    .description('create an empty dataset (or fill it at once with --filter)')
    .argument('<name>', 'letters, digits, ".", "_" and "-"')
    .option('--description <text>', 'what the dataset is')
    .option('--filter <expr>', 'add the published slides this catalog filter matches, e.g. "organ=LV;stain=HE"')
    .addOption(databaseOption())
    .action(async (name: string, options: { description?: string; filter?: string } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, async (config, db) => {
          const service = createDatasetsService(config, db);
          await service.create(name, options.description ?? null);
          if (options.filter !== undefined) {
            const { added } = await service.add(name, { filter: parseFilter(options.filter) });
            out(`created dataset ${name} with ${added} slide(s)`);
          } else out(`created dataset ${name}`);
        }),
      ),
    );

  dataset
    .command('add')
    .description('add published slides to a dataset\'s working set (the next release takes them)')
    .argument('<name>', 'the dataset')
    .option('--slides <ids>', 'slide ids, comma-separated')
    .option('--filter <expr>', 'or a catalog filter, e.g. "organ=LV;stain=HE"')
    .addOption(databaseOption())
    .action(async (name: string, options: { slides?: string; filter?: string } & DatabaseOption, command: Command) =>
      runCommand(() => {
        if ((options.slides === undefined) === (options.filter === undefined)) throw new FatalError(ExitCode.config, 'give either --slides or --filter');
        const ids = options.slides !== undefined ? slideIds(options.slides) : undefined;
        return withDatabase(command, options, async (config, db) => {
          const { added, total } = await createDatasetsService(config, db).add(name, ids ? { slides: ids } : { filter: parseFilter(options.filter!) });
          out(`${name}: ${added} slide(s) added, ${total} in the working set`);
        });
      }),
    );

  dataset
    .command('release')
    .description('freeze the working set as an immutable version (prints the version)')
    .argument('<name>', 'the dataset')
    .option('--version <version>', 'the version; default: one more than the highest numeric version')
    .addOption(new Option('--by <who>', 'who releases it, for the record').env('USER').default('cli'))
    .addOption(databaseOption())
    .action(async (name: string, options: { version?: string; by: string } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, async (config, db) => {
          const service = createDatasetsService(config, db);
          const version = options.version ?? nextVersion((await service.list()).find((d) => d.name === name)?.versions ?? []);
          const release = await service.release(name, version, options.by);
          out(release.version);
          process.stderr.write(`${name} ${release.version}: ${release.slides.length} slide(s)\n`);
        }),
      ),
    );

  dataset
    .command('withdraw')
    .description('withdraw a slide from a dataset: later releases leave it out, and exports list it so mirrors withdraw it too')
    .argument('<name>', 'the dataset')
    .requiredOption('--slide <id>', 'the slide id')
    .requiredOption('--reason <text>', 'why (kept and passed on to mirrors)')
    .addOption(databaseOption())
    .action(async (name: string, options: { slide: string; reason: string } & DatabaseOption, command: Command) =>
      runCommand(() => {
        const [id] = slideIds(options.slide);
        return withDatabase(command, options, async (config, db) => {
          const withdrawal = await createDatasetsService(config, db).withdraw(name, id!, options.reason);
          out(`${name}: slide ${withdrawal.slideId} (${withdrawal.slideName}) withdrawn${withdrawal.releaseVersion ? `, last released in ${withdrawal.releaseVersion}` : ''}`);
        });
      }),
    );

  dataset
    .command('list')
    .description('list datasets, their working sets and released versions')
    .option('--json', 'print JSON')
    .addOption(databaseOption())
    .action(async (options: { json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, async (config, db) => {
          const all = await createDatasetsService(config, db).list();
          if (options.json) out(JSON.stringify(all, null, 2));
          else if (all.length === 0) out('no datasets');
          else for (const d of all) out(`${d.name}\t${d.members} slide(s)\tversions: ${d.versions.join(', ') || '-'}${d.description ? `\t${d.description}` : ''}`);
        }),
      ),
    );
  return dataset;
}

function nextVersion(versions: string[]): string {
  const numbers = versions.filter((v) => /^\d+$/.test(v)).map(Number);
  return String((numbers.length ? Math.max(...numbers) : 0) + 1);
}
