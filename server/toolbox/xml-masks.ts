/**
 * Aperio ImageScope XML → one binary mask per annotation layer.
 *
 * A layer's mask is the union of its polygons, rectangles and ellipses minus
 * the union of its NegativeROA="1" regions (every hole of a layer is cut from
 * the whole layer, which is what `placeHoles` would give for holes inside
 * their shape, and also cuts a notch drawn across an outline). Arrows and
 * rulers are ignored. Pixels are tested at their centres (see raster.ts).
 *
 * Masks are built in memory and refused above MAX_MASK_PIXELS (16384 × 16384)
 * with a message naming the smallest downsample that fits; tiled pyramidal
 * TIFF output for larger masks is not written yet.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isShape, parseAperioXml, placeHoles, regionArea, type AperioAnnotations, type AperioLayer, type AperioRegion } from '../annotations/index.js';
import { requireNumber, requireWhole, ToolboxError } from './errors.js';
import { countSet, MAX_MASK_PIXELS, writeJson, writeMaskPng, type Mask } from './mask.js';
import { fillRegion } from './raster.js';

/** Which layer (by Annotation Id) holds which class. */
export interface LayerName {
  id: number;
  name: string;
}

/** Layer mappings per cancer type. PAIP 2019: Id 1 whole tumour, Id 2 viable tumour. */
export const LAYER_PRESETS: Readonly<Record<string, readonly LayerName[]>> = {
  paip2019: [
    { id: 1, name: 'whole' },
    { id: 2, name: 'viable' },
  ],
};

export const DEFAULT_XML_DOWNSAMPLE = 16;

/** `paip2019` or `1=whole,2=viable` → layer names; a ToolboxError for anything else. */
export function parseLayerMapping(spec: string): LayerName[] {
  const preset = LAYER_PRESETS[spec.trim()];
  if (preset) return preset.map((l) => ({ ...l }));
  const layers: LayerName[] = [];
  for (const part of spec.split(',')) {
    const match = /^\s*(\d+)\s*=\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*$/.exec(part);
    if (!match) {
      throw new ToolboxError('layers', `must be a preset (${Object.keys(LAYER_PRESETS).join(', ')}) or ID=NAME pairs such as 1=whole,2=viable, got "${spec}"`);
    }
    const id = Number(match[1]);
    if (layers.some((l) => l.id === id)) throw new ToolboxError('layers', `names layer ${id} twice`);
    if (layers.some((l) => l.name === match[2])) throw new ToolboxError('layers', `uses the name ${match[2]} twice`);
    layers.push({ id, name: match[2]! });
  }
  return layers;
}

/** Read and parse an ImageScope XML file (AnnotationError for a malformed one). */
export async function loadAnnotations(file: string): Promise<AperioAnnotations> {
  return parseAperioXml(await readFile(file, 'utf8'));
}

export interface MaskGrid {
  width: number;
  height: number;
  downsample: { x: number; y: number };
}

/** The grid of masks at `downsample` over a level-0 image of width × height: ⌈W/d⌉ × ⌈H/d⌉ pixels of d × d. */
export function xmlMaskGrid(width: number, height: number, downsample = DEFAULT_XML_DOWNSAMPLE): MaskGrid {
  requireWhole('width', width, 1);
  requireWhole('height', height, 1);
  requireNumber('downsample', downsample, 1, Math.max(width, height));
  const w = Math.ceil(width / downsample);
  const h = Math.ceil(height / downsample);
  if (w * h > MAX_MASK_PIXELS) {
    let fits = Math.ceil(Math.sqrt((width * height) / MAX_MASK_PIXELS));
    while (Math.ceil(width / fits) * Math.ceil(height / fits) > MAX_MASK_PIXELS) fits++;
    throw new ToolboxError('downsample', `${downsample} gives ${w}×${h} masks, over the ${MAX_MASK_PIXELS} pixels built in memory; use a downsample of at least ${fits}`);
  }
  return { width: w, height: h, downsample: { x: downsample, y: downsample } };
}

/** The union of the shape regions minus the union of the negative ones, rasterised on `grid`. */
export function regionsMask(regions: readonly AperioRegion[], grid: MaskGrid): Mask {
  const mask: Mask = { ...grid, data: new Uint8Array(grid.width * grid.height) };
  for (const region of regions) if (isShape(region.type) && !region.negative) fillRegion(mask, region, 255);
  for (const region of regions) if (isShape(region.type) && region.negative) fillRegion(mask, region, 0);
  return mask;
}

