import { Command, Option } from 'commander';
import type { z } from 'zod';
import { createUsersAdminService } from '../../access/create.js';
import type { UsersAdminService } from '../../access/users-admin.service.js';
import type { AdminUserView } from '../../access/views.js';
import { createAgreementsService } from '../../agreements/create.js';
import type { AuditActor } from '../../audit/audit-log.js';
import { createAuditLog } from '../../audit/create.js';
import { loadConfig } from '../../config/index.js';
import { migrateToLatest, openDatabase, waitForDatabase } from '../../db/index.js';
import { AppError, ExitCode, FatalError } from '../../errors.js';
import { levelChange, newAccount } from '../../http/schemas/accounts.js';
import { createLogger } from '../../logging.js';
import { runCommand, type GlobalOptions } from '../run.js';

/** Environment variables the user commands read for their options (not configuration keys). */
const USER_VARIABLES = [
  'SLIDEBANK_USER_EMAIL',
  'SLIDEBANK_USER_PASSWORD',
  'SLIDEBANK_USER_LEVEL',
  'SLIDEBANK_USER_ROLE',
  'SLIDEBANK_USER_NAME',
  'SLIDEBANK_USER_INSTITUTION',
] as const;

const CLI_ACTOR: AuditActor = { actorId: null, ip: null, via: 'cli' };

interface DatabaseOption {
  databaseUrl?: string;
}

/**
 * `slidebank user add|set-level|list|disable|enable`: accounts for scripts,
 * first set-up and operators. Every change is audited (actor: the CLI).
 */
