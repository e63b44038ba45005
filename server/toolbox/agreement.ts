/**
 * Agreement between two annotations of one slide (docs/references.md, "Overlap metrics"):
 * each layer rasterised on the same grid, IoU = |A∩B| / |A∪B| per layer
 * (1 when both are empty), and mIoU over {background, tumour}.
 */
import { isShape, type AperioAnnotations, type AperioLayer } from '../annotations/index.js';
import { ToolboxError } from './errors.js';
import type { Mask } from './mask.js';
import { firstCentreFrom } from './raster.js';
import { regionsMask, xmlMaskGrid, type MaskGrid } from './xml-masks.js';

export interface Overlap {
  /** Pixels set in A, in B, in both, in either. */
  a: number;
  b: number;
  intersection: number;
  union: number;
  iou: number;
}

export function overlap(a: Pick<Mask, 'data'>, b: Pick<Mask, 'data'>): Overlap {
  if (a.data.length !== b.data.length) throw new Error(`masks of ${a.data.length} and ${b.data.length} pixels cannot be compared`);
  let inA = 0;
  let inB = 0;
  let both = 0;
  for (let i = 0; i < a.data.length; i++) {
    const x = a.data[i] !== 0;
    const y = b.data[i] !== 0;
    if (x) inA++;
    if (y) inB++;
    if (x && y) both++;
  }
  const union = inA + inB - both;
  return { a: inA, b: inB, intersection: both, union, iou: union === 0 ? 1 : both / union };
}

/** The overlap of two masks' complements, from the overlap of the masks themselves (nothing allocated). */
function complementOverlap(of: Overlap, pixels: number): Overlap {
  const a = pixels - of.a;
  const b = pixels - of.b;
  const intersection = pixels - of.union;
  const union = pixels - of.intersection;
  return { a, b, intersection, union, iou: union === 0 ? 1 : intersection / union };
}

/**
 * An upper bound on the work of rasterising both annotations on `grid`, in
 * mask pixels touched: each shape's bounding box in grid cells, plus each
 * polygon edge's rows (counted 16 times over: a crossing costs more than a
 * pixel filled), for every layer and for the tumour mask. It grows with the
 * outlines and shrinks as the downsample grows; the comparison bounds it.
 */
export function comparisonWork(a: AperioAnnotations, b: AperioAnnotations, grid: MaskGrid): number {
  let work = 0;
  for (const doc of [a, b]) {
    for (const layer of doc.layers) {
      for (const region of layer.regions) {
        if (!isShape(region.type) || region.vertices.length === 0) continue;
        let minX = Infinity;
        let minY = Infinity;
        let maxX = -Infinity;
        let maxY = -Infinity;
        for (const [x, y] of region.vertices) {
          if (x < minX) minX = x;
          if (x > maxX) maxX = x;
          if (y < minY) minY = y;
          if (y > maxY) maxY = y;
        }
        const cols = Math.min(grid.width, Math.max(0, firstCentreFrom(maxX, grid.downsample.x) - firstCentreFrom(minX, grid.downsample.x) + 1));
        const rows = Math.min(grid.height, Math.max(0, firstCentreFrom(maxY, grid.downsample.y) - firstCentreFrom(minY, grid.downsample.y) + 1));
        work += cols * rows;
        const vertices = region.vertices;
        for (let i = 0, j = vertices.length - 1; i < vertices.length; j = i++) {
          work += 16 * Math.min(grid.height, Math.abs(vertices[i]![1] - vertices[j]![1]) / grid.downsample.y + 1);
        }
      }
    }
  }
  // Each layer is drawn once for its own figures and once more into the tumour mask.
  return 2 * work + 4 * grid.width * grid.height;
}

export interface CompareOptions {
  /** Level-0 size of the slide. */
  width: number;
  height: number;
  /** Level-0 pixels per mask pixel (default 16). */
  downsample?: number;
  /** The layer that is "tumour" for mIoU: an Annotation Id; default 1 (whole tumour in PAIP 2019) when both have it, else the union of all layers. */
  tumourLayer?: number;
}

export interface LayerAgreement extends Overlap {
  layerId: number;
  nameA: string | null;
  nameB: string | null;
}

export interface AgreementReport {
  level0: { width: number; height: number };
  downsample: number;
  grid: { width: number; height: number };
  layers: LayerAgreement[];
  tumour: Overlap & { layer: number | 'all' };
  background: Overlap;
  /** Mean of the background and tumour IoU. */
  miou: number;
}

/** IoU per layer (matched by Annotation Id) and mIoU of two annotations of one slide, rasterised at `downsample`. */
export function compareAnnotations(a: AperioAnnotations, b: AperioAnnotations, options: CompareOptions): AgreementReport {
  const downsample = options.downsample ?? 16;
  const grid = xmlMaskGrid(options.width, options.height, downsample);
  const ids = [...new Set([...a.layers, ...b.layers].map((l) => l.id))].sort((x, y) => x - y);
  const find = (doc: AperioAnnotations, id: number) => doc.layers.find((l) => l.id === id);
  const maskOf = (layer: AperioLayer | undefined): Mask => (layer ? regionsMask(layer.regions, grid) : empty(grid));

  const layers = ids.map((id): LayerAgreement => {
    const [la, lb] = [find(a, id), find(b, id)];
    return { layerId: id, nameA: la?.name ?? null, nameB: lb?.name ?? null, ...overlap(maskOf(la), maskOf(lb)) };
  });

  let tumourLayer: number | 'all';
  if (options.tumourLayer !== undefined) {
    if (!find(a, options.tumourLayer) && !find(b, options.tumourLayer)) {
      throw new ToolboxError('tumour-layer', `layer ${options.tumourLayer} is in neither annotation (they have ${ids.join(', ') || 'none'})`);
    }
    tumourLayer = options.tumourLayer;
  } else {
    tumourLayer = find(a, 1) && find(b, 1) ? 1 : 'all';
  }
  const tumourOf = (doc: AperioAnnotations): Mask =>
    tumourLayer === 'all' ? unionOfLayers(doc.layers, grid) : maskOf(find(doc, tumourLayer));
  const tumour = overlap(tumourOf(a), tumourOf(b));
  const background = complementOverlap(tumour, grid.width * grid.height);
  return {
    level0: { width: options.width, height: options.height },
    downsample,
    grid: { width: grid.width, height: grid.height },
    layers,
    tumour: { layer: tumourLayer, ...tumour },
    background,
    miou: (tumour.iou + background.iou) / 2,
  };
}

function empty(grid: MaskGrid): Mask {
  return { ...grid, data: new Uint8Array(grid.width * grid.height) };
}

/** Every layer's mask (its shapes less its own holes) together, one layer in memory at a time. */
function unionOfLayers(layers: readonly AperioLayer[], grid: MaskGrid): Mask {
  const out = empty(grid);
  for (const layer of layers) {
    const mask = regionsMask(layer.regions, grid);
    for (let i = 0; i < out.data.length; i++) if (mask.data[i] !== 0) out.data[i] = 255;
  }
  return out;
}

