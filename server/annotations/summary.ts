/**
 * What the catalog shows of a slide's annotations: per layer, how many
 * shapes and holes and how much area, and one number for the tumour.
 */
import { placeHoles, regionArea } from './geometry.js';
import { RegionType, isShape, type AperioAnnotations, type AperioLayer } from './model.js';

export interface LayerSummary {
  id: number;
  name: string;
  colour: string;
  /** Positive shapes: polygons, rectangles and ellipses not marked NegativeROA. */
  regions: number;
  /** Holes: shapes marked NegativeROA="1" (regions + holes = every shape of the layer). */
  holes: number;
  /** Holes that cross the outline of the shape they are cut from (see placeHoles): subtracted whole. */
  crossingHoles: number;
  /** Holes that touch no positive shape of their layer: not subtracted, and dropped from the GeoJSON. */
  unplacedHoles: number;
  rulers: number;
  arrows: number;
  vertices: number;
  /**
   * Level-0 px²: the positive shapes' areas, each less the areas of the holes
   * cut from it (never below 0). Overlapping shapes count twice, and a
   * crossing hole is subtracted whole, also the part outside its shape: exact
   * overlaps are the mask code's job.
   */
  areaPx: number;
  /** areaPx in mm², or null when the microns per pixel are unknown. */
  areaMm2: number | null;
}

export interface AnnotationSummary {
  micronsPerPixel: number | null;
  layers: LayerSummary[];
  /** Sums over the layers (areas too: layers that overlap, like whole and viable tumour, count twice). */
  totals: Omit<LayerSummary, 'id' | 'name' | 'colour'> & { layers: number };
  /** The layer `tumourArea*` is taken from (see summarizeAnnotations), or null when no layer has an area. */
  tumourLayerId: number | null;
  tumourAreaPx: number | null;
  tumourAreaMm2: number | null;
}

/** µm² per px² → mm²: px · mpp² / 10⁶. */
function toMm2(px: number, mpp: number | null): number | null {
  return mpp === null ? null : (px * mpp * mpp) / 1e6;
}

function summarizeLayer(layer: AperioLayer, mpp: number | null): LayerSummary {
  const { owner, crossing, unplaced } = placeHoles(layer.regions);
  const cut = new Map<number, number>();
  for (const [hole, shape] of owner) cut.set(shape, (cut.get(shape) ?? 0) + regionArea(layer.regions[hole]!));
  let areaPx = 0;
  layer.regions.forEach((region, index) => {
    if (isShape(region.type) && !region.negative) areaPx += Math.max(0, regionArea(region) - (cut.get(index) ?? 0));
  });
  const count = (test: (r: AperioLayer['regions'][number]) => boolean) => layer.regions.filter(test).length;
  return {
    id: layer.id,
    name: layer.name,
    colour: layer.colour,
    regions: count((r) => isShape(r.type) && !r.negative),
    holes: count((r) => isShape(r.type) && r.negative),
    crossingHoles: crossing.length,
    unplacedHoles: unplaced.length,
    rulers: count((r) => r.type === RegionType.ruler),
    arrows: count((r) => r.type === RegionType.arrow),
    vertices: layer.regions.reduce((sum, r) => sum + r.vertices.length, 0),
    areaPx,
    areaMm2: toMm2(areaPx, mpp),
  };
}

/**
 * The summary of `doc` for a slide of `mpp` microns per pixel (pass the
 * slide's own value; null when unknown, and then every mm² is null).
 *
 * The tumour area is the area of the layer with Annotation Id 1 when that
 * layer has at least one positive shape — Id 1 is "whole tumour" in the PAIP
 * 2019 convention (docs/references.md, "Aperio ImageScope XML"), and the
 * whole tumour includes the viable part (Id 2), so adding the two would count
 * tumour twice. Files that do not follow the convention have no such layer,
 * or one without shapes; then the largest layer by area stands for the
 * tumour (the first one on a tie).
 */
export function summarizeAnnotations(doc: AperioAnnotations, mpp: number | null): AnnotationSummary {
  const layers = doc.layers.map((layer) => summarizeLayer(layer, mpp));
  const sum = (key: 'regions' | 'holes' | 'crossingHoles' | 'unplacedHoles' | 'rulers' | 'arrows' | 'vertices' | 'areaPx') =>
    layers.reduce((total, layer) => total + layer[key], 0);
  const areaPx = sum('areaPx');
  const whole = layers.find((layer) => layer.id === 1 && layer.regions > 0);
  const largest = layers.reduce<LayerSummary | undefined>((best, layer) => (layer.areaPx > (best?.areaPx ?? 0) ? layer : best), undefined);
  const tumour = whole ?? largest;
  return {
    micronsPerPixel: mpp,
    layers,
    totals: {
      layers: layers.length,
      regions: sum('regions'),
      holes: sum('holes'),
      crossingHoles: sum('crossingHoles'),
      unplacedHoles: sum('unplacedHoles'),
      rulers: sum('rulers'),
      arrows: sum('arrows'),
      vertices: sum('vertices'),
      areaPx,
      areaMm2: toMm2(areaPx, mpp),
    },
    tumourLayerId: tumour?.id ?? null,
    tumourAreaPx: tumour?.areaPx ?? null,
    tumourAreaMm2: tumour ? toMm2(tumour.areaPx, mpp) : null,
  };
}
