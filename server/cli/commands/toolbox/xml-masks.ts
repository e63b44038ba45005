import { Command } from 'commander';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { xmlMasksParameters } from '../../../queue/tasks/parameters.js';
import type { LayerName } from '../../../toolbox/index.js';
import { progressReporter } from '../../progress.js';
import { runCommand } from '../../run.js';
import { checkParameters, flagDefault, parseChoice, parseWhole, readFlags, usageError, type ParameterFlags } from '../../toolbox-flags.js';
import { openSlide, prepareOut, requireFile } from './files.js';
import { EXIT_HELP } from './help.js';
import { translated } from './library-errors.js';

/** The flags that stand for the queue's job parameters: read and checked as the job API checks them. */
const XML_MASKS_FLAGS: ParameterFlags<typeof xmlMasksParameters> = { downsample: '--downsample', layers: '--layers' };

interface XmlCliOptions {
  out?: string;
  width?: string;
  height?: string;
  slide?: string;
  downsample?: string;
  layers?: string;
  format?: string;
}

export function xmlMasksCommand(): Command {
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
        const { loadAnnotations, parseLayerMapping, saveXmlMasks, ToolboxError, xmlMaskGrid, xmlMasks } = await import('../../../toolbox/index.js');
        let width: number;
        let height: number;
        if (o.slide !== undefined) {
          if (o.width !== undefined || o.height !== undefined) throw usageError('--slide and --width/--height exclude each other; give one');
          const slide = await openSlide(o.slide);
          ({ width, height } = slide);
          await slide.close();
        } else {
          if (o.width === undefined || o.height === undefined) throw usageError('give the slide\'s level-0 size with --width and --height, or --slide');
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
          const { saveXmlMaskTiffs } = await import('../../../toolbox/index.js');
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
