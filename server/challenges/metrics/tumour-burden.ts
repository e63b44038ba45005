/**
 * Viable tumour burden: the share of the whole tumour that is viable, per
 * slide. A slide scores (1 − |predicted − true burden|) weighted by the
 * thresholded Jaccard of its viable tumour segmentation, so that a right
 * ratio from a wrong outline earns nothing (the PAIP 2019 task 2 rule).
 */
import { jaccard, thresholded, type ConfusionCounts } from './overlap.js';
import { mean, median } from './summary.js';

/** Viable area / whole tumour area; 0 when there is no tumour (nothing of it can be viable). */
export function tumourBurden(viableArea: number, wholeArea: number): number {
  if (wholeArea <= 0) return 0;
  return Math.min(1, Math.max(0, viableArea / wholeArea));
}

/** The areas of one slide, predicted and true (any unit, the same on both sides), and the viable tumour's overlap. */
export interface BurdenAreas {
  predicted: { whole: number; viable: number };
  truth: { whole: number; viable: number };
  viable: ConfusionCounts;
}

export interface BurdenSlide {
  /** accuracy × weight. */
  score: number;
  burdenPredicted: number;
  burdenTrue: number;
  /** 1 − |burdenPredicted − burdenTrue|. */
  accuracy: number;
  /** Jaccard of the viable tumour, before the threshold. */
  jaccardViableRaw: number;
  /** Jaccard of the viable tumour, 0 below the threshold: the weight of the slide. */
  weight: number;
}

export function burdenSlide(areas: BurdenAreas, threshold: number): BurdenSlide {
  const burdenPredicted = tumourBurden(areas.predicted.viable, areas.predicted.whole);
  const burdenTrue = tumourBurden(areas.truth.viable, areas.truth.whole);
  const accuracy = 1 - Math.abs(burdenPredicted - burdenTrue);
  const jaccardViableRaw = jaccard(areas.viable);
  const weight = thresholded(jaccardViableRaw, threshold);
  return { score: accuracy * weight, burdenPredicted, burdenTrue, accuracy, jaccardViableRaw, weight };
}

export interface BurdenResult {
  /** Mean over slides of accuracy × weight. */
  score: number;
  /** Median of the slide scores, then mean accuracy without the weight. */
  tieBreakers: [number, number];
  metrics: { meanScore: number; medianScore: number; meanAccuracy: number; meanAbsoluteError: number; meanJaccardViable: number };
}

export function tumourBurdenScore(slides: readonly BurdenSlide[]): BurdenResult {
  const scores = slides.map((s) => s.score);
  const meanScore = mean(scores);
  const medianScore = median(scores);
  const meanAccuracy = mean(slides.map((s) => s.accuracy));
  return {
    score: meanScore,
    tieBreakers: [medianScore, meanAccuracy],
    metrics: { meanScore, medianScore, meanAccuracy, meanAbsoluteError: 1 - meanAccuracy, meanJaccardViable: mean(slides.map((s) => s.jaccardViableRaw)) },
  };
}
