/**
 * One slide's way in: recognise a repeat, check its metadata, read it, check
 * and scrub its annotation, write the de-identified copy, verify it, and only
 * then publish it (file renamed into the store, row in the catalog). Anything
 * in doubt is quarantined with its reason; nothing half-written is published.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  AnnotationError,
  checkBounds,
  parseAperioXml,
  scrubAnnotations,
  serializeAperioXml,
  summarizeAnnotations,
  type AnnotationSummary,
} from '../annotations/index.js';
import { readSlideFacts, type SlideFacts } from '../catalog/slide-facts.js';
import { isUniqueViolation } from '../db/index.js';
import { removeThumbnails, writeThumbnails } from '../catalog/thumbnails.js';
import { deidentifySlide, type DeidentifyResult } from './deidentify/deidentify.js';
import { verifyDeidentified, type Verification } from './deidentify/verify.js';
import type { Candidate } from './discover.js';
import { copyFileAtomic, moveFile, sha256File, writeFileAtomic } from './files.js';
import type { IngestOutcome, IngestRepository, IngestSource } from './ingest.repository.js';
import { sealOriginalName } from './linkage.js';
import type { SheetRow } from './metadata-sheet.js';
import { formatSlideName } from './nomenclature.js';
import type { SlideMetadata, Vocabulary } from './types.js';

export interface IngestSettings {
  paths: { slides: string; quarantine: string; originals: string; thumbnails: string };
  keepOriginals: boolean;
  /** Move the original out of its folder afterwards (the inbox); a CLI ingest leaves the curator's folder alone. */
  takeOriginals: boolean;
  linkageKey: string;
  textPatterns: RegExp[];
  vocabulary: Vocabulary;
}

export type IngestStage = 'hashing' | 'checking' | 'writing' | 'verifying' | 'thumbnails' | 'done';

