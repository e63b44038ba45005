import { Command } from 'commander';
import { mkdir, realpath, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../config/index.js';
import { ExitCode, FatalError } from '../../errors.js';
import { heatmapParameters, patchesParameters, stitchParameters, tissueMaskParameters, xmlMasksParameters } from '../../queue/tasks/parameters.js';
import type { HeatmapResult, LayerName } from '../../toolbox/index.js';
import type { Slide as SlideType } from '../../wsi/index.js';
import { progressReporter } from '../progress.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';
import {
  checkParameters,
  flagBounds,
  flagDefault,
  parseChoice,
  parseWhole,
  readFlags,
  usageError,
  type ParameterFlags,
} from '../toolbox-flags.js';

/** The command-line flag of each library parameter, for error messages. */
const FLAGS: Record<string, string> = {
  downsample: '--downsample',
  mpp: '--mpp',
  method: '--method',
  areaUnit: '--area-unit',
  minObjectArea: '--min-object',
  minHoleArea: '--min-hole',
  width: '--width',
  height: '--height',
  layers: '--layers',
  level: '--level',
  magnification: '--magnification',
  size: '--size',
  stride: '--stride',
  tissueThreshold: '--tissue-threshold',
  tumourThreshold: '--tumour-threshold',
  tumourLayer: '--tumour-layer',
  labels: '--labels',
  maskDownsample: '--mask-downsample',
  'tissue.downsample': '--tissue-downsample',
  'tissue.mpp': '--tissue-downsample',
  'tissue.method': '--tissue-method',
  format: '--format',
  quality: '--quality',
  limit: '--limit',
  out: '--out',
  window: '--window',
  stripHeight: '--strip-height',
  predictions: 'PREDICTIONS',
  map: 'MAP',
  name: '--name',
  colormap: '--colormap',
  cutoff: '--cutoff',
  sampling: '--sampling',
  tileSize: '--tile-size',
  overlap: '--overlap',
};

const INPUT_HELP =
  'INPUT is a slide file (Aperio SVS or tiled pyramidal TIFF). Slide ids from the catalog are not accepted yet: they come with the toolbox jobs.';
const EXIT_HELP = 'Exit codes: 0 written, 1 the work failed (unreadable slide or XML), 2 bad option (nothing is written).';

const bad = usageError;

/** The flags that stand for the queue's job parameters, command by command: read and checked as the job API checks them. */
const TISSUE_MASK_FLAGS: ParameterFlags<typeof tissueMaskParameters> = {
  method: '--method',
  downsample: '--downsample',
  mpp: '--mpp',
  areaUnit: '--area-unit',
  minObjectArea: '--min-object',
  minHoleArea: '--min-hole',
};
const XML_MASKS_FLAGS: ParameterFlags<typeof xmlMasksParameters> = { downsample: '--downsample', layers: '--layers' };
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
const STITCH_FLAGS: ParameterFlags<typeof stitchParameters> = { downsample: '--downsample', window: '--window' };
const HEATMAP_FLAGS: ParameterFlags<typeof heatmapParameters> = { name: '--name', colormap: '--colormap', cutoff: '--cutoff', sampling: '--sampling' };

/** The library's refusal as a one-line reason naming the flag (exit code 2); anything else passes through. */
async function translated<T>(work: () => Promise<T>): Promise<T> {
  const { ToolboxError } = await import('../../toolbox/index.js');
  const { AnnotationError } = await import('../../annotations/index.js');
  const { WsiError } = await import('../../wsi/index.js');
  try {
    return await work();
  } catch (error) {
    if (error instanceof ToolboxError) throw bad(`${FLAGS[error.parameter] ?? error.parameter} ${error.problem}`);
    if (error instanceof AnnotationError) throw new FatalError(ExitCode.failure, error.message);
    if (error instanceof WsiError) throw new FatalError(ExitCode.failure, error.message);
    throw error;
  }
}

async function requireFile(what: string, file: string): Promise<void> {
  const info = await stat(file).catch(() => undefined);
  if (!info) {
    if (/^\d+$/.test(file)) throw bad(`${what} ${file}: slide ids are not supported yet (they come with the toolbox jobs); give a slide file`);
    throw bad(`${what} ${file} does not exist`);
  }
  if (!info.isFile()) throw bad(`${what} ${file} is not a file`);
}

async function prepareOut(out: string | undefined): Promise<string> {
  if (out === undefined || out === '') throw bad('--out is required: the folder to write into');
  const info = await stat(out).catch(() => undefined);
  if (info && !info.isDirectory()) throw bad(`--out must be a folder, but ${out} is a file`);
  return out;
}

async function openSlide(file: string): Promise<SlideType> {
  await requireFile('INPUT', file);
  const { Slide } = await import('../../wsi/index.js');
  return translated(() => Slide.open(file));
}

interface TissueCliOptions {
  out?: string;
  method?: string;
  downsample?: string;
  mpp?: string;
  areaUnit?: string;
  minObject?: string;
  minHole?: string;
  name?: string;
}

function tissueMaskCommand(): Command {
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
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(o.name ?? '')) throw bad(`--name must be letters, digits, '.', '_' or '-', got "${o.name}"`);
        const options = readFlags(tissueMaskParameters, TISSUE_MASK_FLAGS, o);
        const checked = checkParameters(tissueMaskParameters, TISSUE_MASK_FLAGS, options);
        const slide = await openSlide(input);
        const { tissueMask, tissueMaskGeometry, saveTissueMask } = await import('../../toolbox/index.js');
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

interface XmlCliOptions {
  out?: string;
  width?: string;
  height?: string;
  slide?: string;
  downsample?: string;
  layers?: string;
  format?: string;
}

function xmlMasksCommand(): Command {
  return new Command('xml-masks')
    .description('rasterise an Aperio ImageScope XML into one 0/255 PNG mask per layer, NegativeROA regions cut out, with a JSON sidecar')
    .argument('<input>', 'Aperio ImageScope XML file')
    .option('--out <dir>', 'folder for mask-<id>-<name>.png and xml-masks.json (made if missing)')
    .option('--width <px>', 'level-0 width of the slide (with --height, instead of --slide)')
    .option('--height <px>', 'level-0 height of the slide')
    .option('--slide <file>', 'the slide file, to read its level-0 size')
    .option('--downsample <n>', 'level-0 pixels per mask pixel, >= 1', flagDefault(xmlMasksParameters, 'downsample'))
    .option('--format <format>', 'png, tiff (tiled pyramidal, built a band at a time: any size), or auto: png when the mask fits in 16384x16384 pixels, else tiff', 'auto')
    .option('--layers <spec>', 'layers to rasterise and their names: a preset (paip2019 = 1=whole,2=viable) or ID=NAME pairs such as 1=whole,2=viable (default: every layer with a shape, named from the XML)')
    .addHelpText(
      'after',
      '\nPolygons, rectangles and ellipses are filled at pixel centres (even-odd); a layer\'s NegativeROA="1" regions are cut out of it; rulers and arrows are ignored.\n' +
        'The sidecar lists per layer the pixel count and the area in level-0 px² (count × downsample²).\n\n' +
        `Example:\n  slidebank toolbox xml-masks slide.xml --slide slide.svs --layers paip2019 --out /tmp/masks\n\n${EXIT_HELP}`,
    )
    .action(async (input: string, o: XmlCliOptions) =>
      runCommand(async () => {
        const out = await prepareOut(o.out);
        await requireFile('INPUT', input);
        const { loadAnnotations, parseLayerMapping, saveXmlMasks, ToolboxError, xmlMaskGrid, xmlMasks } = await import('../../toolbox/index.js');
        let width: number;
        let height: number;
        if (o.slide !== undefined) {
          if (o.width !== undefined || o.height !== undefined) throw bad('--slide and --width/--height exclude each other; give one');
          const slide = await openSlide(o.slide);
          ({ width, height } = slide);
          await slide.close();
        } else {
          if (o.width === undefined || o.height === undefined) throw bad('give the slide\'s level-0 size with --width and --height, or --slide');
          width = parseWhole('--width', o.width)!;
          height = parseWhole('--height', o.height)!;
        }
        const params = readFlags(xmlMasksParameters, XML_MASKS_FLAGS, o);
        const checked = checkParameters(xmlMasksParameters, XML_MASKS_FLAGS, params);
        const downsample = params.downsample!;
        const format = parseChoice('--format', o.format, ['auto', 'png', 'tiff'] as const)!;
        let layers: LayerName[] | undefined;
        let fits = true;
        await translated(async () => {
          layers = params.layers === undefined ? undefined : parseLayerMapping(params.layers);
          try {
            xmlMaskGrid(width, height, downsample);
          } catch (error) {
            if (format === 'png' || !(error instanceof ToolboxError) || error.parameter !== 'downsample' || !/over the/.test(error.problem)) throw error;
            fits = false;
          }
        });
        checked.assertWithinBounds();
        const annotations = await translated(() => loadAnnotations(input));
        const started = Date.now();
        if (format === 'tiff' || !fits) {
          const { saveXmlMaskTiffs } = await import('../../toolbox/index.js');
          await mkdir(out, { recursive: true });
          const progress = progressReporter('xml-masks', 'bands');
          try {
            const written = await translated(() =>
              saveXmlMaskTiffs(annotations, { width, height, downsample, ...(layers ? { layers } : {}), onProgress: progress.update }, out, {
                xml: path.resolve(input),
                ...(o.slide ? { slide: path.resolve(o.slide) } : {}),
                level0: { width, height },
                parameters: { downsample, layers: layers ?? null },
              }),
            );
            progress.stop();
            for (const r of written.results) {
              process.stderr.write(`xml-masks: layer ${r.layerId} (${r.name}): ${r.pixels} px, ${r.levels.length} pyramid levels from ${r.levels[0]!.width}x${r.levels[0]!.height}\n`);
            }
            process.stderr.write(`xml-masks: ${written.tiffs.length} tiled TIFF mask(s) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
            process.stdout.write([...written.tiffs, written.json].map((f) => `${f}\n`).join(''));
          } finally {
            progress.stop();
          }
          return;
        }
        const masks = await translated(async () => xmlMasks(annotations, { width, height, downsample, layers }));
        await mkdir(out, { recursive: true });
        const files = await saveXmlMasks(masks, out, {
          xml: path.resolve(input),
          ...(o.slide ? { slide: path.resolve(o.slide) } : {}),
          level0: { width, height },
          parameters: { downsample, layers: layers ?? null },
        });
        for (const m of masks) {
          process.stderr.write(`xml-masks: layer ${m.layerId} (${m.name}): ${m.shapes} shape(s), ${m.holes} hole(s), ${m.pixels} px, ${m.area} level-0 px²\n`);
        }
        process.stderr.write(`xml-masks: ${masks.length} mask(s) of ${masks[0]?.width ?? 0}x${masks[0]?.height ?? 0} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        process.stdout.write([...files.pngs, files.json].map((f) => `${f}\n`).join(''));
      }),
    );
}

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

function patchesCommand(): Command {
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
        if (params.labels === true && o.xml === undefined) throw bad('--labels needs the slide\'s annotations: give --xml FILE');
        if (o.xml !== undefined) await requireFile('--xml', o.xml);
        const { generatePatches, loadAnnotations, parseLayerMapping, planPatches } = await import('../../toolbox/index.js');
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

interface StitchCliOptions {
  slide?: string;
  out?: string;
  downsample?: string;
  window?: string;
  stripHeight?: string;
  name?: string;
}

function stitchCommand(): Command {
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
        if (o.slide === undefined) throw bad('--slide is required: the slide file the predictions belong to');
        if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(o.name ?? '')) throw bad(`--name must be letters, digits, '.', '_' or '-', got "${o.name}"`);
        const params = readFlags(stitchParameters, STITCH_FLAGS, o);
        const checked = checkParameters(stitchParameters, STITCH_FLAGS, params);
        const downsample = params.downsample!;
        const { window } = params;
        const stripHeight = parseWhole('--strip-height', o.stripHeight)!;
        await requireFile('PREDICTIONS', input);
        const { loadPredictions, stitch, stitchGrid } = await import('../../toolbox/index.js');
        const slide = await openSlide(o.slide);
        const level0 = { width: slide.width, height: slide.height };
        const levelDownsamples = slide.levels.map((l) => ({ x: slide.width / l.width, y: slide.height / l.height }));
        await slide.close();
        if (stripHeight < 1) throw bad(`--strip-height must be a whole number from 1 up, got ${stripHeight}`);
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

/** An `--out` folder that is an overlay of a catalog slide: `<paths.cache>/overlays/<slide id>/<name>`. */
interface OverlayTarget {
  config: Config;
  slideId: number;
  name: string;
}

/** The path with symbolic links resolved as far as it exists. */
async function canonical(file: string): Promise<string> {
  const absolute = path.resolve(file);
  const real = await realpath(absolute).catch(() => undefined);
  if (real !== undefined) return real;
  const parent = path.dirname(absolute);
  return parent === absolute ? absolute : path.join(await canonical(parent), path.basename(absolute));
}

/** Whether `out` lies under the overlays the server serves; anywhere else the heat map is plain files. */
async function overlayTarget(command: Command, out: string): Promise<OverlayTarget | undefined> {
  const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
  const root = path.join(config.paths.cache, 'overlays');
  const relative = path.relative(await canonical(root), await canonical(out));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  const [slide, name, ...rest] = relative.split(path.sep);
  const { OVERLAY_NAME } = await import('../../toolbox/index.js');
  if (!/^[1-9]\d{0,9}$/.test(slide ?? '') || name === undefined || !OVERLAY_NAME.test(name) || rest.length > 0) {
    throw bad(`--out inside ${root} must be ${root}/<slide id>/<name> (name: 1 to 64 of a-z, 0-9 and -), got ${out}`);
  }
  return { config, slideId: Number(slide), name };
}

/**
 * Publish an overlay from the command line: the operator's, under a name
 * claimed in the database like the jobs' names. A user's overlay (or a name
 * a user's job holds) is replaced only with `--replace`, and that is audited.
 * The pyramid is rendered into a staging folder and moved into place when
 * complete. Returns the result with its published paths.
 */
async function publishOverlay(target: OverlayTarget, replace: boolean, render: (folder: string) => Promise<HeatmapResult>): Promise<HeatmapResult> {
  const { config, slideId, name } = target;
  const { migrateToLatest, openDatabase, waitForDatabase } = await import('../../db/index.js');
  const { createLogger } = await import('../../logging.js');
  const { createSlidesRepository } = await import('../../catalog/create.js');
  const { createAuditLog } = await import('../../audit/create.js');
  const { overlayPublisher } = await import('../../queue/index.js');
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    if (!(await createSlidesRepository(db).findById(slideId))) throw bad(`--out names slide ${slideId}, which is not in the catalog`);
    const publisher = overlayPublisher(config, db);
    const operator = { ownerId: null, jobId: null };
    const holder = await publisher.holderAgainst(slideId, name, operator);
    const whose = (h: NonNullable<typeof holder>) =>
      `${h.published ? 'was published by' : 'is claimed by a job of'} ${h.ownerEmail ?? `user ${h.ownerId}`}${h.jobId === null ? '' : ` (job ${h.jobId})`}`;
    if (holder && !replace) throw bad(`overlay "${name}" of slide ${slideId} ${whose(holder)}; add --replace to replace it`);
    const staged = publisher.stagingFolder(slideId, 'cli');
    try {
      const result = await render(staged);
      const outcome = await publisher.publish(slideId, name, staged, operator, { replace });
      if (!outcome.published) throw bad(`overlay "${name}" of slide ${slideId} ${whose(outcome.holder)} now; nothing was published (add --replace to replace it)`);
      if (holder) {
        await createAuditLog(db).record({
          action: 'overlay.replaced',
          actorId: null,
          subjectType: 'slide',
          subjectId: slideId,
          details: { name, ownerId: holder.ownerId, jobId: holder.jobId, by: 'slidebank toolbox heatmap --replace' },
        });
      }
      const folder = publisher.folder(slideId, name);
      const moved = (file: string) => path.join(folder, path.relative(staged, file));
      return { ...result, dzi: moved(result.dzi), tilesDir: moved(result.tilesDir), overview: moved(result.overview), json: moved(result.json) };
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  } finally {
    await db.close();
  }
}

function heatmapCommand(): Command {
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
        if (o.slide === undefined) throw bad('--slide is required: the slide file the map covers');
        const { OVERLAY_NAME, heatmap, loadProbabilityMap, planHeatmap } = await import('../../toolbox/index.js');
        const name = o.name ?? (OVERLAY_NAME.test(path.basename(path.resolve(out))) ? path.basename(path.resolve(out)) : 'heatmap');
        const target = await overlayTarget(command, out);
        if (target && target.name !== name) throw bad(`--name ${name} differs from the overlay folder's name ${target.name}: it would not be served; leave --name out`);
        const params = readFlags(heatmapParameters, HEATMAP_FLAGS, o);
        const checked = checkParameters(heatmapParameters, HEATMAP_FLAGS, params);
        const { colormap, cutoff, sampling } = params;
        const gridKind = parseChoice('--grid', o.grid, ['native', 'openslide', 'custom'] as const);
        const tileSize = parseWhole('--tile-size', o.tileSize)!;
        const overlap = parseWhole('--overlap', o.overlap)!;
        if (gridKind !== 'custom' && (o.tileSize !== '254' || o.overlap !== '1')) throw bad('--tile-size and --overlap go with --grid custom');
        await translated(async () => planHeatmap({ name, colormap, cutoff, sampling, grid: { tileSize, overlap } }));
        checked.assertWithinBounds();
        await requireFile('MAP', input);
        const slide = await openSlide(o.slide);
        const { DeepZoom, OPENSLIDE_GRID } = await import('../../wsi/index.js');
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

export function toolboxCommand(): Command {
  return new Command('toolbox')
    .description('preprocessing toolbox: tissue masks, XML masks, patches, stitching of predictions, heat maps')
    .addCommand(tissueMaskCommand())
    .addCommand(xmlMasksCommand())
    .addCommand(patchesCommand())
    .addCommand(stitchCommand())
    .addCommand(heatmapCommand())
    .addHelpText('after', `\n${INPUT_HELP}\nRun "slidebank toolbox <tool> --help" for each tool's options.`);
}
