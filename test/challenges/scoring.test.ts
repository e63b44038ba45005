import path from 'node:path';
import test from 'ava';
import { parseAperioXml } from '../../server/annotations/index.js';
import { scoreSubmission, SubmissionInvalid, validateSubmission, type ChallengeSlide, type ScoringSpec, type SlideTruth } from '../../server/challenges/submissions/index.js';
import { writeLayerMaskTiff } from '../../server/toolbox/mask-tiff.js';
import { pngOf, rectangleMask, rectanglePolygon, scratch, writeTar, writeZip } from './scoring-helpers.js';

// Two slides at downsample 16. S1: 800×600 → a 50×38 mask; its tumour, level-0 [160, 480) × [160, 400), covers the
// mask pixels whose centres (i + ½)·16 fall inside: columns 10–29 and rows 10–24, 20 × 15 = 300 pixels.
// S2: 640×480 → 40×30; its tumour [0, 320) × [0, 240) covers columns 0–19 and rows 0–14.
const S1: ChallengeSlide = { name: 'S1', width: 800, height: 600 };
const S2: ChallengeSlide = { name: 'S2', width: 640, height: 480 };
const spec: ScoringSpec = { task: 'segmentation', slides: [S1, S2], maskDownsample: 16, threshold: 0.65 };
const truths: Record<string, SlideTruth> = {
  S1: { tumour: [rectanglePolygon(160, 160, 480, 400)], viable: [], label: null },
  S2: { tumour: [rectanglePolygon(0, 0, 320, 240)], viable: [], label: null },
};
const truthOf = (slide: ChallengeSlide) => Promise.resolve(truths[slide.name]!);
const S1_TRUTH = { x0: 10, y0: 10, x1: 30, y1: 25, value: 1 };
const S2_TRUTH = { x0: 0, y0: 0, x1: 20, y1: 15, value: 1 };
const close = (actual: number, expected: number) => Math.abs(actual - expected) < 1e-12;

const s1 = (...rectangles: Parameters<typeof rectangleMask>[2]) => pngOf(rectangleMask(50, 38, rectangles), 50, 38);
const s2 = (...rectangles: Parameters<typeof rectangleMask>[2]) => pngOf(rectangleMask(40, 30, rectangles), 40, 30);

test('the truth itself scores 1 and an empty mask 0; progress is told per slide', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'submission.zip'), [
    { name: 'S1.png', data: await s1(S1_TRUTH), store: true },
    { name: 'S2.png', data: await s2(), store: true },
  ]);
  const progress: [number, number][] = [];
  const result = await scoreSubmission(archive, spec, truthOf, (done, total) => progress.push([done, total]));
  t.deepEqual(result.perSlide.map((s) => [s.slide, s.score]), [['S1', 1], ['S2', 0]]);
  t.like(result.perSlide[0]!.metrics, { jaccard: 1, jaccardRaw: 1, dice: 1, truePositive: 300, falsePositive: 0, falseNegative: 0 });
  t.like(result.perSlide[1]!.metrics, { jaccardRaw: 0, truePositive: 0, falseNegative: 300 });
  t.is(result.score, 0.5);
  t.deepEqual(result.tieBreakers, [0.5, 0.5]);
  t.deepEqual(progress, [[1, 2], [2, 2]]);
});

test('a mask shifted by 2 columns and 1 row: Jaccard 252/348, Dice 504/600, by hand', async (t) => {
  // The shifted rectangle covers columns 12–31 and rows 11–25; it shares columns 12–29 (18) and rows 11–24 (14)
  // with the truth: 252 pixels; union 300 + 300 − 252 = 348.
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'shifted.zip'), [
    { name: 'S1.png', data: await s1({ x0: 12, y0: 11, x1: 32, y1: 26, value: 1 }) },
    { name: 'S2.png', data: await s2(S2_TRUTH) },
  ]);
  const result = await scoreSubmission(archive, spec, truthOf);
  const slide = result.perSlide[0]!;
  t.true(close(slide.metrics.jaccardRaw!, 252 / 348));
  t.true(close(slide.metrics.dice!, 504 / 600));
  t.like(slide.metrics, { truePositive: 252, falsePositive: 48, falseNegative: 48 });
  t.true(close(result.score, (252 / 348 + 1) / 2));
  t.true(close(result.metrics.meanDice!, (504 / 600 + 1) / 2));
});

