/**
 * One slide's way in: recognise a repeat, check its metadata, read it, check
 * and scrub its annotation, write the de-identified copy, verify it, and only
 * then publish it (file renamed into the store, row in the catalog). Anything
 * in doubt is quarantined with its reason; nothing half-written is published.
 */
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { LimitFunction } from 'p-limit';
import { removeThumbnails, renderThumbnails, storeThumbnails, type ThumbnailSize } from '../catalog/thumbnails.js';
import type { SlideFacts } from '../catalog/slide-facts.js';
import { isUniqueViolation } from '../db/index.js';
import { writeFileAtomic } from '../lib/files.js';
import { sha256File } from '../lib/hashing.js';
import {
  convertSlide,
  conversionReport,
  DEFAULT_CONVERSION,
  openSlideInfo,
  OPENSLIDE_EXTENSIONS,
  vendorIdentifiers,
  type Conversion,
  type OpenSlideInfo,
} from './convert.js';
import { MIN_SCANNED_LENGTH } from './deidentify/policy.js';
import { deidentifySlide, type DeidentifyResult } from './deidentify/deidentify.js';
import { deidentifyDicom, type DicomDeidentifyResult } from './deidentify/dicom.js';
import { deidentifyNdpi } from './deidentify/ndpi.js';
import { verifyDeidentified } from './deidentify/verify.js';
import { folderHash, originalSize } from './dicom-series.js';
import type { Candidate } from './discover.js';
import { refuseUnhandledFormat } from './formats.js';
import type { IngestReport, IngestSettings } from './ingest-settings.js';
import type { IngestOutcome, IngestRepository, IngestSource } from './ingest.repository.js';
import { sealOriginalName } from './linkage.js';
import { slideOrigin } from './origin.js';
import type { SheetRow } from './metadata-sheet.js';
import { keepOriginal, originalHash, quarantine, removeOriginal } from './originals.js';
import type { OriginalsInFlight } from './originals-in-flight.js';
import { Refusal, writeFailure } from './refusal.js';
import { checkAnnotation, checkMetadata, freshName, readableSlide, stripPath, type CheckedAnnotation } from './slide-checks.js';
import type { SlideMetadata } from './types.js';

export type IngestStage = 'hashing' | 'checking' | 'converting' | 'writing' | 'verifying' | 'thumbnails' | 'done';

export interface IngestProgress {
  file: string;
  stage: IngestStage;
  /** Bytes written of total while writing, percent of 100 while converting; 0/1 otherwise. */
  done: number;
  total: number;
}

export interface IngestResult {
  /** The original's file name, for the curator's eyes only. */
  file: string;
  outcome: IngestOutcome;
  reason: string | null;
  slideId: number | null;
  name: string | null;
  recordId: number;
  /** Where a quarantined original now waits. */
  quarantinePath: string | null;
  report: IngestReport;
  bytes: number;
  durationMs: number;
}

export interface IngestSlideInput {
  candidate: Candidate;
  /** The slide's row of metadata.csv, when the folder has one for it. */
  row?: SheetRow;
  /** Metadata for a slide without a row. */
  fallback?: SlideMetadata;
  settings: IngestSettings;
  repository: IngestRepository;
  source: IngestSource;
  onProgress?: (progress: IngestProgress) => void;
  /** The batch's originals being ingested at once: the same original twice waits for the first. */
  inFlight?: OriginalsInFlight;
  /**
   * The batch's copies are written one at a time (while others are checked,
   * verified and thumbnailed): a slide that fills the disk fails alone and its
   * partial copy is gone before the next is written, as one by one.
   */
  writeLane?: LimitFunction;
}

/** One ingest under way: what it was given, and what it has learnt and written so far. */
interface IngestRun {
  input: IngestSlideInput;
  started: number;
  /** The original's size. */
  bytes: number;
  originalSha256: string | null;
  /** Files written so far; removed unless the slide is published. */
  written: string[];
  /** The slide engine's name for the original's format, once recognised. */
  format: string | undefined;
  /** OpenSlide's view of a slide the engine does not read itself: it is converted. */
  openslide: OpenSlideInfo | undefined;
  /** The converted TIFF, once made; its temporary folder is removed when the ingest ends. */
  conversion: Conversion | null;
  progress(stage: IngestStage, done?: number, total?: number): void;
  /** Lets the next ingest of the same original in the batch go on, once this one is settled. */
  release?: () => void;
  /** The original is hashed as the de-identified copy reads it, and checked for a repeat after the copy is written. */
  hashWhileWriting: boolean;
}

