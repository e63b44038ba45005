/**
 * Slide classification: accuracy, macro F1 and one-vs-rest AUC.
 *
 * The challenge score is the macro F1 (the mean over classes of
 * 2·tp / (2·tp + fp + fn)), which does not let a frequent class hide a
 * neglected rare one; accuracy and then the macro AUC break ties.
 */
import { mean } from './summary.js';

export interface ClassifiedSlide {
  truth: string;
  predicted: string;
  /** The submitter's probability that `predicted` is right, 0–1, when given. */
  probability: number | null;
}

export interface ClassificationResult {
  /** Macro F1. */
  score: number;
  /** Accuracy, then the macro one-vs-rest AUC (0 when it cannot be computed). */
  tieBreakers: [number, number];
  metrics: { accuracy: number; macroF1: number; macroAuc: number | null; classes: number };
  /** F1 per class. */
  perClass: Record<string, number>;
}

/** The classes of a set of slides: the true and predicted labels (and `extra`), sorted. */
function classesOf(slides: readonly ClassifiedSlide[], extra: readonly string[]): string[] {
  return [...new Set([...extra, ...slides.map((s) => s.truth), ...slides.map((s) => s.predicted)])].sort();
}

export function accuracy(slides: readonly ClassifiedSlide[]): number {
  if (slides.length === 0) return NaN;
  return slides.filter((s) => s.truth === s.predicted).length / slides.length;
}

/** F1 of each class, 2·tp / (2·tp + fp + fn); a class neither true nor predicted anywhere is left out. */
export function f1PerClass(slides: readonly ClassifiedSlide[], classes: readonly string[] = classesOf(slides, [])): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of classes) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (const s of slides) {
      if (s.predicted === c && s.truth === c) tp++;
      else if (s.predicted === c) fp++;
      else if (s.truth === c) fn++;
    }
    if (tp + fp + fn > 0) out[c] = (2 * tp) / (2 * tp + fp + fn);
  }
  return out;
}

/**
 * Area under the ROC curve of `scores` for telling `positive` items from the
 * rest: the chance that a random positive scores above a random negative,
 * ties counting one half (Mann–Whitney U from average ranks). Null without
 * at least one positive and one negative.
 */
export function rocAuc(scores: readonly number[], positive: readonly boolean[]): number | null {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  const ranks = new Float64Array(n);
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]!] === scores[order[i]!]) j++;
    const average = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k]!] = average;
    i = j + 1;
  }
  let positives = 0;
  let rankSum = 0;
  for (let i = 0; i < n; i++) {
    if (positive[i]) {
      positives++;
      rankSum += ranks[i]!;
    }
  }
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return null;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

/**
 * Macro one-vs-rest AUC from one probability per slide. A slide's score for
 * class c is its probability when it predicts c, else the rest of the
 * probability shared evenly among the other classes, (1 − p) / (K − 1); with
 * two classes this is exactly p(c). The mean over the true classes that have
 * positives and negatives; null when a probability is missing or no class
 * has both.
 */
export function macroAuc(slides: readonly ClassifiedSlide[], classes: readonly string[] = classesOf(slides, [])): number | null {
  if (slides.length === 0 || slides.some((s) => s.probability === null) || classes.length < 2) return null;
  const others = classes.length - 1;
  const aucs: number[] = [];
  for (const c of classes) {
    const scores = slides.map((s) => (s.predicted === c ? s.probability! : (1 - s.probability!) / others));
    const auc = rocAuc(scores, slides.map((s) => s.truth === c));
    if (auc !== null) aucs.push(auc);
  }
  return aucs.length === 0 ? null : mean(aucs);
}

/** Score a classification submission; `labels` adds classes that neither side used (they change K in the AUC). */
export function classificationScore(slides: readonly ClassifiedSlide[], labels: readonly string[] = []): ClassificationResult {
  const classes = classesOf(slides, labels);
  const perClass = f1PerClass(slides, classes);
  const macroF1 = mean(Object.values(perClass));
  const acc = accuracy(slides);
  const auc = macroAuc(slides, classes);
  return {
    score: macroF1,
    tieBreakers: [acc, auc ?? 0],
    metrics: { accuracy: acc, macroF1, macroAuc: auc, classes: classes.length },
    perClass,
  };
}
