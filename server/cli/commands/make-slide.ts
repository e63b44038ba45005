import { Command } from 'commander';
import { stat } from 'node:fs/promises';
import { ExitCode, FatalError } from '../../errors.js';
import type { MakeSlideOptions } from '../../wsi/generate/index.js';
import { progressReporter } from '../progress.js';
import { runCommand } from '../run.js';

interface MakeSlideCliOptions {
  width?: string;
  height?: string;
  tile?: string;
  levels?: string;
  seed?: string;
  quality?: string;
  bigtiff?: boolean;
  out?: string;
  name?: string;
  stain?: string;
  format?: string;
  restartInterval?: string;
}

/** The command-line flag of each library option, for error messages. */
const FLAGS: Partial<Record<keyof MakeSlideOptions, string>> = {
  width: '--width',
  height: '--height',
  tileSize: '--tile',
  levels: '--levels',
  seed: '--seed',
  quality: '--quality',
  out: '--out',
  name: '--name',
  stain: '--stain',
  format: '--format',
  restartInterval: '--restart-interval',
  bigtiff: '--bigtiff',
};

function whole(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(raw.trim())) throw new FatalError(ExitCode.config, `${flag} must be a whole number, got "${raw}"`);
  return Number(raw);
}


function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function makeSlideCommand(): Command {
  return new Command('make-slide')
    .description('write a synthetic Aperio SVS (or Hamamatsu NDPI) with its ImageScope XML and ground truth (the same for the same --seed)')
    .option('--width <px>', 'level-0 width in pixels (256 to 1000000)')
    .option('--height <px>', 'level-0 height in pixels (256 to 1000000)')
    .option('--tile <px>', 'tile size, a multiple of 16', '240')
    .option('--levels <n>', 'pyramid levels, each 4x smaller (default: until the smallest is <= 2048 px)')
    .option('--seed <n>', 'seed for the tissue, tumours and fake identifying values', '1')
    .option('--quality <q>', 'JPEG quality 1-100', '75')
    .option('--bigtiff', 'write BigTIFF even when classic TIFF would do')
    .option('--out <dir>', 'folder for <name>.svs (or .ndpi), <name>.xml and <name>.truth.json (made if missing)')
    .option('--name <name>', 'base file name (default: synthetic-<seed>)')
    .option('--stain <kind>', 'he (pink and purple H&E) or ihc (blue haematoxylin with brown DAB in the tumour)', 'he')
    .option('--format <format>', 'svs (Aperio, tiled) or ndpi (Hamamatsu: one JPEG strip per level with restart markers; --tile does not apply)', 'svs')
    .option('--restart-interval <mcus>', 'ndpi: 8-pixel MCUs between restart markers, at most (each level takes the largest that divides its row)', '32')
    .addHelpText(
      'after',
      '\nExamples:\n  slidebank make-slide --width 60000 --height 40000 --seed 7 --out /tmp/slides\n  slidebank make-slide --format ndpi --width 40000 --height 30000 --out /tmp/slides\n\nExit codes: 0 written, 2 bad option (nothing is written), 130 interrupted (nothing is left behind).',
    )
    .action(async (options: MakeSlideCliOptions) =>
      runCommand(async () => {
        if (options.width === undefined) throw new FatalError(ExitCode.config, '--width is required');
        if (options.height === undefined) throw new FatalError(ExitCode.config, '--height is required');
        if (options.out === undefined || options.out === '') throw new FatalError(ExitCode.config, '--out is required: the folder to write the slide into');
        const existing = await stat(options.out).catch(() => undefined);
        if (existing && !existing.isDirectory()) throw new FatalError(ExitCode.config, `--out must be a folder, but ${options.out} is a file`);

        // Loaded here so that the other commands do not load the generator (and sharp) at start-up.
        const { makeSlide, SlideOptionsError } = await import('../../wsi/generate/index.js');
        const controller = new AbortController();
        const interrupt = () => controller.abort();
        process.once('SIGINT', interrupt);
        process.once('SIGTERM', interrupt);
        const progress = progressReporter('make-slide', 'tiles and strips');
        const started = Date.now();
        try {
          const result = await makeSlide({
            width: whole('--width', options.width)!,
            height: whole('--height', options.height)!,
            tileSize: whole('--tile', options.tile),
            levels: whole('--levels', options.levels),
            seed: whole('--seed', options.seed),
            quality: whole('--quality', options.quality),
            bigtiff: options.bigtiff === true,
            out: options.out,
            name: options.name,
            stain: options.stain as MakeSlideOptions['stain'],
            format: options.format as MakeSlideOptions['format'],
            restartInterval: whole('--restart-interval', options.restartInterval),
            onProgress: progress.update,
            signal: controller.signal,
          });
          progress.stop();
          const size = (await stat(result.svs)).size;
          const top = result.levels[0]!;
          process.stderr.write(
            `make-slide: ${top.width}x${top.height}, ${result.levels.length} level(s), ${megabytes(size)} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          );
          process.stdout.write(`${result.svs}\n${result.xml}\n${result.truth}\n`);
        } catch (error) {
          progress.stop();
          if (error instanceof SlideOptionsError) {
            throw new FatalError(ExitCode.config, `${FLAGS[error.option] ?? error.option} ${error.problem}`);
          }
          if (controller.signal.aborted) {
            process.stderr.write('slidebank: make-slide interrupted; nothing was written\n');
            return 130;
          }
          throw error;
        } finally {
          process.off('SIGINT', interrupt);
          process.off('SIGTERM', interrupt);
        }
      }),
    );
}
