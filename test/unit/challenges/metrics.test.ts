import test from 'ava';
import {
  bootstrapInterval,
  burdenSlide,
  classificationScore,
  dice,
  jaccard,
  macroAuc,
  median,
  quantileOfSorted,
  rankEntries,
  rocAuc,
  segmentationScore,
  segmentationSlide,
  tumourBurden,
  tumourBurdenScore,
} from '../../../server/challenges/metrics/index.js';

const close = (actual: number, expected: number) => Math.abs(actual - expected) < 1e-12;

test('Jaccard and Dice of 30 shared pixels, 20 only predicted and 10 only true: 30/60 and 60/90', (t) => {
  const counts = { truePositive: 30, falsePositive: 20, falseNegative: 10 };
  t.is(jaccard(counts), 0.5);
  t.true(close(dice(counts), 2 / 3));
});

test('two empty masks score 1 on both; a prediction on a slide without tumour scores 0', (t) => {
  const empty = { truePositive: 0, falsePositive: 0, falseNegative: 0 };
  t.is(jaccard(empty), 1);
  t.is(dice(empty), 1);
  t.is(jaccard({ truePositive: 0, falsePositive: 5, falseNegative: 0 }), 0);
  t.is(dice({ truePositive: 0, falsePositive: 0, falseNegative: 5 }), 0);
});

test('segmentation: Jaccards below the threshold count 0; mean, then median and raw mean as tie-breakers', (t) => {
  // Raw Jaccards 0.9, 0.7, 0.6, 0.5: thresholded 0.9, 0.7, 0, 0.
  const slides = [
    { truePositive: 90, falsePositive: 5, falseNegative: 5 },
    { truePositive: 70, falsePositive: 20, falseNegative: 10 },
    { truePositive: 60, falsePositive: 40, falseNegative: 0 },
    { truePositive: 50, falsePositive: 0, falseNegative: 50 },
  ].map((c) => segmentationSlide(c, 0.65));
  t.deepEqual(slides.map((s) => s.jaccardRaw), [0.9, 0.7, 0.6, 0.5]);
  t.deepEqual(slides.map((s) => s.jaccard), [0.9, 0.7, 0, 0]);
  const result = segmentationScore(slides);
  t.true(close(result.score, 0.4));
  t.true(close(result.tieBreakers[0], 0.35), 'the median of 0, 0, 0.7, 0.9');
  t.true(close(result.tieBreakers[1], 0.675), 'the mean of the raw Jaccards');
  t.true(close(result.metrics.meanDice, (180 / 190 + 140 / 170 + 120 / 160 + 100 / 150) / 4));
});

test('a Jaccard exactly at the threshold is kept', (t) => {
  t.is(segmentationSlide({ truePositive: 65, falsePositive: 35, falseNegative: 0 }, 0.65).jaccard, 0.65);
});

test('tumour burden is viable over whole area, and 0 without tumour', (t) => {
  t.is(tumourBurden(60, 100), 0.6);
  t.is(tumourBurden(0, 0), 0);
  t.is(tumourBurden(120, 100), 1, 'viable beyond the whole is capped at all of it');
});

test('tumour burden: (1 − |predicted − true|) weighted by the thresholded viable Jaccard, averaged', (t) => {
  // Predicted 60/100 = 0.6, true 100/200 = 0.5: accuracy 0.9; viable Jaccard 90/100 = 0.9 → 0.81.
  const good = burdenSlide({ predicted: { whole: 100, viable: 60 }, truth: { whole: 200, viable: 100 }, viable: { truePositive: 90, falsePositive: 5, falseNegative: 5 } }, 0.65);
  t.true(close(good.accuracy, 0.9));
  t.is(good.weight, 0.9);
  t.true(close(good.score, 0.81));
  // The same ratios from an outline that misses: viable Jaccard 50/110, below 0.65, so the slide scores 0.
  const miss = burdenSlide({ predicted: { whole: 100, viable: 60 }, truth: { whole: 200, viable: 100 }, viable: { truePositive: 50, falsePositive: 10, falseNegative: 50 } }, 0.65);
  t.true(close(miss.jaccardViableRaw, 50 / 110));
  t.is(miss.score, 0);
  const result = tumourBurdenScore([good, miss]);
  t.true(close(result.score, 0.405));
  t.true(close(result.tieBreakers[0], 0.405), 'the median of two slides is their mean');
  t.true(close(result.tieBreakers[1], 0.9), 'the mean accuracy without the weight');
});

