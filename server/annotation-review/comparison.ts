import { isShape, regionRing, type AperioAnnotations, type Vertex } from '../annotations/index.js';
import { badRequest } from '../errors.js';
import { compareAnnotations, comparisonWork, type AgreementReport, type Overlap } from '../toolbox/agreement.js';
import { firstCentreFrom } from '../toolbox/raster.js';
import { xmlMaskGrid } from '../toolbox/xml-masks.js';

/** A comparison without a downsample is rasterised on a grid of at most this many cells (the downsample grows with the slide). */
export const COMPARE_CELLS = 4_000_000;
/** The finest grid a comparison may ask for: a smaller `downsample` is refused (400), naming the smallest that fits. */
export const MAX_COMPARE_CELLS = 16_000_000;
/** The most rasterising work (see comparisonWork) one comparison may take: about a second of one core. */
export const MAX_COMPARE_WORK = 400_000_000;

export interface ComparedOutlines {
  agreement: AgreementReport;
  /** Shape regions in B that are not in A (same layer, type, sign and vertices), and the reverse. */
  regionsAdded: number;
  regionsRemoved: number;
  /**
   * Level-0 pixels² of the tumour outlined in B but not in A, and the
   * reverse, measured on a grid of at most COMPARE_CELLS over just the part
   * of the slide where the outlines differ, so that moving one vertex of a
   * large outline still counts.
   */
  areaAdded: number;
  areaRemoved: number;
}

/**
 * IoU per layer and mIoU of two outlines of one slide, rasterised at
 * `downsample` level-0 pixels per cell, or without one at the smallest
 * downsample that keeps the grid over the part of the slide the outlines
 * cover within COMPARE_CELLS and the work within MAX_COMPARE_WORK (the cells
 * beyond are background in both, and counted as such). A `downsample` that is not a whole number from 1 to the
 * slide's longer side, or that would exceed either bound, is a 400 that
 * names the smallest one that would do.
 */
export function compareOutlines(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample?: number): ComparedOutlines {
  const step = comparisonDownsample(slide, a, b, downsample);
  const agreement = compareInWindow(slide, a, b, step, outlinedWindow(slide, a, b));
  const keys = (doc: AperioAnnotations) =>
    new Set(doc.layers.flatMap((l) => l.regions.filter((r) => isShape(r.type)).map((r) => JSON.stringify([l.id, r.type, r.negative, r.vertices]))));
  const [ka, kb] = [keys(a), keys(b)];
  const cell = step * step;
  let areaAdded = (agreement.tumour.b - agreement.tumour.intersection) * cell;
  let areaRemoved = (agreement.tumour.a - agreement.tumour.intersection) * cell;
  const changed = changedBox(a, b, slide);
  if (!changed) {
    areaAdded = 0;
    areaRemoved = 0;
  } else {
    // The outlines are the same outside `changed`: measure what changed there, more finely when that is finer.
    const fine = smallestFitting(slide, a, b, 1, COMPARE_CELLS, changed);
    if (fine < step) {
      const { tumour } = compareInWindow(slide, a, b, fine, changed);
      areaAdded = (tumour.b - tumour.intersection) * fine * fine;
      areaRemoved = (tumour.a - tumour.intersection) * fine * fine;
    }
  }
  return {
    agreement,
    regionsAdded: [...kb].filter((k) => !ka.has(k)).length,
    regionsRemoved: [...ka].filter((k) => !kb.has(k)).length,
    areaAdded,
    areaRemoved,
  };
}

/** A part of the slide in level-0 pixels (max exclusive). */
interface PixelBox {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

function shapeVertices(doc: AperioAnnotations): Vertex[][] {
  return doc.layers.flatMap((l) => l.regions.filter((r) => isShape(r.type) && r.vertices.length > 0).map((r) => r.vertices));
}

/** The part of the slide either outline covers (the whole slide when neither has a shape). */
function outlinedWindow(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations): PixelBox {
  const box = boxOf([...shapeVertices(a), ...shapeVertices(b)].flat());
  return box ? clip(box, slide) : { minX: 0, minY: 0, maxX: slide.width, maxY: slide.height };
}

function boxOf(points: readonly Vertex[]): PixelBox | undefined {
  if (points.length === 0) return undefined;
  let [minX, minY, maxX, maxY] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of points) {
    if (x < minX) minX = x;
    if (x > maxX) maxX = x;
    if (y < minY) minY = y;
    if (y > maxY) maxY = y;
  }
  return { minX, minY, maxX, maxY };
}

