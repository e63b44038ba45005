/**
 * Layer masks too large to build in memory, as tiled pyramidal TIFF: one
 * band of tile rows is rasterised at a time (memory: a band, whatever the
 * slide), its tiles deflated and appended; each lower level is rasterised
 * from the shapes again at twice the downsample, so every level is exact
 * rather than a reduction of the one above. Grey, 8 bits, 255 inside.
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { isShape, type AperioAnnotations, type AperioLayer } from '../annotations/index.js';
import { Compression, Photometric, TiffWriter } from '../wsi/tiff/writer.js';
import { requireNumber, requireWhole, ToolboxError } from './errors.js';
import { writeJson } from './mask.js';
import { fillRegion } from './raster.js';
import { selectLayers, type LayerName } from './xml-masks.js';

const deflate = promisify(zlib.deflate);

export interface MaskTiffOptions {
  /** Level-0 size of the slide. */
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel at the full-resolution level of the TIFF. */
  downsample: number;
  /** Tile size, a multiple of 16 (default 512). */
  tileSize?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface MaskTiffLevel {
  width: number;
  height: number;
  downsample: number;
}

export interface MaskTiffResult {
  file: string;
  levels: MaskTiffLevel[];
  /** Mask pixels set at the full-resolution level. */
  pixels: number;
}

/** The levels of the pyramid: the mask at `downsample`, then halved until one tile holds it. */
export function maskTiffLevels(width: number, height: number, downsample: number, tileSize: number): MaskTiffLevel[] {
  const levels: MaskTiffLevel[] = [];
  for (let d = downsample; ; d *= 2) {
    const level = { width: Math.ceil(width / d), height: Math.ceil(height / d), downsample: d };
    levels.push(level);
    if (Math.max(level.width, level.height) <= tileSize) return levels;
  }
}

/** Rasterise `layer` into a tiled pyramidal TIFF at `file` (written beside it, then renamed into place). */
export async function writeLayerMaskTiff(layer: AperioLayer, file: string, options: MaskTiffOptions): Promise<MaskTiffResult> {
  requireWhole('width', options.width, 1);
  requireWhole('height', options.height, 1);
  requireNumber('downsample', options.downsample, 1, Math.max(options.width, options.height));
  const tile = requireWhole('tileSize', options.tileSize ?? 512, 16, 4096);
  if (tile % 16 !== 0) throw new ToolboxError('tileSize', `must be a multiple of 16, as TIFF tiles are, got ${tile}`);
  const levels = maskTiffLevels(options.width, options.height, options.downsample, tile);
  const positives = layer.regions.filter((r) => isShape(r.type) && !r.negative);
  const holes = layer.regions.filter((r) => isShape(r.type) && r.negative);
  const bandsTotal = levels.reduce((n, l) => n + Math.ceil(l.height / tile), 0);
  let bandsDone = 0;
  let pixels = 0;

  const partial = `${file}.partial`;
  const writer = await TiffWriter.create(partial);
  try {
    for (const [index, level] of levels.entries()) {
      const image = writer.beginImage({
        width: level.width,
        height: level.height,
        tile: { width: tile, height: tile },
        compression: Compression.AdobeDeflate,
        photometric: Photometric.MinIsBlack,
        samplesPerPixel: 1,
        newSubfileType: index === 0 ? 0 : 1,
        description: `Slidebank mask of layer ${layer.id} (${layer.name}); level-0 pixels per mask pixel: ${level.downsample}`,
      });
      const across = Math.ceil(level.width / tile);
      for (let firstRow = 0; firstRow < level.height; firstRow += tile) {
        const rows = Math.min(tile, level.height - firstRow);
        const band = { width: level.width, height: rows, firstRow, downsample: { x: level.downsample, y: level.downsample }, data: new Uint8Array(level.width * rows) };
        for (const region of positives) fillRegion(band, region, 255);
        for (const region of holes) fillRegion(band, region, 0);
        if (index === 0) for (const v of band.data) if (v !== 0) pixels++;
        const tiles = Array.from({ length: across }, (_, c) => {
          // Every TIFF tile is whole: the part beyond the image is padding (0).
          const out = new Uint8Array(tile * tile);
          const x0 = c * tile;
          const w = Math.min(tile, level.width - x0);
          for (let y = 0; y < rows; y++) out.set(band.data.subarray(y * level.width + x0, y * level.width + x0 + w), y * tile);
          return deflate(out);
        });
        for (const data of await Promise.all(tiles)) await image.write(data);
        options.onProgress?.(++bandsDone, bandsTotal);
      }
      image.end();
    }
    await writer.close();
    await rename(partial, file);
  } catch (error) {
    await writer.abort();
    await rm(partial, { force: true });
    throw error;
  }
  return { file, levels, pixels };
}

/**
 * Every selected layer of an annotation as `<dir>/mask-<id>-<name>.tif`, with
 * `<dir>/xml-masks.json` describing the pyramid of each (what `saveXmlMasks`
 * writes for PNG masks, with `levels` in place of one size).
 */
export async function saveXmlMaskTiffs(
  annotations: AperioAnnotations,
  options: Omit<MaskTiffOptions, 'onProgress'> & { layers?: readonly LayerName[]; onProgress?: (done: number, total: number) => void },
  dir: string,
  sidecar: Record<string, unknown>,
): Promise<{ tiffs: string[]; json: string; results: (MaskTiffResult & { layerId: number; name: string })[] }> {
  const selected = selectLayers(annotations, options.layers);
  const results: (MaskTiffResult & { layerId: number; name: string })[] = [];
  for (const [i, { layer, name }] of selected.entries()) {
    const file = path.join(dir, `mask-${layer.id}-${name}.tif`);
    const result = await writeLayerMaskTiff(layer, file, {
      ...options,
      onProgress: (done, total) => options.onProgress?.(i * total + done, selected.length * total),
    });
    results.push({ ...result, layerId: layer.id, name });
  }
  const json = path.join(dir, 'xml-masks.json');
  await writeJson(json, {
    tool: 'xml-masks',
    ...sidecar,
    format: 'tiled pyramidal TIFF, 8-bit grey, Adobe Deflate; 255 inside the layer',
    layers: results.map((r) => ({ id: r.layerId, name: r.name, file: path.basename(r.file), pixels: r.pixels, area: r.pixels * options.downsample * options.downsample, levels: r.levels })),
  });
  return { tiffs: results.map((r) => r.file), json, results };
}
