/**
 * Agreement between two annotations of one slide (REFERENCE.md, "Metrics"):
 * each layer rasterised on the same grid, IoU = |A∩B| / |A∪B| per layer
 * (1 when both are empty), and mIoU over {background, tumour}.
 */
import type { AperioAnnotations, AperioLayer } from '../annotations/index.js';
import { ToolboxError } from './errors.js';
import type { Mask } from './mask.js';
import { layerMask, xmlMaskGrid, type MaskGrid } from './xml-masks.js';

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

/** The complement of a mask: what is not marked, as 255. */
function invert(mask: Mask): Mask {
  return { ...mask, data: mask.data.map((v) => (v === 0 ? 255 : 0)) };
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
  const maskOf = (layer: AperioLayer | undefined): Mask => (layer ? layerMask(layer, layer.name, grid) : empty(grid));

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
    tumourLayer === 'all' ? union(doc.layers.map((l) => layerMask(l, l.name, grid)), grid) : maskOf(find(doc, tumourLayer));
  const [ta, tb] = [tumourOf(a), tumourOf(b)];
  const tumour = overlap(ta, tb);
  const background = overlap(invert(ta), invert(tb));
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

function union(masks: Mask[], grid: MaskGrid): Mask {
  const out = empty(grid);
  for (const mask of masks) for (let i = 0; i < out.data.length; i++) if (mask.data[i] !== 0) out.data[i] = 255;
  return out;
}