test('classification: macro F1 is the score, accuracy and macro AUC break ties', (t) => {
  // a: tp 1, fp 1, fn 1 → 2/4; b: tp 2, fp 1 → 4/5; c: fn 1 → 0. Macro F1 (0.5 + 0.8 + 0) / 3; accuracy 3/5.
  const truth = ['a', 'a', 'b', 'b', 'c'];
  const predicted = ['a', 'b', 'b', 'b', 'a'];
  const result = classificationScore(truth.map((label, i) => ({ truth: label, predicted: predicted[i]!, probability: null })));
  t.deepEqual(result.perClass, { a: 0.5, b: 0.8, c: 0 });
  t.true(close(result.score, 1.3 / 3));
  t.is(result.tieBreakers[0], 0.6);
  t.is(result.metrics.macroAuc, null, 'no probabilities, no AUC');
  t.is(result.tieBreakers[1], 0);
});

test('ROC AUC counts the pairs a positive wins, ties one half', (t) => {
  // Positives 0.9 and 0.3, negatives 0.8 and 0.1: 0.9 beats both, 0.3 beats 0.1 → 3 of 4 pairs.
  t.is(rocAuc([0.9, 0.8, 0.3, 0.1], [true, false, true, false]), 0.75);
  t.is(rocAuc([0.5, 0.5], [true, false]), 0.5);
  t.is(rocAuc([0.5, 0.7], [true, true]), null);
});

test('macro one-vs-rest AUC from the probability of the predicted label', (t) => {
  // Scores for x: 0.9, 1 − 0.6, 1 − 0.8, 0.7; positives 0.9, 0.4 against 0.2, 0.7 → 3/4; y mirrors it → 3/4.
  const slides = [
    { truth: 'x', predicted: 'x', probability: 0.9 },
    { truth: 'x', predicted: 'y', probability: 0.6 },
    { truth: 'y', predicted: 'y', probability: 0.8 },
    { truth: 'y', predicted: 'x', probability: 0.7 },
  ];
  t.true(close(macroAuc(slides)!, 0.75));
  t.true(close(classificationScore(slides).tieBreakers[1], 0.75));
});

test('ranks: ties on score and every tie-breaker share a rank, the next skips (1, 2, 2, 4)', (t) => {
  const ranked = rankEntries([
    { id: 'c', score: 0.8, tieBreakers: [0.5] },
    { id: 'd', score: 0.7, tieBreakers: [0.9] },
    { id: 'a', score: 0.9, tieBreakers: [0.1] },
    { id: 'b', score: 0.8, tieBreakers: [0.5] },
  ]);
  t.deepEqual(ranked.map((e) => [e.id, e.rank]), [['a', 1], ['c', 2], ['b', 2], ['d', 4]]);
});

test('ranks: an equal score is decided by the first tie-breaker that differs; NaN ranks last', (t) => {
  const ranked = rankEntries([
    { id: 'low', score: 0.8, tieBreakers: [0.5, 0.1] },
    { id: 'high', score: 0.8, tieBreakers: [0.5, 0.2] },
    { id: 'nan', score: NaN, tieBreakers: [] },
    { id: 'zero', score: 0, tieBreakers: [0, 0] },
  ]);
  t.deepEqual(ranked.map((e) => [e.id, e.rank]), [['high', 1], ['low', 2], ['zero', 3], ['nan', 4]]);
});

test('median and quantiles', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(quantileOfSorted([0, 10, 20, 30, 40], 0.25), 10);
  t.is(quantileOfSorted([0, 10], 0.25), 2.5);
});

test('bootstrap: the same scores and seed give the same interval; another seed another', (t) => {
  const scores = [0.9, 0.7, 0, 0.8, 0.75, 0.66, 0, 0.95, 0.85, 0.7];
  const a = bootstrapInterval(scores, { seed: 7 });
  t.deepEqual(bootstrapInterval(scores, { seed: 7 }), a);
  t.notDeepEqual(bootstrapInterval(scores, { seed: 8 }), a);
  const mean = scores.reduce((s, v) => s + v, 0) / scores.length;
  t.true(a.low < mean && mean < a.high, `${a.low} < ${mean} < ${a.high}`);
  t.true(a.low >= 0 && a.high <= 0.95);
});

test('bootstrap of two slides scoring 0 and 1: resampled means are 0, ½ or 1 with chances ¼, ½, ¼', (t) => {
  t.deepEqual(bootstrapInterval([0, 1]), { low: 0, high: 1 });
  // The 30% and 70% quantiles both fall among the means of ½.
  t.deepEqual(bootstrapInterval([0, 1], { level: 0.4 }), { low: 0.5, high: 0.5 });
  t.deepEqual(bootstrapInterval([0.75, 0.75, 0.75]), { low: 0.75, high: 0.75 }, "one value throughout leaves no spread");
});

test('bootstrap refuses no scores and nonsense options', (t) => {
  t.throws(() => bootstrapInterval([]), { instanceOf: RangeError });
  t.throws(() => bootstrapInterval([1], { level: 1 }), { instanceOf: RangeError });
  t.throws(() => bootstrapInterval([1], { iterations: 0 }), { instanceOf: RangeError });
});
