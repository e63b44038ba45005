import { Command } from 'commander';
import { effectiveConfig } from '../../config/index.js';
import { publicUrlWarning } from '../../config/public-url.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

export function configCommand(): Command {
  const config = new Command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the configuration and print every effective value with where it came from (secrets masked)')
    .option('--json', 'print JSON instead of lines')
    .action(async (options: { json?: boolean }, command: Command) =>
      runCommand(async () => {
        const loaded = configFromCli(command.optsWithGlobals<GlobalOptions>());
        const entries = effectiveConfig(loaded);
        // Warnings do not make the configuration invalid: the server starts with it.
        const warnings = [publicUrlWarning(loaded.config.mail.publicUrl, { host: loaded.config.host, port: loaded.config.port })].filter((w) => w !== undefined);
        if (options.json) {
          const object = Object.fromEntries(entries.map(({ key, value, source }) => [key, { value, source }]));
          process.stdout.write(`${JSON.stringify(object, null, 2)}\n`);
          for (const warning of warnings) process.stderr.write(`slidebank: warning: ${warning}\n`);
        } else {
          const width = Math.max(...entries.map((e) => e.key.length));
          for (const { key, value, source } of entries) {
            process.stdout.write(`${key.padEnd(width)}  ${JSON.stringify(value)}  (${source})\n`);
          }
          for (const warning of warnings) process.stdout.write(`warning: ${warning}\n`);
          process.stdout.write(warnings.length > 0 ? 'configuration is valid, with warnings\n' : 'configuration is valid\n');
        }
      }),
    );
  return config;
}