test('a shift that takes the Jaccard below the threshold scores 0, and the raw mean breaks the tie', async (t) => {
  // 5 columns right: 15 × 15 = 225 shared, union 375, Jaccard 0.6 < 0.65.
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'far.zip'), [
    { name: 'S1.png', data: await s1({ x0: 15, y0: 10, x1: 35, y1: 25, value: 1 }) },
    { name: 'S2.png', data: await s2(S2_TRUTH) },
  ]);
  const result = await scoreSubmission(archive, spec, truthOf);
  t.is(result.perSlide[0]!.metrics.jaccardRaw, 0.6);
  t.is(result.perSlide[0]!.score, 0);
  t.is(result.score, 0.5);
  t.deepEqual(result.tieBreakers, [0.5, 0.8]);
});

test('a hole of the truth polygon is cut: the mask without it scores 250/300', async (t) => {
  // Hole [240, 400) × [240, 320): columns 15–24 and rows 15–19, 50 pixels.
  const holed: Record<string, SlideTruth> = {
    S1: { tumour: [[...rectanglePolygon(160, 160, 480, 400), ...rectanglePolygon(240, 240, 400, 320)]], viable: [], label: null },
  };
  const one = { ...spec, slides: [S1] };
  const dir = await scratch(t);
  const filled = await writeZip(path.join(dir, 'filled.zip'), [{ name: 'S1.png', data: await s1(S1_TRUTH) }]);
  const exact = await writeZip(path.join(dir, 'exact.zip'), [{ name: 'S1.png', data: await s1(S1_TRUTH, { x0: 15, y0: 15, x1: 25, y1: 20, value: 0 }) }]);
  const truth = () => Promise.resolve(holed.S1!);
  t.true(close((await scoreSubmission(filled, one, truth)).perSlide[0]!.metrics.jaccardRaw!, 250 / 300));
  t.is((await scoreSubmission(exact, one, truth)).score, 1);
});

test('a slide without a mask: the report names it, and scoring refuses with that report', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'one.zip'), [{ name: 'S1.png', data: await s1(S1_TRUTH) }]);
  const report = await validateSubmission(archive, spec);
  t.false(report.ok);
  t.deepEqual(report.problems, [
    { file: null, slide: 'S2', code: 'missing_slide', message: 'No mask was found for slide S2; name it S2.png, S2.tif or S2.tiff.' },
  ]);
  t.deepEqual(report.files, [{ file: 'S1.png', slide: 'S1' }]);
  const error = await t.throwsAsync(scoreSubmission(archive, spec, truthOf), { instanceOf: SubmissionInvalid });
  t.deepEqual(error.report, report);
});

test('scoring a submission with a missing slide and a bad label refuses with both, as validation reports them', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'two-faults.zip'), [{ name: 'S1.png', data: await s1({ ...S1_TRUTH, value: 7 }) }]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.slide, p.code]), [['S1', 'label_out_of_range'], ['S2', 'missing_slide']]);
  const error = await t.throwsAsync(scoreSubmission(archive, spec, truthOf), { instanceOf: SubmissionInvalid });
  t.deepEqual(error.report, report);
});

test('a mask of the wrong size says the size expected and the size found', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'size.zip'), [
    { name: 'S1.png', data: await pngOf(new Uint8Array(50 * 37), 50, 37) },
    { name: 'S2.png', data: await s2() },
  ]);
  const report = await validateSubmission(archive, spec);
  t.is(report.problems.length, 1);
  t.like(report.problems[0], { file: 'S1.png', slide: 'S1', code: 'wrong_size' });
  t.is(report.problems[0]!.message, 'The mask "S1.png" is 50×37 pixels, but slide S1 (800×600 at full resolution) needs 50×38 at downsample 16.');
});

test('labels outside the allowed values are counted and named, by validation and by the scorer alike', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'labels.zip'), [
    { name: 'S1.png', data: await s1(S1_TRUTH, { x0: 0, y0: 0, x1: 2, y1: 1, value: 3 }) },
    { name: 'S2.png', data: await s2(S2_TRUTH) },
  ]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.slide, p.code]), [['S1', 'label_out_of_range']]);
  t.is(report.problems[0]!.message, 'The mask "S1.png" has pixels of value 3 (2 pixels); a segmentation mask may only hold 0 (background), 1 (tumour) and 255 (tumour, as the toolbox writes it).');
  // The scorer checks the labels while it counts, and refuses with the same report.
  const error = await t.throwsAsync(scoreSubmission(archive, spec, truthOf), { instanceOf: SubmissionInvalid });
  t.deepEqual(error.report, report);
});