function clip(box: PixelBox, slide: { width: number; height: number }): PixelBox {
  const minX = Math.min(Math.max(0, box.minX), slide.width - 1);
  const minY = Math.min(Math.max(0, box.minY), slide.height - 1);
  return { minX, minY, maxX: Math.min(slide.width, Math.max(minX + 1, box.maxX)), maxY: Math.min(slide.height, Math.max(minY + 1, box.maxY)) };
}

/**
 * Where the two outlines may differ: the box around the edges that one has
 * and the other has not, per layer and sign (a shape's edges or a hole's).
 * A point outside it crosses the same edges on a ray that avoids the box,
 * so each ring holds it or not alike in both. Undefined when nothing differs.
 */
function changedBox(a: AperioAnnotations, b: AperioAnnotations, slide: { width: number; height: number }): PixelBox | undefined {
  const count = new Map<string, { ends: [Vertex, Vertex]; n: number }>();
  const add = (doc: AperioAnnotations, by: number) => {
    for (const layer of doc.layers) {
      for (const region of layer.regions) {
        if (!isShape(region.type) || region.vertices.length === 0) continue;
        const ring = regionRing(region);
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const [p, q] = [ring[j]!, ring[i]!];
          if (p[0] === q[0] && p[1] === q[1]) continue;
          const ends: [Vertex, Vertex] = p[0] < q[0] || (p[0] === q[0] && p[1] < q[1]) ? [p, q] : [q, p];
          const key = `${layer.id}:${region.negative ? 1 : 0}:${ends[0][0]},${ends[0][1]}:${ends[1][0]},${ends[1][1]}`;
          const entry = count.get(key) ?? { ends, n: 0 };
          entry.n += by;
          count.set(key, entry);
        }
      }
    }
  };
  add(a, 1);
  add(b, -1);
  const box = boxOf([...count.values()].filter((e) => e.n !== 0).flatMap((e) => e.ends));
  return box && clip(box, slide);
}

/**
 * compareAnnotations on the cells of the slide's grid at `downsample` that
 * `window` touches: every cell outside it is background in both outlines, so
 * the figures are those of the whole slide's grid.
 */
function compareInWindow(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample: number, window: PixelBox): AgreementReport {
  const { col0, row0, cols, rows } = windowCells(slide, window, downsample);
  const [dx, dy] = [col0 * downsample, row0 * downsample];
  const shift = (doc: AperioAnnotations): AperioAnnotations => ({
    ...doc,
    layers: doc.layers.map((l) => ({ ...l, regions: l.regions.map((r) => ({ ...r, vertices: r.vertices.map(([x, y]): Vertex => [x - dx, y - dy]) })) })),
  });
  const inWindow = compareAnnotations(shift(a), shift(b), { width: cols * downsample, height: rows * downsample, downsample });
  const grid = { width: Math.ceil(slide.width / downsample), height: Math.ceil(slide.height / downsample) };
  const background = complement(inWindow.tumour, grid.width * grid.height);
  return {
    ...inWindow,
    level0: { width: slide.width, height: slide.height },
    grid,
    background,
    miou: (inWindow.tumour.iou + background.iou) / 2,
  };
}

/** The cells of the slide's grid at `downsample` whose centres may lie in `window`. */
function windowCells(slide: { width: number; height: number }, window: PixelBox, downsample: number): { col0: number; row0: number; cols: number; rows: number } {
  const [width, height] = [Math.ceil(slide.width / downsample), Math.ceil(slide.height / downsample)];
  const col0 = Math.min(width - 1, Math.max(0, firstCentreFrom(window.minX, downsample) - 1));
  const row0 = Math.min(height - 1, Math.max(0, firstCentreFrom(window.minY, downsample) - 1));
  const cols = Math.max(1, Math.min(width, firstCentreFrom(window.maxX, downsample) + 1) - col0);
  const rows = Math.max(1, Math.min(height, firstCentreFrom(window.maxY, downsample) + 1) - row0);
  return { col0, row0, cols, rows };
}

