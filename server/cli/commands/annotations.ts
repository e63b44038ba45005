import { readFile, stat } from 'node:fs/promises';
import { Command } from 'commander';
import { createReviewService } from '../../annotation-review/create.js';
import { comparisonDownsample, inlineOutlineWork, type ReviewService } from '../../annotation-review/index.js';
import { AnnotationError, annotationsFromGeoJson, parseAperioXml, type AperioAnnotations } from '../../annotations/index.js';
import { createSlidesRepository } from '../../catalog/create.js';
import { openDatabase, waitForDatabase } from '../../db/index.js';
import { AppError, ExitCode, FatalError } from '../../errors.js';
import { createLogger } from '../../logging.js';
import { compareAnnotations } from '../../toolbox/agreement.js';
import { ToolboxError } from '../../toolbox/errors.js';
import { outlinesFromProbabilityMap } from '../../toolbox/map-outlines.js';
import { Slide } from '../../wsi/index.js';
import { configFromCli, runCommand, type GlobalOptions } from '../run.js';

interface CompareOptions {
  slide?: string;
  width?: string;
  height?: string;
  downsample?: string;
  tumourLayer?: string;
}

const bad = (message: string) => new FatalError(ExitCode.config, message);

function whole(flag: string, raw: string | undefined, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw.trim()) || Number(raw) < min) throw bad(`${flag} must be a whole number of at least ${min}, got "${raw}"`);
  return Number(raw);
}

async function readXml(file: string): Promise<AperioAnnotations> {
  return readAnnotationFile(file, parseAperioXml);
}