/** What was read from the original before anything is written. */
interface CheckedSlide {
  metadata: SlideMetadata;
  facts: SlideFacts;
  annotation: CheckedAnnotation | null;
  name: string;
  /** What is de-identified: the original, or the TIFF it was converted into. */
  source: string;
}

/** The de-identified copy, under its temporary name until it is published. */
interface DeidentifiedCopy {
  result: DeidentifyResult;
  partial: string;
  final: string;
}

/** Ingest one slide: every outcome, published or not, is recorded and returned; nothing half-written is left. */
export async function ingestSlide(input: IngestSlideInput): Promise<IngestResult> {
  const { candidate, onProgress } = input;
  const run: IngestRun = {
    input,
    started: Date.now(),
    bytes: await originalSize(candidate.file),
    originalSha256: null,
    written: [],
    format: undefined,
    openslide: undefined,
    conversion: null,
    hashWhileWriting: false,
    progress: (stage, done = 0, total = 1) => onProgress?.({ file: candidate.fileName, stage, done, total }),
  };
  try {
    return await ingestSteps(run);
  } catch (error) {
    // A DICOM copy is a folder.
    for (const file of run.written) await rm(file, { recursive: true, force: true });
    return settleRefusal(run, error);
  } finally {
    if (run.conversion) await rm(run.conversion.folder, { recursive: true, force: true });
    run.release?.();
  }
}

async function ingestSteps(run: IngestRun): Promise<IngestResult> {
  const { candidate } = run.input;
  if (candidate.clash) throw new Refusal('refused', candidate.clash);
  if (candidate.missing) throw new Refusal('quarantined', candidate.missing);
  run.format = await refuseUnhandledFormat(candidate.file);
  run.openslide = await openSlideOnly(run);
  // A single-file slide the rewriter copies is hashed as the copy reads it; any other is hashed first.
  run.hashWhileWriting = run.format !== 'dicom' && run.format !== 'hamamatsu' && !run.openslide && !candidate.companions?.length;
  if (!run.hashWhileWriting) run.originalSha256 = await refuseRepeat(run);
  let slide: CheckedSlide;
  let copy: DeidentifiedCopy;
  try {
    slide = await checkSlide(run);
    copy = await writeDeidentifiedCopy(run, slide.name, slide.source);
  } catch (error) {
    // Refused before its hash was known: a repeat of a published original is still told as one first, as if hashed first.
    if (run.originalSha256 === null) {
      try {
        run.originalSha256 = await refuseRepeat(run);
      } catch (repeat) {
        if (repeat instanceof Refusal && repeat.outcome === 'duplicate') throw repeat;
      }
    }
    throw error;
  }
  if (run.originalSha256 === null) run.originalSha256 = await refuseRepeat(run, copy.result.originalSha256);
  const report: IngestReport = { originalFormat: run.openslide?.format ?? run.format, ...reportOf(copy.result, slide.annotation) };
  if (run.conversion) report.conversion = conversionReport(run.conversion.info, run.conversion.quality);
  // The thumbnails are drawn from the copy (in libvips's threads) while it is verified; stored only once it is published.
  const thumbnails = renderThumbnails(copy.partial).then(
    (rendered) => ({ rendered }),
    (error: unknown) => ({ error: error as Error }),
  );
  try {
    await verifyCopy(run, copy, slide.annotation, report);
  } finally {
    // Nothing is kept of a copy that failed; the drawing is done before the copy is removed.
    await thumbnails;
  }
  const { slideId, recordId } = await publish(run, slide, copy, report);
  await makeThumbnails(run, await thumbnails, slideId, report);
  await keepOriginal(candidate, run.originalSha256, run.input.settings);
  return finish(run, 'published', null, report, { slideId, name: slide.name, recordId });
}

/** The original's SHA-256 (computed here unless `known`); an original published before is a duplicate. */
async function refuseRepeat(run: IngestRun, known?: string): Promise<string> {
  const { candidate } = run.input;
  if (!known) run.progress('hashing');
  const sha256 = known ?? (await folderHash(candidate.file)) ?? (candidate.companions?.length ? await originalHash(candidate) : await sha256File(candidate.file));
  run.release = await run.input.inFlight?.hold(sha256);
  const published = await run.input.repository.findPublishedOriginal(sha256);
  if (published) throw new Refusal('duplicate', `already published as ${published.name} (slide ${published.id}); nothing was changed`);
  return sha256;
}

