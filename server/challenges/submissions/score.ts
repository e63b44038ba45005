/**
 * Scoring a submission in bounded memory: each mask is read band by band
 * (mask-reader.ts), the truth of the same rows is rasterised from its
 * polygons at the mask's downsample (truth.ts), and only counts are kept.
 * Memory is one band of mask and one of truth, whatever the slide's size.
 */
import { burdenSlide, classificationScore, segmentationScore, segmentationSlide, tumourBurdenScore, jaccard } from '../metrics/index.js';
import { MaskError, openMask } from './mask-reader.js';
import { paintTruthBand, polygonRings, type TruthLayer } from './truth.js';
import { SubmissionInvalid, type ChallengeSlide, type FileProblem, type ScoringSpec, type SlideScore, type SlideTruth, type SubmissionScore } from './types.js';
import { allowedLabels, inspectSubmission, labelProblem, validateSubmission, type InspectOptions } from './validate.js';

/** Pixel counts of one slide at the mask's resolution (predicted, true, both). */
export interface SlideCounts {
  /** Tumour (segmentation) or whole tumour (tumour burden). */
  whole: { truePositive: number; falsePositive: number; falseNegative: number };
  /** Viable tumour (tumour burden only; zero for segmentation). */
  viable: { truePositive: number; falsePositive: number; falseNegative: number };
  /** Pixels per value (0–255) that the task does not allow; all 0 in a valid mask. */
  outside: Float64Array;
}

/** Count the overlap of a mask file with the truth of its slide, band by band. */
export async function countOverlap(
  file: string,
  slide: ChallengeSlide,
  truth: SlideTruth,
  spec: Pick<ScoringSpec, 'task' | 'maskDownsample'>,
  name = `The mask of slide ${slide.name}`,
): Promise<SlideCounts> {
  const burden = spec.task === 'tumour-burden';
  const layers: TruthLayer[] = [{ polygons: truth.tumour.map(polygonRings), value: 1 }];
  if (burden) layers.push({ polygons: truth.viable.map(polygonRings), value: 2 });
  const reader = await openMask(file, name);
  const allowed = allowedLabels(spec.task);
  const outside = new Float64Array(256);
  let wtp = 0;
  let wfp = 0;
  let wfn = 0;
  let vtp = 0;
  let vfp = 0;
  let vfn = 0;
  try {
    const width = reader.width;
    let truthRows = new Uint8Array(0);
    for await (const band of reader.bands()) {
      const n = band.rows * width;
      if (truthRows.length < n) truthRows = new Uint8Array(n);
      const truthBand = truthRows.subarray(0, n);
      paintTruthBand(layers, { width, firstRow: band.firstRow, rows: band.rows, data: truthBand }, spec.maskDownsample);
      const mask = band.data;
      // Most of a slide is background on both sides: four pixels that are all 0 are passed over at once.
      const words = mask.byteOffset % 4 === 0 && truthBand.byteOffset % 4 === 0 ? n >> 2 : 0;
      const mask32 = new Uint32Array(mask.buffer, mask.byteOffset, words);
      const truth32 = new Uint32Array(truthBand.buffer, truthBand.byteOffset, words);
      for (let w = 0; w <= words; w++) {
        if (w < words && (mask32[w]! | truth32[w]!) === 0) continue;
        const end = w < words ? (w + 1) << 2 : n;
        for (let i = w << 2; i < end; i++) {
          const p = mask[i]!;
          const t = truthBand[i]!;
          if (allowed[p] === 0) outside[p]! += 1;
          if (p !== 0) {
            if (t !== 0) wtp++;
            else wfp++;
          } else if (t !== 0) wfn++;
          if (burden) {
            if (p === 2) {
              if (t === 2) vtp++;
              else vfp++;
            } else if (t === 2) vfn++;
          }
        }
      }
    }
  } finally {
    await reader.close();
  }
  return { whole: { truePositive: wtp, falsePositive: wfp, falseNegative: wfn }, viable: { truePositive: vtp, falsePositive: vfp, falseNegative: vfn }, outside };
}

/**
 * Validate, then score a submission against the hidden truth of each test
 * slide (asked for one slide at a time). Throws SubmissionInvalid with the
 * report when validation finds a problem.
 */