export function userCommand(): Command {
  const user = new Command('user').description('create, list and change accounts (audited)');
  const databaseOption = () => new Option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)');

  user
    .command('add')
    .description('create a confirmed account; --level L2 grants an administrative data use agreement valid for one year')
    .addOption(new Option('--email <address>', 'e-mail address').env('SLIDEBANK_USER_EMAIL').makeOptionMandatory())
    .addOption(
      new Option('--password <password>', 'password (12+ characters; prefer the variable, which stays out of the process list)')
        .env('SLIDEBANK_USER_PASSWORD')
        .makeOptionMandatory(),
    )
    .addOption(new Option('--level <level>', 'access level').choices(['L0', 'L1', 'L2', 'L3']).env('SLIDEBANK_USER_LEVEL').makeOptionMandatory())
    .addOption(
      new Option('--role <role>', 'staff role: admin, curator or pathologist (repeat, or comma-separate, for several)')
        .env('SLIDEBANK_USER_ROLE')
        .argParser(collectRoles)
        .default([] as string[]),
    )
    .addOption(new Option('--name <name>', 'full name').env('SLIDEBANK_USER_NAME'))
    .addOption(new Option('--institution <name>', 'institution').env('SLIDEBANK_USER_INSTITUTION'))
    .addOption(databaseOption())
    .action(async (options: { email: string; password: string; level: string; role: string[]; name?: string; institution?: string } & DatabaseOption, command: Command) =>
      runCommand(() => {
        const account = checked(newAccount, {
          email: options.email,
          password: options.password,
          level: options.level,
          roles: options.role,
          ...(options.name !== undefined ? { name: options.name } : {}),
          ...(options.institution !== undefined ? { institution: options.institution } : {}),
        });
        return withUsers(command, options, async (users) => {
          out(`created ${describe(await users.add(account, CLI_ACTOR))}`);
        });
      }),
    );

  user
    .command('set-level')
    .description('set the access level of an account to L0, L1 or L3 (L2 comes with a data use agreement, or from `user add --level L2`)')
    .argument('<email>', 'the account')
    .argument('<level>', 'L0, L1 or L3')
    .option('--reason <text>', 'why, for the audit log')
    .option('--dry-run', 'say what would change; change nothing')
    .addOption(databaseOption())
    .action(async (email: string, level: string, options: { reason?: string; dryRun?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() => {
        const change = checked(levelChange, { level, ...(options.reason ? { reason: options.reason } : {}) });
        return withUsers(command, options, async (users) => {
          const before = await users.getByEmail(email);
          if (options.dryRun) {
            if (change.level === 'L2') throw new AppError(400, 'level_requires_dua', 'L2 comes with an approved data use agreement; it cannot be set directly');
            out(`would set ${before.email} from ${before.storedLevel} to ${change.level}`);
            return;
          }
          const after = await users.setLevel(before.id, change, CLI_ACTOR);
          out(`${after.email}: ${before.storedLevel} → ${after.storedLevel}`);
        });
      }),
    );

  user
    .command('list')
    .description('list every account')
    .option('--json', 'print JSON instead of a table')
    .addOption(databaseOption())
    .action(async (options: { json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withUsers(command, options, async (users) => {
          const all = await users.all();
          if (options.json) out(JSON.stringify(all, null, 2));
          else out(table(all));
        }),
      ),
    );

  for (const [name, disable] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    user
      .command(name)
      .description(disable ? 'disable an account: its sessions end and its access tokens are revoked' : 'enable a disabled account again (its revoked tokens stay revoked)')
      .argument('<email>', 'the account')
      .option('--dry-run', 'say what would change; change nothing')
      .addOption(databaseOption())
      .action(async (email: string, options: { dryRun?: boolean } & DatabaseOption, command: Command) =>
        runCommand(() =>
          withUsers(command, options, async (users) => {
            const before = await users.getByEmail(email);
            if (before.disabled === disable) {
              out(`${before.email} is already ${disable ? 'disabled' : 'enabled'}`);
              return;
            }
            if (options.dryRun) {
              out(`would ${name} ${before.email}`);
              return;
            }
            const after = disable ? await users.disable(before.id, CLI_ACTOR) : await users.enable(before.id, CLI_ACTOR);
            out(`${after.email} ${disable ? 'disabled' : 'enabled'}`);
          }),
        ),
      );
  }
  return user;
}

/** Opens the database (migrating it if needed), runs the work with the users service, closes; service errors become one line and exit code 1. */
async function withUsers(command: Command, options: DatabaseOption, work: (users: UsersAdminService) => Promise<void>): Promise<void> {
  const global = command.optsWithGlobals<GlobalOptions>();
  const { config } = loadConfig({
    ...(global.configDir ? { configDir: global.configDir } : {}),
    overrides: { databaseUrl: options.databaseUrl },
    overrideNames: { databaseUrl: '--database-url' },
    commandVariables: USER_VARIABLES,
  });
  const log = createLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    await work(createUsersAdminService(db, createAuditLog(db), createAgreementsService(config, db, log)));
  } catch (error) {
    if (error instanceof AppError && error.expose) throw new FatalError(ExitCode.failure, error.message, { cause: error });
    throw error;
  } finally {
    await db.close();
  }
}

/** The options as the service takes them, checked as the HTTP API checks the same fields; every problem is told at once. */
function checked<S extends z.ZodType>(schema: S, options: unknown): z.output<S> {
  const result = schema.safeParse(options);
  if (result.success) return result.data;
  throw new FatalError(ExitCode.failure, result.error.issues.map((issue) => issue.message).join('; '));
}

function collectRoles(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(',').map((role) => role.trim()).filter((role) => role !== '')];
}

function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

function describe(user: AdminUserView): string {
  const expiry = user.levelExpiresAt ? ` until ${day(user.levelExpiresAt)}` : '';
  return `${user.email} (id ${user.id}): ${user.storedLevel}${expiry}${user.roles.length ? `, roles: ${user.roles.join(', ')}` : ''}`;
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function table(users: AdminUserView[]): string {
  const rows = [
    ['EMAIL', 'LEVEL', 'STORED', 'EXPIRES', 'ROLES', 'STATUS', 'NAME'],
    ...users.map((u) => [
      u.email,
      u.level,
      u.storedLevel,
      u.levelExpiresAt ? day(u.levelExpiresAt) : '-',
      u.roles.join(',') || '-',
      u.disabled ? 'disabled' : u.emailConfirmed ? 'active' : 'unconfirmed',
      u.name || '-',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return [...rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ')), `${users.length} account(s)`].join('\n');
}
