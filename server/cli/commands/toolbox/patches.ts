import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import { patchesParameters, tissueMaskParameters } from '../../../queue/tasks/parameters.js';
import { progressReporter } from '../../progress.js';
import { runCommand } from '../../run.js';
import { checkParameters, flagBounds, flagDefault, readFlags, usageError, type ParameterFlags } from '../../toolbox-flags.js';
import { openSlide, prepareOut, requireFile } from './files.js';
import { EXIT_HELP, INPUT_HELP } from './help.js';
import { translated } from './library-errors.js';
import type { TissueCliOptions } from './tissue-mask.js';

/** The flags that stand for the queue's job parameters: read and checked as the job API checks them. */
const PATCHES_FLAGS: ParameterFlags<typeof patchesParameters> = {
  level: '--level',
  magnification: '--magnification',
  size: '--size',
  stride: '--stride',
  tissueThreshold: '--tissue-threshold',
  labels: '--labels',
  layers: '--layers',
  tumourLayer: '--tumour-layer',
  tumourThreshold: '--tumour-threshold',
  maskDownsample: '--mask-downsample',
  format: '--format',
  quality: '--quality',
  limit: '--limit',
};
/** The tissue mask that patches are kept by: two of tissue-mask's parameters under other flags. */
const PATCHES_TISSUE_FLAGS: ParameterFlags<typeof tissueMaskParameters> = { downsample: '--tissue-downsample', method: '--tissue-method' };

interface PatchesCliOptions extends TissueCliOptions {
  level?: string;
  magnification?: string;
  size?: string;
  stride?: string;
  tissueThreshold?: string;
  xml?: string;
  labels?: boolean;
  tumourLayer?: string;
  layers?: string;
  tumourThreshold?: string;
  maskDownsample?: string;
  format?: string;
  quality?: string;
  limit?: string;
  tissueDownsample?: string;
  tissueMethod?: string;
}

export function patchesCommand(): Command {
  return new Command('patches')
    .description('cut a slide into patches on a grid, keep those with enough tissue, label them from the annotations, and write them with an index')
    .argument('<input>', 'slide file')
    .option('--out <dir>', 'folder for patches/ (must be absent or empty), patches.json and patches.csv')
    .option('--level <n>', 'stored level to cut (default 0)')
    .option('--magnification <x>', 'objective magnification instead of --level; must be a stored level (e.g. 5 on a 20x slide)')
    .option('--size <px>', `patch edge in pixels of the level (${flagBounds(patchesParameters, 'size')})`, flagDefault(patchesParameters, 'size'))
    .option('--stride <px>', 'step between patches in pixels of the level (default: the size)')
    .option('--tissue-threshold <f>', 'keep a patch whose tissue fraction is at least this, 0 to 1 (0 keeps all)', flagDefault(patchesParameters, 'tissueThreshold'))
    .option('--tissue-downsample <n>', 'downsample of the tissue mask (default: about 8 um/px)')
    .option('--tissue-method <m>', 'tissue mask method: grey or saturation', flagDefault(tissueMaskParameters, 'method'))
    .option('--xml <file>', 'the slide\'s Aperio XML: patches are labelled tumour / non-tumour from it')
    .option('--labels', 'require labels (an error without --xml)')
    .option('--no-labels', 'do not label, even with --xml')
    .option('--layers <spec>', 'layer names: a preset (paip2019 = 1=whole,2=viable) or ID=NAME pairs', flagDefault(patchesParameters, 'layers'))
    .option('--tumour-layer <id|name>', 'the tumour layer: an Annotation Id or a name from --layers', flagDefault(patchesParameters, 'tumourLayer'))
    .option('--tumour-threshold <f>', 'label tumour when the tumour fraction is at least this, 0 to 1', flagDefault(patchesParameters, 'tumourThreshold'))
    .option('--mask-downsample <n>', 'downsample of the tumour mask the fractions are taken from', flagDefault(patchesParameters, 'maskDownsample'))
    .option('--format <f>', 'png or jpeg', flagDefault(patchesParameters, 'format'))
    .option('--quality <q>', `JPEG quality ${flagBounds(patchesParameters, 'quality', '-')}`, flagDefault(patchesParameters, 'quality'))
    .option('--limit <n>', 'stop after this many patches (in row order)')
    .addHelpText(
      'after',
      `\n${INPUT_HELP}\n\nFractions are over the mask pixels whose centres fall in the patch. Patch files are patches/L<level>_x<x>_y<y>.<ext> with level-0 x, y.\n` +
        'patches.json holds the parameters and every patch; patches.csv the same rows (file, x, y, level, size, level_x, level_y, tissue_fraction, tumour_fraction, label).\n' +
        `The index is written last: a folder without it is not a result.\n\nExample:\n  slidebank toolbox patches slide.svs --xml slide.xml --size 256 --out /tmp/patches\n\n${EXIT_HELP}`,
    )
    .action(async (input: string, o: PatchesCliOptions) =>
      runCommand(async () => {
        const out = await prepareOut(o.out);
        const { layers: layerSpec, ...params } = readFlags(patchesParameters, PATCHES_FLAGS, o);
        const tissueOptions = readFlags(tissueMaskParameters, PATCHES_TISSUE_FLAGS, o);
        const checked = [
          checkParameters(patchesParameters, PATCHES_FLAGS, { ...params, layers: layerSpec }),
          checkParameters(tissueMaskParameters, PATCHES_TISSUE_FLAGS, tissueOptions),
        ];
        if (params.labels === true && o.xml === undefined) throw usageError('--labels needs the slide\'s annotations: give --xml FILE');
        if (o.xml !== undefined) await requireFile('--xml', o.xml);
        const { generatePatches, loadAnnotations, parseLayerMapping, planPatches } = await import('../../../toolbox/index.js');
        const layers = await translated(async () => parseLayerMapping(layerSpec ?? flagDefault(patchesParameters, 'layers')));
        const slide = await openSlide(input);
        const progress = progressReporter('patches', 'patches');
        try {
          const annotations = o.xml !== undefined && params.labels !== false ? await translated(() => loadAnnotations(o.xml!)) : undefined;
          const options = { ...params, layers, annotations, tissueOptions };
          // Every option is checked against the slide before any work.
          await translated(async () => planPatches(slide, options));
          for (const check of checked) check.assertWithinBounds();
          const started = Date.now();
          await mkdir(out, { recursive: true });
          const result = await translated(() => generatePatches(slide, { ...options, out, onProgress: progress.update }));
          progress.stop();
          const seconds = (Date.now() - started) / 1000;
          const tumours = result.patches.filter((p) => p.label === 'tumour').length;
          process.stderr.write(
            `patches: ${result.patches.length} of ${result.candidates} grid positions kept (tissue ${result.tissue.rule})` +
              (result.parameters.labels ? `, ${tumours} tumour` : '') +
              `, in ${seconds.toFixed(1)} s (${(result.patches.length / Math.max(seconds, 1e-3)).toFixed(0)} patches/s)\n`,
          );
          process.stdout.write(`${result.index.json}\n${result.index.csv}\n`);
        } finally {
          progress.stop();
          await slide.close();
        }
      }),
    );
}