/** Metadata, the slide itself, its annotation and a name, checked before anything is written. */
async function checkSlide(run: IngestRun): Promise<CheckedSlide> {
  const { candidate, row, fallback, settings, repository } = run.input;
  run.progress('checking');
  const metadata = checkMetadata(row, fallback, settings.textPatterns);
  const source = run.openslide ? (await convert(run, run.openslide)).file : candidate.file;
  const facts = await readableSlide(source);
  if (run.conversion) {
    // The TIFF's resolution tags carry the MPP; the objective power only OpenSlide's properties.
    facts.mppX ??= run.conversion.mppX;
    facts.mppY ??= run.conversion.mppY;
    facts.objectivePower ??= run.conversion.objectivePower;
  }
  const annotation = candidate.xml ? await checkAnnotation(candidate.xml, facts, settings.textPatterns) : null;
  const name = await freshName(metadata, settings.vocabulary, repository);
  return { metadata, facts, annotation, name, source };
}

/**
 * A slide the engine does not read (or reads as a plain TIFF that OpenSlide
 * knows as a vendor's: Philips, Leica, Ventana, …) but OpenSlide opens: it is
 * converted. Undefined for everything the engine reads itself.
 */
async function openSlideOnly(run: IngestRun): Promise<OpenSlideInfo | undefined> {
  const { candidate, settings } = run.input;
  if (run.format !== undefined && run.format !== 'generic-tiff') return undefined;
  const conversion = settings.conversion ?? DEFAULT_CONVERSION;
  const onlyOpenSlide = path.extname(candidate.fileName).toLowerCase() in OPENSLIDE_EXTENSIONS;
  try {
    const info = await openSlideInfo(candidate.file, conversion);
    return info && info.vendor !== 'generic-tiff' && info.vendor !== run.format ? info : undefined;
  } catch (error) {
    // Without the tools, a file the engine reads is still ingested as the engine reads it; one only OpenSlide reads is refused.
    if (onlyOpenSlide) throw error;
    return undefined;
  }
}

/** The slide converted into a tiled pyramidal TIFF, with progress; quarantined (nothing left behind) when the converter fails or overruns. */
async function convert(run: IngestRun, info: OpenSlideInfo): Promise<Conversion> {
  const { settings } = run.input;
  run.progress('converting', 0, 100);
  await mkdir(settings.paths.slides, { recursive: true });
  run.conversion = await convertSlide(run.input.candidate.file, info, settings.paths.slides, settings.conversion ?? DEFAULT_CONVERSION, (percent) =>
    run.progress('converting', percent, 100),
  );
  return run.conversion;
}

/** The de-identified copy, written under a temporary name in the slide store. */
async function writeDeidentifiedCopy(run: IngestRun, name: string, source: string): Promise<DeidentifiedCopy> {
  if (run.format === 'dicom') return writeDicomCopy(run, name);
  const { candidate, settings } = run.input;
  const ndpi = run.format === 'hamamatsu';
  // An NDPI, and a converted slide, is published as a tiled TIFF.
  const extension = !ndpi && !run.conversion && path.extname(candidate.fileName).toLowerCase() === '.svs' ? '.svs' : '.tif';
  await mkdir(settings.paths.slides, { recursive: true });
  const final = path.join(settings.paths.slides, `${name}${extension}`);
  const partial = path.join(settings.paths.slides, `.${name}${extension}.partial`);
  run.progress('writing', 0, run.bytes);
  let result: DeidentifyResult;
  try {
    const options = { originalName: candidate.fileName, hashOriginal: run.hashWhileWriting, onProgress: (done: number, total: number) => run.progress('writing', done, total) };
    const write = () => (ndpi ? deidentifyNdpi(source, partial, options) : deidentifySlide(source, partial, options));
    result = await (run.input.writeLane ? run.input.writeLane(write) : write());
    if (run.conversion) addVendorIdentifiers(result, run.conversion.info);
  } catch (error) {
    // A reader's error names the original's path; the record must not keep it.
    if (error instanceof Error) error.message = stripPath(error.message, candidate.file);
    throw writeFailure(error, 'writing the de-identified copy');
  }
  run.written.push(partial);
  return { result, partial, final };
}

