import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { tissueMaskParameters } from '../../../queue/tasks/parameters.js';
import { progressReporter } from '../../progress.js';
import { runCommand } from '../../run.js';
import { checkParameters, flagDefault, readFlags, usageError, type ParameterFlags } from '../../toolbox-flags.js';
import { openSlide, prepareOut } from './files.js';
import { EXIT_HELP, INPUT_HELP } from './help.js';
import { translated } from './library-errors.js';

/** The flags that stand for the queue's job parameters: read and checked as the job API checks them. */
const TISSUE_MASK_FLAGS: ParameterFlags<typeof tissueMaskParameters> = {
  method: '--method',
  downsample: '--downsample',
  mpp: '--mpp',
  areaUnit: '--area-unit',
  minObjectArea: '--min-object',
  minHoleArea: '--min-hole',
};

export interface TissueCliOptions {
  out?: string;
  method?: string;
  downsample?: string;
  mpp?: string;
  areaUnit?: string;
  minObject?: string;
  minHole?: string;
  name?: string;
}

export function tissueMaskCommand(): Command {
  return new Command('tissue-mask')
    .description('segment the tissue of a slide at low resolution (Otsu on grey or saturation) and write a PNG mask with a JSON sidecar')
    .argument('<input>', 'slide file')
    .option('--out <dir>', 'folder for <name>.png (0/255, 8-bit grey) and <name>.json (made if missing)')
    .option('--method <m>', 'grey: tissue is grey <= T (Otsu); saturation: tissue is HSV saturation > T', flagDefault(tissueMaskParameters, 'method'))
    .option('--downsample <n>', 'level-0 pixels per mask pixel, >= 1 (default: about 8 um/px when the slide records its mpp, else the longer side at most 4096)')
    .option('--mpp <um>', 'microns per mask pixel instead of --downsample (the slide must record its mpp)')
    .option('--area-unit <u>', 'unit of --min-object and --min-hole: um2 (level-0 square microns; default when the slide records its mpp) or px2 (level-0 square pixels)')
    .option('--min-object <area>', 'clear tissue objects smaller than this (default 50000 um2, or 200000 px2); 0 keeps all')
    .option('--min-hole <area>', 'fill holes in tissue smaller than this (same default); 0 fills none')
    .option('--name <name>', 'base file name', 'tissue-mask')
    .addHelpText('after', `\n${INPUT_HELP}\n\nExample:\n  slidebank toolbox tissue-mask slide.svs --out /tmp/masks --mpp 8\n\n${EXIT_HELP}`)
    .action(async (input: string, o: TissueCliOptions) =>
      runCommand(async () => {
        const out = await prepareOut(o.out);
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(o.name ?? '')) throw usageError(`--name must be letters, digits, '.', '_' or '-', got "${o.name}"`);
        const options = readFlags(tissueMaskParameters, TISSUE_MASK_FLAGS, o);
        const checked = checkParameters(tissueMaskParameters, TISSUE_MASK_FLAGS, options);
        const slide = await openSlide(input);
        const { tissueMask, tissueMaskGeometry, saveTissueMask } = await import('../../../toolbox/index.js');
        const progress = progressReporter('tissue-mask', 'rows');
        try {
          await translated(async () => tissueMaskGeometry(slide, options));
          checked.assertWithinBounds();
          const started = Date.now();
          const mask = await translated(() => tissueMask(slide, { ...options, onProgress: progress.update }));
          progress.stop();
          await mkdir(out, { recursive: true });
          const files = await saveTissueMask(mask, out, o.name, { slide: path.resolve(input) });
          process.stderr.write(
            `tissue-mask: ${mask.width}x${mask.height} (downsample ${mask.downsample.x.toFixed(3)}x${mask.downsample.y.toFixed(3)}), ${mask.rule}, ` +
              `${((100 * mask.tissuePixels) / (mask.width * mask.height)).toFixed(1)}% tissue in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          );
          process.stdout.write(`${files.png}\n${files.json}\n`);
        } finally {
          progress.stop();
          await slide.close();
        }
      }),
    );
}
