/**
 * The metrics of challenges: pure functions of counts, areas and labels, with
 * no I/O. Every score is higher-is-better.
 */
export { bootstrapInterval, mulberry32, type BootstrapOptions } from './bootstrap.js';
export { accuracy, classificationScore, f1PerClass, macroAuc, rocAuc, type ClassificationResult, type ClassifiedSlide } from './classification.js';
export { dice, jaccard, thresholded, type ConfusionCounts } from './overlap.js';
export { compareEntries, rankEntries } from './ranking.js';
export { segmentationScore, segmentationSlide, type SegmentationResult, type SegmentationSlide } from './segmentation.js';
export { mean, median, quantileOfSorted } from './summary.js';
export { burdenSlide, tumourBurden, tumourBurdenScore, type BurdenAreas, type BurdenResult, type BurdenSlide } from './tumour-burden.js';