/** A file's text parsed by `parse`: a file that is not there exits 2, one that does not parse exits 1, both naming it. */
async function readAnnotationFile(file: string, parse: (text: string) => AperioAnnotations): Promise<AperioAnnotations> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw bad(`${file}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  try {
    return parse(text);
  } catch (error) {
    if (error instanceof AnnotationError) throw new FatalError(ExitCode.failure, `${file}: ${error.message}`);
    throw error;
  }
}

/** The slide's level-0 size: from the catalog for a slide id, from the file for a path. */
async function slideSize(slide: string, command: Command): Promise<{ width: number; height: number }> {
  if (/^\d+$/.test(slide)) {
    const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
    const log = createLogger('warn');
    const db = openDatabase(config.database.target, { log });
    try {
      await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
      const record = await createSlidesRepository(db).findById(Number(slide));
      if (!record) throw bad(`--slide ${slide}: no such slide in the catalog`);
      return { width: record.width, height: record.height };
    } finally {
      await db.close();
    }
  }
  if (!(await stat(slide).catch(() => undefined))?.isFile()) throw bad(`--slide ${slide}: neither a slide id nor a slide file`);
  const opened = await Slide.open(slide);
  try {
    return { width: opened.width, height: opened.height };
  } finally {
    await opened.close();
  }
}

/** `slidebank annotations compare A B`: agreement between two annotations of one slide. */
export function annotationsCommand(): Command {
  const annotations = new Command('annotations').description('work with Aperio XML annotations');
  annotations
    .command('compare')
    .description('IoU per layer and mIoU (background and tumour) of two annotations of one slide, as JSON')
    .argument('<a>', 'the first Aperio XML file (e.g. the AI proposal), or a version of the slide as v<id>')
    .argument('<b>', 'the second (e.g. the pathologist’s corrected version), or v<id>')
    .option('--slide <id|file>', 'the slide: a catalog id or a slide file, for its level-0 size')
    .option('--width <px>', 'level-0 width of the slide (with --height, instead of --slide)')
    .option('--height <px>', 'level-0 height of the slide')
    .option('--downsample <n>', 'level-0 pixels per mask pixel for the rasterisation (the grid may have at most 16,000,000 cells)', '16')
    .option('--tumour-layer <id>', 'the Annotation Id that is "tumour" for mIoU (default: 1 when both have it, else all layers together)')
    .action(async (a: string, b: string, options: CompareOptions, command: Command) =>
      runCommand(async () => {
        const downsample = whole('--downsample', options.downsample)!;
        const tumourLayer = whole('--tumour-layer', options.tumourLayer, 0);
        let size: { width: number; height: number };
        if (options.slide !== undefined) {
          if (options.width !== undefined || options.height !== undefined) throw bad('give either --slide or --width and --height, not both');
          size = await slideSize(options.slide, command);
        } else {
          const width = whole('--width', options.width);
          const height = whole('--height', options.height);
          if (width === undefined || height === undefined) throw bad('the slide size is needed: give --slide ID|FILE, or --width and --height');
          size = { width, height };
        }
        if (VERSION.test(a) && VERSION.test(b)) {
          if (options.slide === undefined || !/^\d+$/.test(options.slide)) throw bad('comparing versions (v3 v5) needs --slide with the slide id');
          const slideId = Number(options.slide);
          await withReview(command, async (review) => {
            const result = await review.compare(slideId, Number(a.slice(1)), Number(b.slice(1)), downsample);
            process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          });
          return;
        }
        const [docA, docB] = [await readXml(a), await readXml(b)];
        try {
          comparisonDownsample(size, docA, docB, downsample);
          const report = compareAnnotations(docA, docB, { ...size, downsample, ...(tumourLayer !== undefined ? { tumourLayer } : {}) });
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        } catch (error) {
          if (error instanceof ToolboxError) throw bad(`--${error.parameter} ${error.problem}`);
          if (error instanceof AppError) throw bad(`--downsample: ${error.message}`);
          throw error;
        }
      }),
    );
  annotations
    .command('import')
    .description('add an annotation version to a slide: an AI proposal (--method ai --model NAME) or a manual outline, from Aperio XML, GeoJSON or a probability map PNG')
    .argument('<file>', '.xml (Aperio), .geojson/.json, or .png (a probability map from `toolbox stitch`, traced at --threshold)')
    .requiredOption('--slide <id>', 'the catalog id of the slide')
    .option('--method <method>', 'ai (a model\'s proposal) or manual', 'ai')
    .option('--model <name>', 'the model that made the proposal (required with --method ai)')
    .option('--note <text>', 'a note kept with the version')
    .option('--threshold <p>', 'for a probability map: the probability from which a pixel is tumour', '0.5')
    .option('--tolerance <px>', 'for a probability map: simplification tolerance in map pixels', '1')
    .option('--min-area <px>', 'for a probability map: smallest outline or hole kept, in map pixels', '4')
    .addHelpText(
      'after',
      '\nThe version starts (or continues) the slide\'s review: an AI proposal makes the slide "proposed" in the pathologists\' worklist;\n' +
        'a manual outline makes it "in-review". Outlines that cross themselves, holes outside their shape, empty outlines and\n' +
        'outlines beyond the slide are refused with the region named (exit 1); nothing is added then.\n' +
        'Exit codes: 0 added, 1 the outline or the file was refused, 2 bad option.',
    )
    .action(async (file: string, options: ImportOptions, command: Command) =>
      runCommand(async () => {
        if (!/^\d+$/.test(options.slide)) throw bad(`--slide must be a slide id, got "${options.slide}"`);
        if (options.method !== 'ai' && options.method !== 'manual') throw bad(`--method must be ai or manual, got "${options.method}"`);
        if (options.method === 'ai' && !options.model?.trim()) throw bad('--model is required with --method ai: the name of the model that made the proposal');
        const threshold = Number(options.threshold);
        if (!(threshold > 0 && threshold <= 1)) throw bad(`--threshold must be above 0 and at most 1, got "${options.threshold}"`);
        const tolerance = Number(options.tolerance);
        if (!(tolerance >= 0)) throw bad(`--tolerance must be a number of at least 0, got "${options.tolerance}"`);
        const minArea = whole('--min-area', options.minArea, 0)!;
        const doc = await readOutline(file, { threshold, tolerance, minArea });
        await withReview(command, async (review) => {
          const result = await review.propose(Number(options.slide), { outline: { doc }, method: options.method as 'ai' | 'manual', model: options.model ?? null, note: options.note ?? null }, { actorId: null, roles: [] });
          const version = result.versions[0]!;
          process.stdout.write(`${JSON.stringify({ slide: result.slide.id, version: version.id, method: version.method, regions: version.regions, state: result.workflow.state, round: result.workflow.round }, null, 2)}\n`);
        });
      }),
    );
  annotations
    .command('versions')
    .description('list the annotation versions of a slide with the state of its review, as JSON')
    .requiredOption('--slide <id>', 'the catalog id of the slide')
    .action(async (options: { slide: string }, command: Command) =>
      runCommand(async () => {
        if (!/^\d+$/.test(options.slide)) throw bad(`--slide must be a slide id, got "${options.slide}"`);
        await withReview(command, async (review) => {
          const { slide, workflow, versions } = await review.review(Number(options.slide));
          process.stdout.write(`${JSON.stringify({ slide, workflow, versions }, null, 2)}\n`);
        });
      }),
    );
  return annotations;
}

interface ImportOptions {
  slide: string;
  method: string;
  model?: string;
  note?: string;
  threshold: string;
  tolerance: string;
  minArea: string;
}

const VERSION = /^v\d{1,9}$/;

/** An outline file: Aperio XML, GeoJSON, or a probability map traced into polygons. */
async function readOutline(file: string, map: { threshold: number; tolerance: number; minArea: number }): Promise<AperioAnnotations> {
  if (/\.png$/i.test(file)) {
    if (!(await stat(file).catch(() => undefined))?.isFile()) throw bad(`${file}: no such file`);
    try {
      return await outlinesFromProbabilityMap(file, map);
    } catch (error) {
      if (error instanceof ToolboxError) throw new FatalError(ExitCode.failure, `${file}: ${error.parameter} ${error.problem}`);
      throw error;
    }
  }
  if (/\.(geo)?json$/i.test(file)) return readAnnotationFile(file, (text) => annotationsFromGeoJson(text));
  return readXml(file);
}

/** The review service on the configured database; its refusals (AppError) become one line and exit code 1. */
async function withReview(command: Command, work: (review: ReviewService) => Promise<void>): Promise<void> {
  const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    const review = createReviewService(config, db, log, { outlineWork: inlineOutlineWork });
    await work(review);
  } catch (error) {
    if (error instanceof AppError) throw new FatalError(ExitCode.failure, error.message);
    throw error;
  } finally {
    await db.close();
  }
}
