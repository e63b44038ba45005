/**
 * An AI proposal from a probability map (what `toolbox stitch` writes): the
 * cells at or above a threshold, traced into polygons with their holes,
 * simplified, and scaled to level-0 pixels with the map's downsample.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hexToBgr, RegionType, type AperioAnnotations, type AperioRegion } from '../annotations/index.js';
import { traceOutlines } from './contours.js';
import { ToolboxError } from './errors.js';
import { readGreyImage } from './png-stream.js';

export interface MapOutlineOptions {
  /** Probability from 0 to 1 at or above which a cell is tumour (default 0.5). */
  threshold?: number;
  /** Level-0 pixels per map pixel; default: the sidecar's (`<map>.json`, as stitch writes it). */
  downsample?: { x: number; y: number };
  /** Simplification tolerance in map pixels (default 1). */
  tolerance?: number;
  /** Smallest outline or hole kept, in map pixels (default 4). */
  minArea?: number;
  layerName?: string;
}

export async function outlinesFromProbabilityMap(file: string, options: MapOutlineOptions = {}): Promise<AperioAnnotations> {
  const threshold = options.threshold ?? 0.5;
  if (!(threshold > 0 && threshold <= 1)) throw new ToolboxError('threshold', `must be above 0 and at most 1, got ${threshold}`);
  const downsample = options.downsample ?? (await sidecarDownsample(file));
  let image;
  try {
    image = await readGreyImage(file);
  } catch (error) {
    throw new ToolboxError('map', `${file} cannot be read as a probability map: ${(error as Error).message.split('\n')[0]}`);
  }
  if (image.colourChannels !== 1) throw new ToolboxError('map', `${path.basename(file)} is not a grey probability map (${image.colourChannels} colour channels)`);
  const { width, height, data, scale } = image;
  const cut = threshold * scale;
  const outlines = traceOutlines(width, height, (x, y) => data[y * width + x]! >= cut, {
    ...(options.tolerance !== undefined ? { tolerance: options.tolerance } : {}),
    ...(options.minArea !== undefined ? { minArea: options.minArea } : {}),
  });
  const regions: AperioRegion[] = [];
  const scaled = (ring: [number, number][]) => ring.map(([x, y]): [number, number] => [x * downsample.x, y * downsample.y]);
  for (const outline of outlines) {
    regions.push(region(regions.length + 1, scaled(outline.outer), false));
    for (const hole of outline.holes) regions.push(region(regions.length + 1, scaled(hole), true));
  }
  const colour = '#ff0000';
  return {
    micronsPerPixel: null,
    layers: [
      {
        id: 1,
        name: options.layerName ?? 'Tumor',
        lineColor: hexToBgr(colour),
        colour,
        visible: true,
        type: 3, // algorithm output, in ImageScope's terms
        attributes: [],
        regions,
        headers: [],
        plots: [],
        extra: {},
        children: [],
      },
    ],
    extra: {},
    children: [],
  };
}

function region(id: number, vertices: [number, number][], negative: boolean): AperioRegion {
  return { id, type: RegionType.polygon, negative, text: '', vertices, attributes: [], extra: {}, children: [] };
}

async function sidecarDownsample(file: string): Promise<{ x: number; y: number }> {
  const sidecar = file.replace(/\.(png|tiff?)$/i, '.json');
  let parsed: { downsample?: { x?: unknown; y?: unknown } };
  try {
    parsed = JSON.parse(await readFile(sidecar, 'utf8')) as typeof parsed;
  } catch {
    throw new ToolboxError('downsample', `is needed: ${path.basename(sidecar)} (the map's sidecar) is missing or not JSON; give the map's downsample`);
  }
  const { x, y } = parsed.downsample ?? {};
  if (typeof x !== 'number' || typeof y !== 'number' || !(x > 0) || !(y > 0)) throw new ToolboxError('downsample', `is not in ${path.basename(sidecar)}; give the map's downsample`);
  return { x, y };
}