export async function scoreSubmission(
  archivePath: string,
  spec: ScoringSpec,
  truthOf: (slide: ChallengeSlide) => Promise<SlideTruth>,
  onProgress?: (done: number, total: number) => void,
  options: InspectOptions = {},
): Promise<SubmissionScore> {
  // Labels are checked while counting, in the same pass over the pixels; a mask that breaks them, or that
  // turns out damaged past its header, ends in the same SubmissionInvalid that validation would give.
  const inspection = await inspectSubmission(archivePath, spec, { ...options, checkLabels: false });
  try {
    // Refused already: the full check, labels included, gives the report validateSubmission would.
    if (!inspection.report.ok) throw new SubmissionInvalid(spec.task === 'classification' ? inspection.report : await validateSubmission(archivePath, spec, options));
    const total = spec.slides.length;
    if (spec.task === 'classification') return await scoreClassification(spec, inspection.predictions, truthOf, onProgress);
    const perSlide: SlideScore[] = [];
    const segmentation = [];
    const burden = [];
    const problems: FileProblem[] = [];
    for (const [index, slide] of spec.slides.entries()) {
      const file = inspection.masks.get(slide.name)!;
      let counts: SlideCounts;
      try {
        counts = await countOverlap(file.path, slide, await truthOf(slide), spec, `The mask "${file.entry}"`);
      } catch (error) {
        if (!(error instanceof MaskError)) throw error;
        problems.push({ file: file.entry, slide: slide.name, code: error.code, message: error.message });
        continue;
      }
      const wrong = labelProblem(file.entry, slide.name, counts.outside, spec.task);
      if (wrong) problems.push(wrong);
      if (problems.length > 0) continue;
      if (spec.task === 'segmentation') {
        const result = segmentationSlide(counts.whole, spec.threshold);
        segmentation.push(result);
        perSlide.push({ slide: slide.name, score: result.jaccard, metrics: { ...result, ...counts.whole } });
      } else {
        const areas = {
          predicted: { whole: counts.whole.truePositive + counts.whole.falsePositive, viable: counts.viable.truePositive + counts.viable.falsePositive },
          truth: { whole: counts.whole.truePositive + counts.whole.falseNegative, viable: counts.viable.truePositive + counts.viable.falseNegative },
          viable: counts.viable,
        };
        const result = burdenSlide(areas, spec.threshold);
        burden.push(result);
        const { score, ...metrics } = result;
        perSlide.push({ slide: slide.name, score, metrics: { ...metrics, jaccardWhole: jaccard(counts.whole) } });
      }
      onProgress?.(index + 1, total);
    }
    if (problems.length > 0) {
      const refused = new Set(problems.map((p) => p.file));
      throw new SubmissionInvalid({ ok: false, problems, files: inspection.report.files.filter((f) => !refused.has(f.file)) });
    }
    const result = spec.task === 'segmentation' ? segmentationScore(segmentation) : tumourBurdenScore(burden);
    return { score: result.score, tieBreakers: [...result.tieBreakers], metrics: { ...result.metrics }, perSlide };
  } finally {
    await inspection.cleanup();
  }
}

/** Classification: a slide scores 1 when its label is right; slides whose truth has no label are left out. */
async function scoreClassification(
  spec: ScoringSpec,
  predictions: Map<string, { label: string; probability: number | null }>,
  truthOf: (slide: ChallengeSlide) => Promise<SlideTruth>,
  onProgress?: (done: number, total: number) => void,
): Promise<SubmissionScore> {
  const perSlide: SlideScore[] = [];
  const slides = [];
  for (const [index, slide] of spec.slides.entries()) {
    const truth = await truthOf(slide);
    const prediction = predictions.get(slide.name)!;
    if (truth.label !== null) {
      slides.push({ truth: truth.label, predicted: prediction.label, probability: prediction.probability });
      const correct = truth.label === prediction.label ? 1 : 0;
      perSlide.push({ slide: slide.name, score: correct, metrics: { correct, ...(prediction.probability === null ? {} : { probability: prediction.probability }) } });
    }
    onProgress?.(index + 1, spec.slides.length);
  }
  const result = classificationScore(slides, spec.labels);
  const { macroAuc, ...metrics } = result.metrics;
  return { score: result.score, tieBreakers: [...result.tieBreakers], metrics: { ...metrics, ...(macroAuc === null ? {} : { macroAuc }) }, perSlide };
}
