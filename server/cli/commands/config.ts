import { Command } from 'commander';
import { effectiveConfig } from '../../config/index.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

export function configCommand(): Command {
  const config = new Command('config').description('inspect the configuration');
  config
    .command('check')
    .description('validate the configuration and print every effective value with where it came from (secrets masked)')
    .option('--json', 'print JSON instead of lines')
    .action(async (options: { json?: boolean }, command: Command) =>
      runCommand(async () => {
        const entries = effectiveConfig(configFromCli(command.optsWithGlobals<GlobalOptions>()));
        if (options.json) {
          const object = Object.fromEntries(entries.map(({ key, value, source }) => [key, { value, source }]));
          process.stdout.write(`${JSON.stringify(object, null, 2)}\n`);
        } else {
          const width = Math.max(...entries.map((e) => e.key.length));
          for (const { key, value, source } of entries) {
            process.stdout.write(`${key.padEnd(width)}  ${JSON.stringify(value)}  (${source})\n`);
          }
          process.stdout.write('configuration is valid\n');
        }
      }),
    );
  return config;
}
