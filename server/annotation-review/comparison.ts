import { isShape, type AperioAnnotations } from '../annotations/index.js';
import { badRequest } from '../errors.js';
import { compareAnnotations, comparisonWork, type AgreementReport } from '../toolbox/agreement.js';
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
}

/**
 * IoU per layer and mIoU of two outlines of one slide, rasterised at
 * `downsample` level-0 pixels per cell, or without one at the smallest
 * downsample that keeps the grid within COMPARE_CELLS and the work within
 * MAX_COMPARE_WORK. A `downsample` that is not a whole number from 1 to the
 * slide's longer side, or that would exceed either bound, is a 400 that
 * names the smallest one that would do.
 */
export function compareOutlines(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, downsample?: number): ComparedOutlines {
  const step = comparisonDownsample(slide, a, b, downsample);
  const agreement = compareAnnotations(a, b, { width: slide.width, height: slide.height, downsample: step });
  const keys = (doc: AperioAnnotations) =>
    new Set(doc.layers.flatMap((l) => l.regions.filter((r) => isShape(r.type)).map((r) => JSON.stringify([l.id, r.type, r.negative, r.vertices]))));
  const [ka, kb] = [keys(a), keys(b)];
  return {
    agreement,
    regionsAdded: [...kb].filter((k) => !ka.has(k)).length,
    regionsRemoved: [...ka].filter((k) => !kb.has(k)).length,
  };
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

/** The smallest downsample from `from` on whose grid has at most `maxCells` cells and whose work is within MAX_COMPARE_WORK. */
function smallestFitting(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations, from: number, maxCells: number): number {
  const longer = Math.max(slide.width, slide.height);
  const fits = (d: number) => cells(slide, d) <= maxCells && work(slide, a, b, d) <= MAX_COMPARE_WORK;
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

function defaultDownsample(slide: { width: number; height: number }, a: AperioAnnotations, b: AperioAnnotations): number {
  const start = Math.max(1, Math.ceil(Math.sqrt((slide.width * slide.height) / COMPARE_CELLS)));
  return smallestFitting(slide, a, b, start, COMPARE_CELLS);
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
