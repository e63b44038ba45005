/**
 * Overlap of a predicted and a true binary mask from their confusion counts
 * (pixels, or any unit of area, as long as both use the same).
 */

/** Pixels set in both (tp), only in the prediction (fp), only in the truth (fn). */
export interface ConfusionCounts {
  truePositive: number;
  falsePositive: number;
  falseNegative: number;
}

/**
 * Jaccard index, |P ∩ T| / |P ∪ T|. Two empty masks agree perfectly: 1, so
 * that a slide without tumour rewards a prediction without tumour.
 */
export function jaccard({ truePositive: tp, falsePositive: fp, falseNegative: fn }: ConfusionCounts): number {
  const union = tp + fp + fn;
  return union === 0 ? 1 : tp / union;
}

/** Dice coefficient, 2|P ∩ T| / (|P| + |T|); 1 for two empty masks, as `jaccard`. */
export function dice({ truePositive: tp, falsePositive: fp, falseNegative: fn }: ConfusionCounts): number {
  const sum = 2 * tp + fp + fn;
  return sum === 0 ? 1 : (2 * tp) / sum;
}

/** A Jaccard index below `threshold` counts as 0 (the PAIP 2019 rule); at or above it, as is. */
export function thresholded(value: number, threshold: number): number {
  return value < threshold ? 0 : value;
}
