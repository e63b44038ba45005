import { Command } from 'commander';
import { createImportService, ImportError } from '../../datasets/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { progressReporter } from '../progress.js';
import { runCommand } from '../run.js';
import { databaseOption, withDatabase, type DatabaseOption } from './dataset.js';

/** `slidebank import BAG…`: a partner's export, verified whole before anything changes. */
export function importCommand(): Command {
  return new Command('import')
    .description('verify and import a partner site\'s export bag (every part of a split export)')
    .argument('<bag...>', 'the bag folder(s)')
    .option('--json', 'print the result as JSON')
    .addOption(databaseOption())
    .addHelpText(
      'after',
      '\nChecked first: bagit.txt, every file listed and none extra, Payload-Oxum, the tag manifest, the signature\n' +
        '(against mirror.trustedKeys) and every checksum. Then slides, annotations and metadata are registered in one\n' +
        'transaction and withdrawals applied; importing the same bag again changes nothing.\n' +
        'Exit status: 0 imported or nothing to do, 1 refused (nothing changed).',
    )
    .action(async (bags: string[], options: { json?: boolean } & DatabaseOption, command: Command) =>
      runCommand(() =>
        withDatabase(command, options, async (config, db, log) => {
          const verifying = progressReporter('verifying', 'bytes');
          const copying = progressReporter('copying', 'bytes');
          let result;
          try {
            result = await createImportService(config, db, log).import(bags, (p) => (p.stage === 'verifying' ? verifying : copying).update(p.done, p.total));
          } catch (error) {
            if (error instanceof ImportError) throw new FatalError(ExitCode.failure, `import refused: ${error.message}`, { cause: error });
            throw error;
          } finally {
            verifying.stop();
            copying.stop();
          }
          if (options.json) return void process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          const head = `${result.dataset} ${result.version}${result.since ? ` (changes since ${result.since})` : ''} from ${result.site}`;
          if (result.nothingToDo) return void process.stdout.write(`${head}: already imported, nothing to do\n`);
          process.stdout.write(
            `${head}: ${result.added.length} slide(s) added, ${result.present} already here, ${result.annotationsUpdated.length} annotation(s) updated, ${result.withdrawn.length} withdrawn${result.repaired.length ? `, ${result.repaired.length} file(s) repaired` : ''}\n`,
          );
          for (const name of result.added) process.stdout.write(`added     ${name}\n`);
          for (const name of result.withdrawn) process.stdout.write(`withdrawn ${name}\n`);
        }),
      ),
    );
}
