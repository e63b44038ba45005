import { readFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { createAgreementsService } from '../../agreements/create.js';
import type { AuditActor } from '../../audit/audit-log.js';
import { loadConfig } from '../../config/index.js';
import { migrateToLatest, openDatabase, waitForDatabase } from '../../db/index.js';
import { AppError, ExitCode, FatalError } from '../../errors.js';
import { createLogger } from '../../logging.js';
import { runCommand, type GlobalOptions } from '../run.js';

const CLI_ACTOR: AuditActor = { actorId: null, ip: null, via: 'cli' };
const LABEL = /^[0-9A-Za-z][0-9A-Za-z._-]{0,31}$/;

interface PublishOptions {
  file: string;
  title?: string;
  version?: string;
  requireReacceptance?: boolean;
  databaseUrl?: string;
}

/**
 * `slidebank dua publish|list`: the data use agreement's texts from the
 * command line. Publishing is audited (actor: the CLI) exactly as from the
 * portal, and re-acceptance works the same.
 */
export function duaCommand(): Command {
  const dua = new Command('dua').description('publish and list the versions of the data use agreement (audited)');
  const databaseOption = () => new Option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)');

  dua
    .command('publish')
    .description('publish a Markdown file as the data use agreement in force')
    .requiredOption('--file <path>', 'the agreement text, Markdown')
    .option('--title <title>', 'the title (default: the first heading of the file)')
    .option('--version <label>', 'the version label, such as 2027.1 (default: the next whole number)')
    .option('--require-reacceptance', 'holders of an approval under an older version must accept this one to keep downloading')
    .addOption(databaseOption())
    .action(async (options: PublishOptions, command: Command) =>
      runCommand(async () => {
        const body = (await readFile(options.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
          throw new FatalError(ExitCode.failure, `cannot read ${options.file}: ${error.code ?? error.message}`);
        })).trim();
        if (body === '') throw new FatalError(ExitCode.failure, `${options.file} is empty`);
        if (body.length > 100_000) throw new FatalError(ExitCode.failure, `${options.file} is longer than 100000 characters`);
        const title = (options.title ?? /^#{1,6}\s+(.+?)\s*#*\s*$/m.exec(body)?.[1] ?? 'Data use agreement').trim().slice(0, 200);
        if (options.version !== undefined && !LABEL.test(options.version)) throw new FatalError(ExitCode.failure, 'version must be a short version label such as 2027.1');
        await withAgreements(command, options, async (agreements) => {
          const version = options.version ?? (await agreements.nextVersionLabel());
          const published = await agreements.publishVersion(CLI_ACTOR, { version, title, body, requiresReacceptance: options.requireReacceptance === true });
          process.stdout.write(
            `published version ${published.version}: ${published.title}${published.requiresReacceptance ? ' (current holders must accept it again)' : ''}\n`,
          );
        });
      }),
    );

  dua
    .command('list')
    .description('list the published versions, newest first')
    .addOption(databaseOption())
    .action(async (options: { databaseUrl?: string }, command: Command) =>
      runCommand(() =>
        withAgreements(command, options, async (agreements) => {
          for (const v of await agreements.versions()) {
            const notes = [v.requiresReacceptance ? 're-acceptance required' : '', v.isDefault ? (v.reviewedAt ? 'default text, reviewed' : 'default text, not reviewed') : ''].filter(Boolean);
            process.stdout.write(`${v.version}\t${v.publishedAt.toISOString().slice(0, 10)}\t${v.title}${notes.length ? `\t(${notes.join(', ')})` : ''}\n`);
          }
        }),
      ),
    );
  return dua;
}

async function withAgreements(
  command: Command,
  options: { databaseUrl?: string },
  work: (agreements: ReturnType<typeof createAgreementsService>) => Promise<void>,
): Promise<void> {
  const global = command.optsWithGlobals<GlobalOptions>();
  const { config } = loadConfig({
    ...(global.configDir ? { configDir: global.configDir } : {}),
    overrides: { databaseUrl: options.databaseUrl },
    overrideNames: { databaseUrl: '--database-url' },
  });
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    await work(createAgreementsService(config, db, log));
  } catch (error) {
    if (error instanceof AppError && error.expose) throw new FatalError(ExitCode.failure, error.message, { cause: error });
    throw error;
  } finally {
    await db.close();
  }
}