export interface IngestProgress {
  file: string;
  stage: IngestStage;
  /** Bytes written of total while writing; 0/1 otherwise. */
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

/** What was removed and what was checked: shown to curators; holds no identifying value. */
export interface IngestReport {
  directories?: DeidentifyResult['directories'];
  annotation?: { removed: string[]; layers: number; regions: number } | null;
  checks?: Verification['checks'];
  metadataProblems?: string[];
  tiffFormat?: string;
  sha256?: string;
  error?: string;
}

class Refusal extends Error {
  constructor(
    readonly outcome: 'refused' | 'quarantined' | 'duplicate' | 'failed',
    message: string,
    readonly report: IngestReport = {},
  ) {
    super(message);
  }
}

export async function ingestSlide(
  candidate: Candidate,
  row: SheetRow | undefined,
  fallback: SlideMetadata | undefined,
  settings: IngestSettings,
  repository: IngestRepository,
  source: IngestSource,
  onProgress: (progress: IngestProgress) => void = () => {},
): Promise<IngestResult> {
  const started = Date.now();
  const progress = (stage: IngestStage, done = 0, total = 1) => onProgress({ file: candidate.fileName, stage, done, total });
  const bytes = (await stat(candidate.file)).size;
  let originalSha256: string | null = null;
  const written: string[] = [];
  const finish = async (
    outcome: IngestOutcome,
    reason: string | null,
    report: IngestReport,
    extra: Partial<Pick<IngestResult, 'slideId' | 'name' | 'recordId' | 'quarantinePath'>> = {},
  ): Promise<IngestResult> => {
    const recordId =
      extra.recordId ??
      (await repository.create({ outcome, reason, slideId: null, originalSha256, quarantinePath: extra.quarantinePath ?? null, report, source }));
    progress('done');
    return {
      file: candidate.fileName,
      outcome,
      reason,
      slideId: extra.slideId ?? null,
      name: extra.name ?? null,
      recordId,
      quarantinePath: extra.quarantinePath ?? null,
      report,
      bytes,
      durationMs: Date.now() - started,
    };
  };

  try {
    if (candidate.clash) throw new Refusal('refused', candidate.clash);
    progress('hashing');
    originalSha256 = await sha256File(candidate.file);
    const published = await repository.findPublishedOriginal(originalSha256);
    if (published) throw new Refusal('duplicate', `already published as ${published.name} (slide ${published.id}); nothing was changed`);

    progress('checking');
    const metadata = metadataFor(row, fallback);
    const info = metadata.pathologyInfo;
    if (info && settings.textPatterns.some((pattern) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(info))) {
      throw new Refusal('refused', 'pathology_info looks like it holds an identifier (it matches one of ingest.scrubTextPatterns); reword it');
    }
    const slideFacts = await readable(candidate.file);
    const annotation = candidate.xml ? await checkAnnotation(candidate.xml, slideFacts, settings.textPatterns) : null;
    const name = await freshName(metadata, settings.vocabulary, repository);
    const extension = path.extname(candidate.fileName).toLowerCase() === '.svs' ? '.svs' : '.tif';

    await mkdir(settings.paths.slides, { recursive: true });
    const finalSlide = path.join(settings.paths.slides, `${name}${extension}`);
    const partial = path.join(settings.paths.slides, `.${name}${extension}.partial`);
    progress('writing', 0, bytes);
    let result: DeidentifyResult;
    try {
      result = await deidentifySlide(candidate.file, partial, {
        originalName: candidate.fileName,
        onProgress: (done, total) => progress('writing', done, total),
      });
    } catch (error) {
      throw writeFailure(error, 'writing the de-identified copy');
    }
    written.push(partial);
    const report: IngestReport = {
      directories: result.directories,
      annotation: annotation ? { removed: annotation.removed, layers: annotation.summary.layers.length, regions: annotation.summary.totals.regions } : null,
      tiffFormat: result.tiffFormat,
      sha256: result.sha256,
    };

    progress('verifying');
    const identifiers = result.identifiers;
    const verification = await verifyDeidentified(partial, {
      identifiers,
      levels: result.expectedLevels,
      sha256: result.sha256,
      size: result.size,
    });
    report.checks = verification.checks;
    if (!verification.passed) {
      const failed = verification.checks.filter((c) => !c.passed).map((c) => `${c.name}: ${c.detail}`);
      throw new Refusal('quarantined', `verification failed: ${failed.join('; ')}`, report);
    }
    if (annotation) {
      const leaked = identifiers.scanned.filter((v) => annotation.xml.includes(v.value)).map((v) => v.source);
      if (leaked.length) throw new Refusal('quarantined', `the scrubbed annotation still holds the original's ${leaked.join(', ')}`, report);
    }

    // Publish: files into place first (a reader only finds them through the catalog row), then the row.
    await rename(partial, finalSlide);
    written.splice(written.indexOf(partial), 1, finalSlide);
    let annotationPath: string | null = null;
    if (annotation) {
      const finalXml = path.join(settings.paths.slides, `${name}.xml`);
      try {
        await writeFileAtomic(finalXml, annotation.xml);
      } catch (error) {
        throw writeFailure(error, 'writing the scrubbed annotation');
      }
      written.push(finalXml);
      annotationPath = path.basename(finalXml);
    }

    const hash = originalSha256;
    const { slide, recordId } = await publishOnce(() => repository.publish(
      {
        name,
        filePath: path.basename(finalSlide),
        fileSize: result.size,
        sha256: result.sha256,
        vendor: result.vendor,
        width: slideFacts.width,
        height: slideFacts.height,
        levelCount: slideFacts.levelCount,
        mppX: slideFacts.mppX,
        mppY: slideFacts.mppY,
        objectivePower: slideFacts.objectivePower,
      },
      { metadata, originalSha256: hash, annotationPath, annotationSummary: annotation?.summary ?? null },
      { reason: null, originalSha256: hash, quarantinePath: null, report, source },
      settings.linkageKey ? sealOriginalName(candidate.fileName, settings.linkageKey) : null,
    ));

    progress('thumbnails');
    try {
      await writeThumbnails(finalSlide, settings.paths.thumbnails, slide.id);
    } catch (error) {
      // The slide is published and viewable; the catalog shows a placeholder until thumbnails are remade.
      report.error = `thumbnails could not be made: ${(error as Error).message}`;
      await removeThumbnails(settings.paths.thumbnails, slide.id);
    }
    await keepOriginal(candidate, originalSha256, settings);
    return finish('published', null, report, { slideId: slide.id, name, recordId });
  } catch (error) {
    for (const file of written) await rm(file, { force: true });
    if (!(error instanceof Refusal)) {
      const message = error instanceof Error ? error.message : String(error);
      return finish('failed', `ingest failed: ${message}; nothing was published`, { error: message });
    }
    if (error.outcome === 'quarantined') {
      const quarantinePath = await quarantine(candidate, error.message, error.report, settings).catch(() => null);
      return finish('quarantined', error.message, error.report, { quarantinePath });
    }
    if (error.outcome === 'duplicate' && settings.takeOriginals) {
      await rm(candidate.file, { force: true });
      if (candidate.xml) await rm(candidate.xml, { force: true });
    }
    return finish(error.outcome, error.message, error.report);
  }
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

function metadataFor(row: SheetRow | undefined, fallback: SlideMetadata | undefined): SlideMetadata {
  if (row) {
    if (row.metadata) return row.metadata;
    throw new Refusal('refused', `metadata.csv line ${row.line}: ${row.problems.join('; ')}`, { metadataProblems: row.problems });
  }
  if (fallback) return fallback;
  throw new Refusal('refused', 'no metadata: add a row for it to metadata.csv (or give --organ, --histology and --stain for the whole folder)');
}

async function readable(file: string): Promise<SlideFacts> {
  try {
    return await readSlideFacts(file);
  } catch (error) {
    throw new Refusal('quarantined', `cannot be read as a slide: ${stripPath((error as Error).message, file)}`);
  }
}

interface CheckedAnnotation {
  xml: string;
  removed: string[];
  summary: AnnotationSummary;
}

/** ImageScope files of real slides are at most a few MB; parsing costs about 15× the file size in memory. */
const MAX_ANNOTATION_BYTES = 64 * 1024 * 1024;

async function checkAnnotation(file: string, slide: SlideFacts, textPatterns: RegExp[]): Promise<CheckedAnnotation> {
  const size = (await stat(file)).size;
  if (size > MAX_ANNOTATION_BYTES) {
    throw new Refusal('quarantined', `annotation XML is ${(size / 1e6).toFixed(0)} MB; at most ${MAX_ANNOTATION_BYTES / 1024 / 1024} MiB is taken in`);
  }
  let doc;
  try {
    doc = parseAperioXml(await readFile(file, 'utf8'));
  } catch (error) {
    if (error instanceof AnnotationError) throw new Refusal('quarantined', `annotation XML: ${error.message}`);
    throw error;
  }
  const outside = checkBounds(doc, slide.width, slide.height);
  if (outside.length > 0) {
    const more = outside.length > 3 ? ` (and ${outside.length - 3} more regions)` : '';
    throw new Refusal(
      'quarantined',
      `annotation XML does not fit the ${slide.width}×${slide.height} slide: ${outside
        .slice(0, 3)
        .map((p) => p.message)
        .join('; ')}${more}`,
    );
  }
  const scrubbed = scrubAnnotations(doc, { textPatterns });
  return { xml: serializeAperioXml(scrubbed.doc), removed: scrubbed.removed, summary: summarizeAnnotations(scrubbed.doc, slide.mppX) };
}

async function freshName(metadata: SlideMetadata, vocabulary: Vocabulary, repository: IngestRepository): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    let name: string;
    try {
      name = formatSlideName(metadata, vocabulary);
    } catch (error) {
      throw new Refusal('refused', `cannot be named: ${(error as Error).message}`);
    }
    if (!(await repository.nameTaken(name))) return name;
  }
  throw new Error('five random names in a row were taken; the random source is broken');
}

