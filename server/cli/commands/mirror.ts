import path from 'node:path';
import { Command, Option } from 'commander';
import { createImportService, ImportError, mirrorDataset } from '../../datasets/index.js';
import { FetchError } from '../../downloads/client/fetch-files.js';
import { ExitCode, FatalError } from '../../errors.js';
import { progressReporter } from '../progress.js';
import { runCommand } from '../run.js';
import { databaseOption, withDatabase, type DatabaseOption } from './dataset.js';

interface MirrorCliOptions extends DatabaseOption {
  from: string;
  token: string;
  dataset: string;
  version?: string;
  parallel: string;
}

/** `slidebank mirror`: a partner's dataset over HTTP, incrementally, verified and imported. */
export function mirrorCommand(): Command {
  return new Command('mirror')
    .description('mirror a partner site\'s dataset over HTTP: fetch a holey bag, download its slides with resume, verify, import')
    .addOption(new Option('--from <url>', 'the partner\'s Slidebank address').env('SLIDEBANK_MIRROR_FROM').makeOptionMandatory())
    .addOption(new Option('--token <token>', 'a personal access token of an L3 member or admin there (prefer the variable)').env('SLIDEBANK_MIRROR_TOKEN').makeOptionMandatory())
    .requiredOption('--dataset <name>', 'the dataset')
    .option('--version <version>', 'the release to mirror (default: the latest)')
    .option('--parallel <n>', 'files downloaded at once', '2')
    .addOption(databaseOption())
    .addHelpText(
      'after',
      '\nOnly the changes since the newest version imported here are fetched; slides the partner withdrew since are\n' +
        'withdrawn here too, also when the release is here already. An interrupted run keeps what it\n' +
        'downloaded under <paths.data>/mirror and continues when run again. The partner\'s key must be in mirror.trustedKeys.\n' +
        'Exit status: 0 imported or up to date, 1 refused, 4 network trouble (run again to continue).',
    )
    .action(async (options: MirrorCliOptions, command: Command) =>
      runCommand(() => {
        const parallel = Number(options.parallel);
        if (!Number.isInteger(parallel) || parallel < 1 || parallel > 16) throw new FatalError(ExitCode.config, '--parallel must be a whole number from 1 to 16');
        return withDatabase(command, options, async (config, db, log) => {
          const downloading = progressReporter('downloading', 'bytes');
          const verifying = progressReporter('verifying', 'bytes');
          let received = 0;
          let expected = 0;
          try {
            const result = await mirrorDataset(createImportService(config, db, log), {
              from: options.from,
              token: options.token,
              dataset: options.dataset,
              ...(options.version ? { version: options.version } : {}),
              workDir: path.join(config.paths.data, 'mirror'),
              parallel,
              onFetch: (event) => {
                if (event.type === 'start') {
                  expected += event.size;
                  received += event.resumeFrom;
                } else if (event.type === 'progress') downloading.update((received += event.bytes), expected);
              },
              onImport: (p) => p.stage === 'verifying' && verifying.update(p.done, p.total),
            });
            downloading.stop();
            verifying.stop();
            if (result.upToDate) {
              process.stdout.write(`${options.dataset} ${result.version}: already here, up to date${result.withdrawn.length ? `, ${result.withdrawn.length} withdrawn at the source since` : ''}\n`);
              for (const name of result.withdrawn) process.stdout.write(`withdrawn ${name}\n`);
              return;
            }
            process.stdout.write(
              `${result.dataset} ${result.version}${result.since ? ` (changes since ${result.since})` : ''} from ${result.site}: ${result.fetchedBytes} bytes downloaded, ${result.added.length} slide(s) added, ${result.present} already here, ${result.withdrawn.length} withdrawn\n`,
            );
          } catch (error) {
            if (error instanceof ImportError) throw new FatalError(ExitCode.failure, `mirror refused: ${error.message}`, { cause: error });
            if (error instanceof FetchError) throw new FatalError(error.kind === 'network' ? ExitCode.network : ExitCode.failure, `mirror: ${error.message}`, { cause: error });
            throw error;
          }
        });
      }),
    );
}
