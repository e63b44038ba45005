import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { stitchParameters } from '../../../queue/tasks/parameters.js';
import { progressReporter } from '../../progress.js';
import { runCommand } from '../../run.js';
import { checkParameters, flagDefault, parseWhole, readFlags, usageError, type ParameterFlags } from '../../toolbox-flags.js';
import { openSlide, prepareOut, requireFile } from './files.js';
import { EXIT_HELP } from './help.js';
import { translated } from './library-errors.js';

/** The flags that stand for the queue's job parameters: read and checked as the job API checks them. */
const STITCH_FLAGS: ParameterFlags<typeof stitchParameters> = { downsample: '--downsample', window: '--window' };

interface StitchCliOptions {
  slide?: string;
  out?: string;
  downsample?: string;
  window?: string;
  stripHeight?: string;
  name?: string;
}

export function stitchCommand(): Command {
  return new Command('stitch')
    .description('stitch patch predictions into a probability map of the slide (windowed average in float32, in strips) and write a 16-bit PNG with a JSON sidecar')
    .argument('<predictions>', 'CSV or JSON of patch predictions (see below)')
    .option('--slide <file>', 'the slide the predictions were made on (its level-0 size and level downsamples)')
    .option('--out <dir>', 'folder for <name>.png (16-bit grey, 65535 = 1) and <name>.json (made if missing)')
    .option('--downsample <n>', 'level-0 pixels per map pixel, >= 1', flagDefault(stitchParameters, 'downsample'))
    .option('--window <w>', 'weight across each patch: uniform, spline (smooth tiling, power 2), gaussian (sigma = size/8) or hann', flagDefault(stitchParameters, 'window'))
    .option('--strip-height <rows>', 'map rows accumulated at once (memory: 8 bytes x map width x rows)', '256')
    .option('--name <name>', 'base file name', 'probability')
    .addHelpText(
      'after',
      '\nPREDICTIONS: a CSV with a header naming x, y, size and score (0 to 1), or instead of score a column probability (or file) naming a grey 8/16-bit PNG per patch\n' +
        '(relative to the CSV\'s folder), and optionally level; or a JSON array of the same objects, or the patches index (patches.json) with a score added to each patch.\n' +
        'x and y are level-0 pixels, size is in pixels of the level (default 0). A row outside the slide, with a negative position, size 0 or a score that is no number\n' +
        'from 0 to 1 is refused with its line number (exit 2) before anything is written. Map pixels that no patch covers are 0.\n\n' +
        `Example:\n  slidebank toolbox stitch scores.csv --slide slide.svs --out /tmp/map --downsample 16 --window spline\n\n${EXIT_HELP}`,
    )
    .action(async (input: string, o: StitchCliOptions) =>
      runCommand(async () => {
        const out = await prepareOut(o.out);
        if (o.slide === undefined) throw usageError('--slide is required: the slide file the predictions belong to');
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(o.name ?? '')) throw usageError(`--name must be letters, digits, '.', '_' or '-', got "${o.name}"`);
        const params = readFlags(stitchParameters, STITCH_FLAGS, o);
        const checked = checkParameters(stitchParameters, STITCH_FLAGS, params);
        const downsample = params.downsample!;
        const { window } = params;
        const stripHeight = parseWhole('--strip-height', o.stripHeight)!;
        await requireFile('PREDICTIONS', input);
        const { loadPredictions, stitch, stitchGrid } = await import('../../../toolbox/index.js');
        const slide = await openSlide(o.slide);
        const level0 = { width: slide.width, height: slide.height };
        const levelDownsamples = slide.levels.map((l) => ({ x: slide.width / l.width, y: slide.height / l.height }));
        await slide.close();
        if (stripHeight < 1) throw usageError(`--strip-height must be a whole number from 1 up, got ${stripHeight}`);
        await translated(async () => stitchGrid(level0, downsample));
        checked.assertWithinBounds();
        const predictions = await translated(() => loadPredictions(input, { level0, levelDownsamples }));
        const progress = progressReporter('stitch', 'strips');
        try {
          const started = Date.now();
          await mkdir(out, { recursive: true });
          const result = await translated(() =>
            stitch(predictions, level0, {
              out,
              name: o.name,
              downsample,
              window,
              stripHeight,
              onProgress: progress.update,
              extra: { slide: path.resolve(o.slide!), predictions: path.resolve(input) },
            }),
          );
          progress.stop();
          const stats = result.mean === null ? 'no pixel covered' : `min ${result.min!.toFixed(4)}, max ${result.max!.toFixed(4)}, mean ${result.mean.toFixed(4)}`;
          process.stderr.write(
            `stitch: ${result.patches} patches onto ${result.grid.width}x${result.grid.height} (downsample ${result.grid.downsample.x.toFixed(3)}), ` +
              `${((100 * result.coveredPixels) / (result.grid.width * result.grid.height)).toFixed(1)}% covered, ${stats}, in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          );
          process.stdout.write(`${result.png}\n${result.json}\n`);
        } finally {
          progress.stop();
        }
      }),
    );
}
