import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { checkDirectory } from '../../access/directory/check.js';
import { checkProvider } from '../../access/oidc/check.js';
import { loadConfig } from '../../config/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { createLogger } from '../../logging.js';
import { runCommand, type GlobalOptions } from '../run.js';

/** Environment variables these commands read (not configuration keys). */
const AUTH_VARIABLES = ['SLIDEBANK_CHECK_PASSWORD'] as const;

/**
 * `slidebank auth check-ldap|check-oidc`: try the hospital directory or a
 * single sign-on provider as configured, before users depend on it.
 */
export function authCommand(): Command {
  const auth = new Command('auth').description('check hospital sign-in: the directory (LDAP, Active Directory) and single sign-on (OpenID Connect)');
  auth
    .command('check-ldap')
    .description('find a user in the directory as a login does, show their groups and the roles they give, and check their password (from SLIDEBANK_CHECK_PASSWORD or stdin; never printed)')
    .addOption(new Option('--user <name>', 'what the user types at login (their address, or what auth.ldap.userFilter matches)').makeOptionMandatory())
    .option('--no-password', 'only look the user up; do not check a password')
    .action(async (options: { user: string; password: boolean }, command: Command) =>
      runCommand(async () => {
        const { config } = loadConfig({ ...configDirOf(command), commandVariables: AUTH_VARIABLES });
        if (config.auth.ldap.url === '') throw new FatalError(ExitCode.config, 'auth.ldap.url is empty: directory login is off');
        const password = options.password ? await readPassword(options.user) : undefined;
        const result = await checkDirectory(config.auth.ldap, options.user, password);
        process.stdout.write(`${result.lines.join('\n')}\n`);
        return result.ok ? 0 : ExitCode.failure;
      }),
    );
  auth
    .command('check-oidc')
    .description('discover a single sign-on provider, read its signing keys, and show the redirect address to register and what the group mapping gives')
    .argument('<name>', 'the provider’s name in auth.oidc.providers')
    .option('--groups <groups>', 'comma-separated groups to show the roles they would give')
    .action(async (name: string, options: { groups?: string }, command: Command) =>
      runCommand(async () => {
        const { config } = loadConfig({ ...configDirOf(command), commandVariables: AUTH_VARIABLES });
        const provider = config.auth.oidc.providers.find((entry) => entry.name === name);
        if (!provider) {
          const names = config.auth.oidc.providers.map((entry) => entry.name);
          throw new FatalError(ExitCode.config, `no provider named ${name} in auth.oidc.providers${names.length > 0 ? ` (there are: ${names.join(', ')})` : ' (there are none)'}`);
        }
        const groups = (options.groups ?? '').split(',').map((group) => group.trim()).filter((group) => group !== '');
        const result = await checkProvider(provider, config.mail.publicUrl, createLogger('silent'), groups);
        process.stdout.write(`${result.lines.join('\n')}\n`);
        return result.ok ? 0 : ExitCode.failure;
      }),
    );
  return auth;
}

function configDirOf(command: Command): { configDir?: string } {
  const { configDir } = command.optsWithGlobals<GlobalOptions>();
  return configDir ? { configDir } : {};
}

/** The password to check: SLIDEBANK_CHECK_PASSWORD, or the first line of stdin (asked for, without echo, on a terminal). */
async function readPassword(user: string): Promise<string> {
  const given = process.env.SLIDEBANK_CHECK_PASSWORD;
  if (given !== undefined) return given;
  if (process.stdin.isTTY === true) return readHidden(`password of ${user} (not shown): `);
  const lines = createInterface({ input: process.stdin, terminal: false });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

/** Reads a line from the terminal in raw mode, so that nothing typed is echoed. */
function readHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const done = (finish: () => void) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      finish();
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n' || char === '\u0004') return done(() => resolve(typed));
        if (char === '\u0003') return done(() => reject(new FatalError(ExitCode.failure, 'interrupted')));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else typed += char;
      }
    };
    stdin.on('data', onData);
  });
}