export interface LayerMask extends Mask {
  layerId: number;
  /** The mapped name, else the layer's own, else `layer-<id>`. */
  name: string;
  /** The layer's Name attribute in the XML. */
  xmlName: string;
  shapes: number;
  holes: number;
  /** Holes that lie in no shape of their layer: they cut nothing. */
  holesOutside: number;
  /** Rulers and arrows, ignored. */
  lines: number;
  pixels: number;
  /** pixels × downsample², in level-0 px². */
  area: number;
  /** From the geometry: Σ shape areas − Σ areas of holes inside a shape, in level-0 px² (overlaps not merged). */
  geometricArea: number;
}

export interface XmlMasksOptions {
  /** Level-0 size of the slide the annotations belong to. */
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel (default 16). */
  downsample?: number;
  /** Which layers to rasterise and what to call them; default every layer with a shape, named from the XML. */
  layers?: readonly LayerName[];
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

/** Check the layer mapping against the XML (a ToolboxError for a layer it does not have) and resolve the names. */
export function selectLayers(annotations: AperioAnnotations, mapping?: readonly LayerName[]): { layer: AperioLayer; name: string }[] {
  const byId = new Map<number, AperioLayer>();
  for (const layer of annotations.layers) if (!byId.has(layer.id)) byId.set(layer.id, layer);
  if (mapping) {
    return mapping.map(({ id, name }) => {
      const layer = byId.get(id);
      if (!layer) throw new ToolboxError('layers', `names layer ${id}, but the XML has layer(s) ${[...byId.keys()].join(', ') || 'none'}`);
      return { layer, name };
    });
  }
  return [...byId.values()].filter((layer) => layer.regions.some((r) => isShape(r.type))).map((layer) => ({ layer, name: slug(layer.name) || `layer-${layer.id}` }));
}

/** Rasterise one layer on `grid`. */
export function layerMask(layer: AperioLayer, name: string, grid: MaskGrid): LayerMask {
  const mask = regionsMask(layer.regions, grid);
  const placement = placeHoles(layer.regions);
  const crossing = new Set(placement.crossing);
  let geometricArea = 0;
  layer.regions.forEach((region, index) => {
    if (!isShape(region.type)) return;
    if (!region.negative) geometricArea += regionArea(region);
    else if (placement.owner.has(index) && !crossing.has(index)) geometricArea -= regionArea(region);
  });
  const pixels = countSet(mask);
  return {
    ...mask,
    layerId: layer.id,
    name,
    xmlName: layer.name,
    shapes: layer.regions.filter((r) => isShape(r.type) && !r.negative).length,
    holes: layer.regions.filter((r) => isShape(r.type) && r.negative).length,
    holesOutside: placement.unplaced.length,
    lines: layer.regions.filter((r) => !isShape(r.type)).length,
    pixels,
    area: pixels * grid.downsample.x * grid.downsample.y,
    geometricArea,
  };
}

/** One mask per selected layer. Parameters and layers are checked before anything is rasterised. */
export function xmlMasks(annotations: AperioAnnotations, options: XmlMasksOptions): LayerMask[] {
  const grid = xmlMaskGrid(options.width, options.height, options.downsample ?? DEFAULT_XML_DOWNSAMPLE);
  const selected = selectLayers(annotations, options.layers);
  return selected.map(({ layer, name }) => layerMask(layer, name, grid));
}

/** Write `<dir>/<name>.png` per layer and `<dir>/xml-masks.json`; returns the paths written. */
export async function saveXmlMasks(masks: readonly LayerMask[], dir: string, sidecar: { level0: { width: number; height: number }; [key: string]: unknown }): Promise<{ pngs: string[]; json: string }> {
  const pngs: string[] = [];
  const used = new Set<string>();
  const files = masks.map((m) => {
    let base = `mask-${m.layerId}-${m.name}`;
    for (let k = 2; used.has(base); k++) base = `mask-${m.layerId}-${m.name}-${k}`;
    used.add(base);
    return `${base}.png`;
  });
  for (const [i, mask] of masks.entries()) {
    const file = path.join(dir, files[i]!);
    await writeMaskPng(mask, file);
    pngs.push(file);
  }
  const json = path.join(dir, 'xml-masks.json');
  const first = masks[0];
  await writeJson(json, {
    tool: 'xml-masks',
    ...sidecar,
    mask: first ? { width: first.width, height: first.height } : null,
    downsample: first?.downsample ?? null,
    layers: masks.map((m, i) => ({
      id: m.layerId,
      name: m.name,
      xmlName: m.xmlName,
      file: files[i],
      shapes: m.shapes,
      holes: m.holes,
      holesOutside: m.holesOutside,
      ignoredLines: m.lines,
      pixels: m.pixels,
      area: m.area,
      geometricArea: m.geometricArea,
    })),
  });
  return { pngs, json };
}