/** The overlap of two masks' complements on a grid of `cells`, from the overlap of the masks. */
function complement(of: Overlap, cells: number): Overlap {
  const a = cells - of.a;
  const b = cells - of.b;
  const intersection = cells - of.union;
  const union = cells - of.intersection;
  return { a, b, intersection, union, iou: union === 0 ? 1 : intersection / union };
}

/** The downsample two outlines are compared at: `downsample` when it is within the bounds (else a 400), or the default. */
export function comparisonDownsample(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample?: number): number {
  return downsample === undefined ? defaultDownsample(slide, a, b) : checkedDownsample(slide, a, b, downsample);
}

function cells(slide: { width: number; height: number }, downsample: number): number {
  return Math.ceil(slide.width / downsample) * Math.ceil(slide.height / downsample);
}

function work(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample: number): number {
  return comparisonWork(a, b, xmlMaskGrid(slide.width, slide.height, downsample));
}

/**
 * The smallest downsample from `from` on whose grid has at most `maxCells`
 * cells and whose work is within MAX_COMPARE_WORK: the grid of the whole
 * slide, or of the cells `window` touches.
 */
function smallestFitting(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, from: number, maxCells: number, window?: PixelBox): number {
  const longer = Math.max(slide.width, slide.height);
  const fits = (d: number) => {
    if (!window) return cells(slide, d) <= maxCells && work(slide, a, b, d) <= MAX_COMPARE_WORK;
    const { cols, rows } = windowCells(slide, window, d);
    return cols * rows <= maxCells && comparisonWork(a, b, { width: cols, height: rows, downsample: { x: d, y: d } }) <= MAX_COMPARE_WORK;
  };
  if (fits(from)) return from;
  // Work shrinks as the downsample grows: double until it fits, then narrow down.
  let low = from;
  let high = Math.min(longer, from * 2);
  while (!fits(high) && high < longer) [low, high] = [high, Math.min(longer, high * 2)];
  while (high - low > 1) {
    const middle = Math.floor((low + high) / 2);
    if (fits(middle)) high = middle;
    else low = middle;
  }
  return high;
}

/** The finest that fits over the part of the slide the outlines cover: cells elsewhere are background in both. */
function defaultDownsample(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations): number {
  const window = outlinedWindow(slide, a, b);
  const start = Math.max(1, Math.floor(Math.sqrt(((window.maxX - window.minX) * (window.maxY - window.minY)) / COMPARE_CELLS)));
  return smallestFitting(slide, a, b, start, COMPARE_CELLS, window);
}

function checkedDownsample(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample: number): number {
  const longer = Math.max(slide.width, slide.height);
  if (!Number.isInteger(downsample) || downsample < 1 || downsample > longer) {
    throw badRequest('invalid_downsample', `downsample must be a whole number from 1 to ${longer} (the slide's longer side), got ${String(downsample)}`);
  }
  if (cells(slide, downsample) > MAX_COMPARE_CELLS || work(slide, a, b, downsample) > MAX_COMPARE_WORK) {
    const smallest = smallestFitting(slide, a, b, Math.max(downsample, Math.ceil(Math.sqrt((slide.width * slide.height) / MAX_COMPARE_CELLS))), MAX_COMPARE_CELLS);
    throw badRequest(
      'downsample_too_fine',
      `downsample ${downsample} would rasterise this ${slide.width}×${slide.height} slide on ${cells(slide, downsample)} cells; ` +
        `a comparison may use at most ${MAX_COMPARE_CELLS} cells and ${MAX_COMPARE_WORK} units of work, so use a downsample of at least ${smallest}`,
      { smallestDownsample: smallest },
    );
  }
  return downsample;
}
