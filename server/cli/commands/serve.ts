import { Command } from 'commander';
import { startAppliance } from '../../boot.js';
import type { InitialAdmin } from '../../access/initial-admin.js';
import { createLogger } from '../../logging.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

export function serveCommand(): Command {
  return new Command('serve')
    .description('run the web server: migrate the database, then serve the API and tiles until SIGTERM or SIGINT')
    .option('--port <number>', 'port to listen on (config: port, env PORT)')
    .option('--host <address>', 'address to listen on (config: host, env SLIDEBANK_HOST)')
    .option('--database-url <url>', 'sqlite:path or mariadb://user:password@host:port/db (env DATABASE_URL)')
    .action(async (options: { port?: string; host?: string; databaseUrl?: string }, command: Command) =>
      runCommand(async () => {
        const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>(), {
          port: { value: options.port, option: '--port' },
          host: { value: options.host, option: '--host' },
          databaseUrl: { value: options.databaseUrl, option: '--database-url' },
        });
        const log = createLogger(config.log.level);
        const appliance = await startAppliance(config, log);
        if (appliance.initialAdmin) printInitialAdmin(appliance.initialAdmin);

        // Stay alive until a signal; a second signal during the drain forces the exit.
        await new Promise<void>((resolve) => {
          const onSignal = (signal: NodeJS.Signals) => {
            process.once(signal, () => {
              log.warn({ signal }, 'second signal: exiting without waiting');
              process.exit(1);
            });
            void appliance.stop(signal).then(resolve, (error: unknown) => {
              log.error({ err: error }, 'shutdown failed');
              process.exitCode = 1;
              resolve();
            });
          };
          process.once('SIGTERM', onSignal);
          process.once('SIGINT', onSignal);
        });
      }),
    );
}

function printInitialAdmin(admin: InitialAdmin): void {
  const rule = '-'.repeat(64);
  process.stdout.write(
    [
      rule,
      'Slidebank: initial administrator created. The password is shown only once:',
      `  e-mail:   ${admin.email}`,
      `  password: ${admin.password}`,
      `It is also in ${admin.file} (readable only by this user).`,
      'Log in with it: the portal asks for a new password, and the file is deleted once it is changed.',
      rule,
      '',
    ].join('\n'),
  );
}