test('extra files, an unreadable image and a colour PNG are each reported in a sentence', async (t) => {
  const dir = await scratch(t);
  const rgb = await (await import('sharp')).default({ create: { width: 40, height: 30, channels: 3, background: '#000' } }).png().toBuffer();
  const archive = await writeZip(path.join(dir, 'mixed.zip'), [
    { name: 'masks/S1.png', data: Buffer.from('not a picture') },
    { name: 'masks/S2.png', data: rgb },
    { name: 'masks/README.txt', data: Buffer.from('hello') },
    { name: '__MACOSX/._S1.png', data: Buffer.from('clutter') },
  ]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(
    report.problems.map((p) => [p.file, p.code]),
    [['masks/README.txt', 'extra_file'], ['masks/S1.png', 'unreadable_image'], ['masks/S2.png', 'wrong_pixel_format']],
  );
  t.is(report.problems[0]!.message, '"masks/README.txt" is not a file this phase expects (masks are named after the test slides, such as "S1.png"); remove it.');
  t.is(report.problems[1]!.message, 'The mask "masks/S1.png" is neither a PNG nor a TIFF image.');
  t.is(report.problems[2]!.message, 'The mask "masks/S2.png" is a PNG of 8-bit RGB pixels; masks must be grey or palette images of 8 bits or fewer per pixel.');
});

test('two files for one slide are refused as a duplicate', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'twice.zip'), [
    { name: 'a/S1.png', data: await s1(S1_TRUTH) },
    { name: 'b/S1.PNG', data: await s1(S1_TRUTH) },
    { name: 'S2.png', data: await s2(S2_TRUTH) },
  ]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.file, p.slide, p.code]), [['b/S1.PNG', 'S1', 'duplicate']]);
});

test('a tar and a tar.gz are read as a ZIP is', async (t) => {
  const dir = await scratch(t);
  const entries = [
    { name: 'S1.png', data: await s1(S1_TRUTH) },
    { name: 'S2.png', data: await s2(S2_TRUTH) },
  ];
  for (const name of ['masks.tar', 'masks.tar.gz']) {
    const archive = await writeTar(path.join(dir, name), entries);
    const result = await scoreSubmission(archive, spec, truthOf);
    t.is(result.score, 1, name);
  }
});

test('a TIFF mask from the toolbox writer (tiled, Deflate, 255 inside) is accepted and scores 1', async (t) => {
  const dir = await scratch(t);
  const xml = `<Annotations><Annotation Id="1" Name="tumour"><Regions><Region Id="1" Type="1" NegativeROA="0"><Vertices>
    <Vertex X="160" Y="160"/><Vertex X="480" Y="160"/><Vertex X="480" Y="400"/><Vertex X="160" Y="400"/></Vertices></Region></Regions></Annotation></Annotations>`;
  const layer = parseAperioXml(xml).layers[0]!;
  // A 16-pixel tile makes the 50×38 mask several tiles across and down.
  const tiff = path.join(dir, 'S1.tif');
  await writeLayerMaskTiff(layer, tiff, { width: 800, height: 600, downsample: 16, tileSize: 16 });
  const { readFile } = await import('node:fs/promises');
  const archive = await writeZip(path.join(dir, 'tiff.zip'), [
    { name: 'S1.tif', data: await readFile(tiff) },
    { name: 'S2.png', data: await s2({ ...S2_TRUTH, value: 255 }) },
  ]);
  const result = await scoreSubmission(archive, spec, truthOf);
  t.deepEqual(result.perSlide.map((s) => [s.slide, s.score]), [['S1', 1], ['S2', 1]]);
  t.like(result.perSlide[0]!.metrics, { truePositive: 300, falsePositive: 0, falseNegative: 0 });
});