/** The vendor's identifying values (barcode, serial numbers, dates, … from OpenSlide's properties), searched for in the copy too. */
function addVendorIdentifiers(result: DeidentifyResult, info: OpenSlideInfo): void {
  const { identifiers } = result;
  const known = new Set(identifiers.scanned.map((v) => v.value));
  for (const item of vendorIdentifiers(info)) {
    if (item.value.length < MIN_SCANNED_LENGTH) {
      if (!identifiers.tooShort.includes(item.source)) identifiers.tooShort.push(item.source);
    } else if (!known.has(item.value)) {
      known.add(item.value);
      identifiers.scanned.push(item);
    }
  }
}

/** A DICOM series, published as a folder `<name>/` holding one instance per level (`deidentify/dicom.ts`). */
async function writeDicomCopy(run: IngestRun, name: string): Promise<DeidentifiedCopy> {
  const { candidate, settings } = run.input;
  await mkdir(settings.paths.slides, { recursive: true });
  const final = path.join(settings.paths.slides, name);
  const partial = path.join(settings.paths.slides, `.${name}.partial`);
  run.progress('writing', 0, 1);
  let result: DicomDeidentifyResult;
  try {
    const write = () => deidentifyDicom(candidate.file, partial, { originalName: candidate.fileName, name, onProgress: (done, total) => run.progress('writing', done, total) });
    result = await (run.input.writeLane ? run.input.writeLane(write) : write());
  } catch (error) {
    // A reader's error names the original's path; the record must not keep it.
    if (error instanceof Error) error.message = stripPath(error.message, candidate.file);
    throw writeFailure(error, 'writing the de-identified copy');
  }
  run.written.push(partial);
  return { result, partial, final };
}

/** What the verification of a DICOM copy also checks: the slide's name in the patient's place, and the frames. */
function dicomExpectations(result: DeidentifyResult): { dicom?: { name: string; frameDigests: string[] } } {
  return 'frameDigests' in result ? { dicom: { name: (result as DicomDeidentifyResult).name, frameDigests: (result as DicomDeidentifyResult).frameDigests } } : {};
}

function reportOf(result: DeidentifyResult, annotation: CheckedAnnotation | null): IngestReport {
  return {
    directories: result.directories,
    annotation: annotation ? { removed: annotation.removed, layers: annotation.summary.layers.length, regions: annotation.summary.totals.regions } : null,
    tiffFormat: result.tiffFormat,
    sha256: result.sha256,
    ...('dicom' in result ? { dicom: (result as DicomDeidentifyResult).dicom } : {}),
    ...(result.levels ? { levels: result.levels } : {}),
  };
}

/** The copy read back and checked; neither it nor the scrubbed annotation may hold an identifying value of the original. */
async function verifyCopy(run: IngestRun, copy: DeidentifiedCopy, annotation: CheckedAnnotation | null, report: IngestReport): Promise<void> {
  run.progress('verifying');
  const { identifiers, expectedLevels, sha256, size } = copy.result;
  const verification = await verifyDeidentified(copy.partial, { identifiers, levels: expectedLevels, sha256, size, ...dicomExpectations(copy.result) });
  report.checks = verification.checks;
  if (!verification.passed) {
    const failed = verification.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}`);
    throw new Refusal('quarantined', `verification failed: ${failed.join('; ')}`, report);
  }
  if (annotation) {
    const leaked = identifiers.scanned.filter((v) => annotation.xml.includes(v.value)).map((v) => v.source);
    if (leaked.length) throw new Refusal('quarantined', `the scrubbed annotation still holds the original's ${leaked.join(', ')}`, report);
  }
}

