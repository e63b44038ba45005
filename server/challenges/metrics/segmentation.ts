import { dice, jaccard, thresholded, type ConfusionCounts } from './overlap.js';
import { mean, median } from './summary.js';

/** One slide of a segmentation challenge: the Jaccard of the tumour class, raw and thresholded, and the Dice. */
export interface SegmentationSlide {
  /** The slide's score: `jaccardRaw`, or 0 below the threshold. */
  jaccard: number;
  jaccardRaw: number;
  dice: number;
}

export function segmentationSlide(counts: ConfusionCounts, threshold: number): SegmentationSlide {
  const raw = jaccard(counts);
  return { jaccard: thresholded(raw, threshold), jaccardRaw: raw, dice: dice(counts) };
}

export interface SegmentationResult {
  /** Mean over slides of the thresholded Jaccard. */
  score: number;
  /** Median of the thresholded Jaccard, then mean of the raw Jaccard. */
  tieBreakers: [number, number];
  metrics: { meanJaccard: number; medianJaccard: number; meanJaccardRaw: number; meanDice: number };
}

/** The challenge score of a segmentation submission from its slides. */
export function segmentationScore(slides: readonly SegmentationSlide[]): SegmentationResult {
  const scores = slides.map((s) => s.jaccard);
  const meanJaccard = mean(scores);
  const medianJaccard = median(scores);
  const meanJaccardRaw = mean(slides.map((s) => s.jaccardRaw));
  return {
    score: meanJaccard,
    tieBreakers: [medianJaccard, meanJaccardRaw],
    metrics: { meanJaccard, medianJaccard, meanJaccardRaw, meanDice: mean(slides.map((s) => s.dice)) },
  };
}