function writeFailure(error: unknown, what: string): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new Refusal('failed', `the disk is full (${code}) while ${what}; nothing was published and the original is untouched; free space and ingest again`);
  }
  if (code === 'EACCES' || code === 'EROFS') {
    return new Refusal('failed', `cannot write to the slide store (${code}) while ${what}; nothing was published`);
  }
  return new Refusal('quarantined', `${what} failed: ${(error as Error).message}`);
}

/** Error messages from the reader name the file; the curator knows which file, and the record must not keep its name. */
function stripPath(message: string, file: string): string {
  return message.split(`${file}: `).join('').split(file).join('the file');
}

async function quarantine(candidate: Candidate, reason: string, report: IngestReport, settings: IngestSettings): Promise<string> {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  const folder = path.join(settings.paths.quarantine, `${stamp}-${randomBytes(3).toString('hex')}`);
  await mkdir(folder, { recursive: true });
  const place = settings.takeOriginals ? moveFile : copyFileAtomic;
  await place(candidate.file, path.join(folder, candidate.fileName));
  if (candidate.xml) await place(candidate.xml, path.join(folder, path.basename(candidate.xml)));
  await writeFileAtomic(path.join(folder, 'reason.txt'), `${reason}\n`);
  await writeFileAtomic(path.join(folder, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  return folder;
}

/** Originals are never served: kept under their content hash in paths.originals, or (inbox) removed. */
async function keepOriginal(candidate: Candidate, sha256: string, settings: IngestSettings): Promise<void> {
  const extension = path.extname(candidate.fileName).toLowerCase();
  if (settings.keepOriginals) {
    await mkdir(settings.paths.originals, { recursive: true });
    const place = settings.takeOriginals ? moveFile : copyFileAtomic;
    await place(candidate.file, path.join(settings.paths.originals, `${sha256}${extension}`));
    if (candidate.xml) await place(candidate.xml, path.join(settings.paths.originals, `${sha256}.xml`));
  } else if (settings.takeOriginals) {
    await rm(candidate.file, { force: true });
    if (candidate.xml) await rm(candidate.xml, { force: true });
  }
}