/** Files into place first (a reader only finds them through the catalog row), then the row. */
async function publish(run: IngestRun, slide: CheckedSlide, copy: DeidentifiedCopy, report: IngestReport): Promise<{ slideId: number; recordId: number }> {
  const { candidate, settings, repository, source } = run.input;
  await rename(copy.partial, copy.final);
  run.written.splice(run.written.indexOf(copy.partial), 1, copy.final);
  const annotationPath = slide.annotation ? await writeAnnotation(run, slide.name, slide.annotation) : null;
  const { result } = copy;
  const { facts } = slide;
  const originalSha256 = run.originalSha256!;
  const { slide: published, recordId } = await publishOnce(() =>
    repository.publish(
      {
        name: slide.name,
        filePath: path.basename(copy.final),
        fileSize: result.size,
        sha256: result.sha256,
        vendor: result.vendor,
        width: facts.width,
        height: facts.height,
        levelCount: result.expectedLevels.length,
        mppX: facts.mppX,
        mppY: facts.mppY,
        objectivePower: facts.objectivePower,
      },
      { metadata: slide.metadata, originalSha256, annotationPath, annotationSummary: slide.annotation?.summary ?? null, origin: slideOrigin(run.format, run.openslide) },
      { reason: null, originalSha256, quarantinePath: null, report, source },
      settings.linkageKey ? sealOriginalName(candidate.fileName, settings.linkageKey) : null,
    ),
  );
  return { slideId: published.id, recordId };
}

/** The scrubbed annotation beside the slide; its file name as the catalog stores it. */
async function writeAnnotation(run: IngestRun, name: string, annotation: CheckedAnnotation): Promise<string> {
  const file = path.join(run.input.settings.paths.slides, `${name}.xml`);
  try {
    await writeFileAtomic(file, annotation.xml);
  } catch (error) {
    throw writeFailure(error, 'writing the scrubbed annotation');
  }
  run.written.push(file);
  return path.basename(file);
}

/** Two ingests of one original at once (the CLI and the inbox job): the second finds the first's row when it publishes. */
async function publishOnce<T>(publish: () => Promise<T>): Promise<T> {
  try {
    return await publish();
  } catch (error) {
    if (isUniqueViolation(error)) throw new Refusal('duplicate', 'another ingest published the same original at the same moment; nothing was changed');
    throw error;
  }
}

/** The published slide's thumbnails stored; a failure (drawing or storing) is noted in the report and leaves the slide published. */
async function makeThumbnails(run: IngestRun, drawn: { rendered: Map<ThumbnailSize, Buffer> } | { error: Error }, slideId: number, report: IngestReport): Promise<void> {
  const { thumbnails } = run.input.settings.paths;
  run.progress('thumbnails');
  try {
    if ('error' in drawn) throw drawn.error;
    await storeThumbnails(drawn.rendered, thumbnails, slideId);
  } catch (error) {
    // The slide is published and viewable; the catalog shows a placeholder until thumbnails are remade.
    report.error = `thumbnails could not be made: ${(error as Error).message}`;
    await removeThumbnails(thumbnails, slideId);
  }
}

/** An ingest that did not publish, recorded: quarantined with its original, a duplicate dropped from the inbox, or failed. */
async function settleRefusal(run: IngestRun, error: unknown): Promise<IngestResult> {
  const { candidate, settings } = run.input;
  if (!(error instanceof Refusal)) {
    const message = error instanceof Error ? error.message : String(error);
    return finish(run, 'failed', `ingest failed: ${message}; nothing was published`, { error: message });
  }
  if (error.outcome === 'quarantined') {
    const quarantinePath = await quarantine(candidate, error.message, error.report, settings).catch(() => null);
    return finish(run, 'quarantined', error.message, error.report, { quarantinePath });
  }
  if (error.outcome === 'duplicate' && settings.takeOriginals) await removeOriginal(candidate);
  return finish(run, error.outcome, error.message, error.report);
}

/** The outcome recorded (unless publishing recorded it already) and reported. */
async function finish(
  run: IngestRun,
  outcome: IngestOutcome,
  reason: string | null,
  report: IngestReport,
  extra: Partial<Pick<IngestResult, 'slideId' | 'name' | 'recordId' | 'quarantinePath'>> = {},
): Promise<IngestResult> {
  const { candidate, repository, source } = run.input;
  const quarantinePath = extra.quarantinePath ?? null;
  const recordId = extra.recordId ?? (await repository.create({ outcome, reason, slideId: null, originalSha256: run.originalSha256, quarantinePath, report, source }));
  run.progress('done');
  return {
    file: candidate.fileName,
    outcome,
    reason,
    slideId: extra.slideId ?? null,
    name: extra.name ?? null,
    recordId,
    quarantinePath,
    report,
    bytes: run.bytes,
    durationMs: Date.now() - run.started,
  };
}
