import { Command } from 'commander';
import path from 'node:path';
import { heatmapParameters } from '../../../queue/tasks/parameters.js';
import { progressReporter } from '../../progress.js';
import { runCommand } from '../../run.js';
import { checkParameters, flagDefault, parseChoice, parseWhole, readFlags, usageError, type ParameterFlags } from '../../toolbox-flags.js';
import { openSlide, prepareOut, requireFile } from './files.js';
import { EXIT_HELP } from './help.js';
import { translated } from './library-errors.js';
import { overlayTarget, publishOverlay } from './overlay-publishing.js';

/** The flags that stand for the queue's job parameters: read and checked as the job API checks them. */
const HEATMAP_FLAGS: ParameterFlags<typeof heatmapParameters> = { name: '--name', colormap: '--colormap', cutoff: '--cutoff', sampling: '--sampling' };

interface HeatmapCliOptions {
  slide?: string;
  out?: string;
  colormap?: string;
  cutoff?: string;
  name?: string;
  sampling?: string;
  grid?: string;
  tileSize?: string;
  overlap?: string;
  replace?: boolean;
}

export function heatmapCommand(): Command {
  return new Command('heatmap')
    .description('colour a probability map (jet or viridis, alpha = probability) into an overview PNG and a Deep Zoom overlay pyramid on the slide\'s own grid')
    .argument('<map>', 'probability map: the 16-bit PNG from stitch, or an 8-bit mask (255 = 1)')
    .option('--slide <file>', 'the slide the map covers (its level-0 size and, for --grid native, its tiling)')
    .option('--out <dir>', 'folder for <name>.dzi, <name>_files/<level>/<col>_<row>.png, <name>.png (overview) and <name>.json')
    .option('--name <name>', 'overlay name, 1 to 64 of a-z, 0-9 and - (default: the --out folder\'s name when it is one, else heatmap)')
    .option('--colormap <c>', 'jet or viridis', flagDefault(heatmapParameters, 'colormap'))
    .option('--cutoff <f>', 'probabilities below this are fully transparent, 0 to 1 (alpha is the probability above it)', flagDefault(heatmapParameters, 'cutoff'))
    .option('--sampling <s>', 'how tiles sample the map: nearest or bilinear', flagDefault(heatmapParameters, 'sampling'))
    .option('--grid <g>', 'the Deep Zoom grid, as the server\'s tiles.grid: native (the slide\'s own JPEG tiles, else 254/1), openslide (254/1) or custom (--tile-size, --overlap)', 'native')
    .option('--tile-size <px>', 'tile size for --grid custom', '254')
    .option('--overlap <px>', 'tile overlap for --grid custom', '1')
    .option('--replace', 'publishing into <paths.cache>/overlays: replace the overlay even when a user published it, or a user\'s job holds its name (audited)')
    .addHelpText(
      'after',
      '\nThe pyramid has the slide\'s Deep Zoom geometry (levels, tiles per level, tile rectangles): use the grid the server is configured with (tiles.grid, tiles.tileSize,\n' +
        'tiles.overlap) so that overlay tiles lie on the slide\'s. Fully transparent tiles are written too, so that a viewer never meets a 404.\n\n' +
        'Publishing a heat map for a slide: write it into <paths.cache>/overlays/<slide id>/<name>/, e.g.\n' +
        '  slidebank toolbox heatmap map.png --slide slides/12.svs --out var/cache/overlays/12/tumour\n' +
        'and it is served at /tiles/12/overlays/tumour.dzi and listed at /tiles/12/overlays (L1, as the slide\'s tiles). It is moved into place when complete,\n' +
        'so an overlay being written is not listed. Its name is then the operator\'s: a user\'s heat-map job cannot take it. A name that a user published\n' +
        `under, or that a user's queued job holds, is refused unless --replace is given.\n\n${EXIT_HELP}`,
    )
    .action(async (input: string, o: HeatmapCliOptions, command: Command) =>
      runCommand(async () => {
        const out = await prepareOut(o.out);
        if (o.slide === undefined) throw usageError('--slide is required: the slide file the map covers');
        const { OVERLAY_NAME, heatmap, loadProbabilityMap, planHeatmap } = await import('../../../toolbox/index.js');
        const name = o.name ?? (OVERLAY_NAME.test(path.basename(path.resolve(out))) ? path.basename(path.resolve(out)) : 'heatmap');
        const target = await overlayTarget(command, out);
        if (target && target.name !== name) throw usageError(`--name ${name} differs from the overlay folder's name ${target.name}: it would not be served; leave --name out`);
        const params = readFlags(heatmapParameters, HEATMAP_FLAGS, o);
        const checked = checkParameters(heatmapParameters, HEATMAP_FLAGS, params);
        const { colormap, cutoff, sampling } = params;
        const gridKind = parseChoice('--grid', o.grid, ['native', 'openslide', 'custom'] as const);
        const tileSize = parseWhole('--tile-size', o.tileSize)!;
        const overlap = parseWhole('--overlap', o.overlap)!;
        if (gridKind !== 'custom' && (o.tileSize !== '254' || o.overlap !== '1')) throw usageError('--tile-size and --overlap go with --grid custom');
        await translated(async () => planHeatmap({ name, colormap, cutoff, sampling, grid: { tileSize, overlap } }));
        checked.assertWithinBounds();
        await requireFile('MAP', input);
        const slide = await openSlide(o.slide);
        const { DeepZoom, OPENSLIDE_GRID } = await import('../../../wsi/index.js');
        const grid = gridKind === 'custom' ? { tileSize, overlap } : gridKind === 'openslide' ? OPENSLIDE_GRID : DeepZoom.nativeGrid(slide) ?? OPENSLIDE_GRID;
        const level0 = { width: slide.width, height: slide.height };
        await slide.close();
        const map = await translated(() => loadProbabilityMap(input, level0));
        const progress = progressReporter('heatmap', 'tiles');
        try {
          const started = Date.now();
          const render = (folder: string) =>
            translated(() => heatmap(map, { out: folder, name, colormap, cutoff, sampling, grid, onProgress: progress.update, extra: { slide: path.resolve(o.slide!), map: path.resolve(input) } }));
          const result = target ? await publishOverlay(target, o.replace === true, render) : await render(out);
          progress.stop();
          process.stderr.write(
            `heatmap: ${result.levels.length} levels, ${result.tiles} tiles of ${grid.tileSize}/${grid.overlap} (${result.emptyTiles} transparent) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
          );
          process.stdout.write(`${result.dzi}\n${result.overview}\n${result.json}\n`);
        } finally {
          progress.stop();
        }
      }),
    );
}
