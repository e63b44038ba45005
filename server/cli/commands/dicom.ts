import { Command } from 'commander';
import { createDicomExportService, DicomExportError } from '../../dicom/export/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { WsiError } from '../../wsi/index.js';
import { progressReporter } from '../progress.js';
import { runCommand } from '../run.js';
import { databaseOption, withDatabase, type DatabaseOption } from './dataset.js';

interface DicomExportOptions extends DatabaseOption {
  out: string;
}

/** `slidebank dicom export`: a published slide as a DICOM whole-slide series. */
export function dicomCommand(): Command {
  const dicom = new Command('dicom').description('DICOM whole-slide images of published slides');
  dicom
    .command('export')
    .description('write a published slide as a DICOM whole-slide series (VL Whole Slide Microscopy), its tiles copied without recompression')
    .argument('<slide>', 'the slide id')
    .requiredOption('--out <dir>', 'the folder to write the series into: level-<N>.dcm for each pyramid level and thumbnail.dcm')
    .addOption(databaseOption())
    .addHelpText(
      'after',
      '\nOne study, one series: an instance per pyramid level (TILED_FULL) and the thumbnail. JPEG tiles are copied with\n' +
        'their tables spliced in; JPEG 2000 tiles as they are. UIDs derive from the slide and dicom.uidRoot, so exporting\n' +
        'a slide again names the same instances. See docs/dicom.md, "Writing".',
    )
    .action(async (slide: string, options: DicomExportOptions, command: Command) =>
      runCommand(() => {
        if (!/^[1-9]\d{0,9}$/.test(slide)) throw new FatalError(ExitCode.config, `<slide> is a slide id (a whole number), not ${JSON.stringify(slide)}`);
        return withDatabase(command, options, async (config, db) => {
          const progress = progressReporter('dicom export', 'frames');
          try {
            const { result } = await createDicomExportService(config, db).exportSlide(Number(slide), options.out, (done, total) => progress.update(done, total));
            progress.stop();
            for (const i of result.instances) {
              process.stdout.write(`${i.file}\t${i.kind}${i.level === undefined ? '' : ` ${i.level}`}, ${i.frames} frame(s), ${i.photometric}, ${i.transferSyntax}, ${i.bytes} bytes\n`);
            }
            process.stderr.write(`study ${result.studyInstanceUid}, series ${result.seriesInstanceUid}\n`);
          } catch (error) {
            progress.stop();
            if (error instanceof DicomExportError || error instanceof WsiError) throw new FatalError(ExitCode.failure, error.message, { cause: error });
            throw error;
          }
        });
      }),
    );
  return dicom;
}
