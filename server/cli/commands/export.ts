import { Command } from 'commander';
import { createExportService, parseSize } from '../../datasets/index.js';
import { progressReporter } from '../progress.js';
import { runCommand } from '../run.js';
import { databaseOption, withDatabase, type DatabaseOption } from './dataset.js';

interface ExportOptions extends DatabaseOption {
  dataset: string;
  version: string;
  out: string;
  since?: string;
  splitSize?: string;
  holey?: boolean;
  dicom?: boolean;
}

/** `slidebank export`: a release as a signed BagIt bag for partner sites. */
export function exportCommand(): Command {
  return new Command('export')
    .description('write a dataset release as a signed BagIt 1.0 bag (RFC 8493) for partner sites')
    .requiredOption('--dataset <name>', 'the dataset')
    .requiredOption('--version <version>', 'the release')
    .requiredOption('--out <dir>', 'the folder to write the bag into (as <dataset>_<version>)')
    .option('--since <version>', 'an incremental bag: only what changed since that release, and its withdrawals')
    .option('--split-size <size>', 'at most this much payload per bag (500G, 1.5T, 200M): a group of bags for several disks')
    .option('--holey', 'list the slide files in fetch.txt as this server\'s download URLs instead of copying them')
    .option('--dicom', 'also carry each slide as a DICOM whole-slide series in data/dicom/<slide>/ (tiles copied, not recompressed; not with --holey)')
    .addOption(databaseOption())
    .addHelpText(
      'after',
      '\nThe bag is signed with the site key (<paths.data>/site-ed25519.pem); partners trust its public half (GET /api/site).\n' +
        'Slide checksums are the ones recorded at ingest: the payload is copied, not hashed again.\n' +
        'Slides withdrawn since the release (from the dataset or the catalog) are left out and named in the tag file\n' +
        'slidebank-withdrawn.json, which makes an importing partner withdraw them too.',
    )
    .action(async (options: ExportOptions, command: Command) =>
      runCommand(() => {
        const splitSize = options.splitSize === undefined ? undefined : parseSize(options.splitSize);
        return withDatabase(command, options, async (config, db) => {
          const progress = progressReporter('export', 'bytes');
          const result = await createExportService(config, db).export({
            dataset: options.dataset,
            version: options.version,
            out: options.out,
            ...(options.since ? { since: options.since } : {}),
            ...(splitSize ? { splitSize } : {}),
            holey: options.holey ?? false,
            dicom: options.dicom ?? false,
            onProgress: (done, total) => progress.update(done, total),
          });
          progress.stop();
          for (const bag of result.bags) {
            process.stdout.write(`${bag.dir}\t${bag.payloadFiles} files, ${bag.payloadBytes} bytes${bag.fetched ? `, ${bag.fetched} to fetch` : ''}\n`);
          }
          process.stderr.write(`${result.slides} slide(s), ${result.withdrawals} withdrawal(s)\n`);
          for (const name of result.withheld) process.stderr.write(`left out ${name}: withdrawn since the release (named in slidebank-withdrawn.json)\n`);
        });
      }),
    );
}