test('tumour burden: 180/300 predicted viable against 150/300 true, weighted by the viable Jaccard 150/180', async (t) => {
  // Whole tumour as S1's; true viable [160, 320) × [160, 400): columns 10–19, rows 10–24, 150 pixels (burden ½).
  // Predicted: 1 on the tumour, 2 on columns 10–21 (180 pixels): burden 0.6, accuracy 0.9, weight 150/180.
  const burdenSpec: ScoringSpec = { task: 'tumour-burden', slides: [S1], maskDownsample: 16, threshold: 0.65 };
  const truth: SlideTruth = { tumour: [rectanglePolygon(160, 160, 480, 400)], viable: [rectanglePolygon(160, 160, 320, 400)], label: null };
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'burden.zip'), [{ name: 'S1.png', data: await s1(S1_TRUTH, { x0: 10, y0: 10, x1: 22, y1: 25, value: 2 }) }]);
  const result = await scoreSubmission(archive, burdenSpec, () => Promise.resolve(truth));
  const slide = result.perSlide[0]!;
  t.like(slide.metrics, { burdenPredicted: 0.6, burdenTrue: 0.5, jaccardWhole: 1 });
  t.true(close(slide.metrics.accuracy!, 0.9));
  t.true(close(slide.metrics.weight!, 150 / 180));
  t.true(close(slide.score, 0.75));
  t.true(close(result.score, 0.75));
  // 255 is a segmentation label only.
  const wrong = await writeZip(path.join(dir, 'wrong.zip'), [{ name: 'S1.png', data: await s1({ ...S1_TRUTH, value: 255 }) }]);
  t.deepEqual((await validateSubmission(wrong, burdenSpec)).problems.map((p) => p.code), ['label_out_of_range']);
});

test('classification: macro F1 from predictions.csv, with accuracy and the AUC as tie-breakers', async (t) => {
  // Truth S1 a, S2 a, S3 b; predicted a, b, a. F1: a 2/4, b 0 → 0.25; accuracy 1/3.
  // AUC for a: scores 0.9, 1 − 0.8, 0.6; positives 0.9 and 0.2 against 0.6 → ½; b mirrors it → ½.
  const slides = ['S1', 'S2', 'S3'].map((name) => ({ name, width: 100, height: 100 }));
  const labels: Record<string, string> = { S1: 'a', S2: 'a', S3: 'b' };
  const classSpec: ScoringSpec = { task: 'classification', slides, maskDownsample: 16, threshold: 0.65, labels: ['a', 'b'] };
  const dir = await scratch(t);
  const csv = 'slide,label,probability\nS1,a,0.9\nS2,b,0.8\nS3,a,0.6\n';
  const archive = await writeZip(path.join(dir, 'classes.zip'), [{ name: 'predictions.csv', data: Buffer.from(csv) }]);
  const result = await scoreSubmission(archive, classSpec, (slide) => Promise.resolve({ tumour: [], viable: [], label: labels[slide.name]! }));
  t.is(result.score, 0.25);
  t.true(close(result.tieBreakers[0]!, 1 / 3));
  t.is(result.tieBreakers[1], 0.5);
  t.deepEqual(result.perSlide.map((s) => [s.slide, s.score]), [['S1', 1], ['S2', 0], ['S3', 0]]);

  const bad = await writeZip(path.join(dir, 'bad.zip'), [{ name: 'predictions.csv', data: Buffer.from('slide,label,probability\nS1,a,1.5\nS1,b,\nS9,a,\nS2,c,\n') }]);
  const report = await validateSubmission(bad, classSpec);
  t.deepEqual(report.problems.map((p) => [p.code, p.slide]), [
    ['probability_out_of_range', 'S1'],
    ['unknown_slide', null],
    ['label_out_of_range', 'S2'],
    ['missing_slide', 'S3'],
  ]);
  t.is(report.problems[0]!.message, 'Line 2 of predictions.csv gives slide S1 the probability "1.5"; a probability is a number from 0 to 1.');
});

test('a mask whose pixel count is not a multiple of four counts its last pixels too', async (t) => {
  // 808×48 → 51×3 = 153 pixels; the truth [784, 816) × [0, 48) covers columns 49 and 50 of every row, 6 pixels,
  // the last of them pixel 152, past the last whole group of four.
  const slide = { name: 'EDGE', width: 808, height: 48 };
  const edgeSpec: ScoringSpec = { task: 'segmentation', slides: [slide], maskDownsample: 16, threshold: 0.65 };
  const truth: SlideTruth = { tumour: [rectanglePolygon(784, 0, 816, 48)], viable: [], label: null };
  const dir = await scratch(t);
  const full = rectangleMask(51, 3, [{ x0: 49, y0: 0, x1: 51, y1: 3, value: 1 }]);
  const lastMissing = Uint8Array.from(full);
  lastMissing[152] = 0;
  const scores = [];
  for (const [name, data] of [['full', full], ['last-missing', lastMissing]] as const) {
    const archive = await writeZip(path.join(dir, `${name}.zip`), [{ name: 'EDGE.png', data: await pngOf(data, 51, 3) }]);
    scores.push((await scoreSubmission(archive, edgeSpec, () => Promise.resolve(truth))).perSlide[0]!.metrics.jaccardRaw);
  }
  t.deepEqual(scores, [1, 5 / 6]);
});
