/**
 * The checks a slide passes before anything is written: its metadata, that it
 * reads as a slide, that its annotation parses and fits it, and a free name.
 * Each refuses with a Refusal that says why.
 */
import { readFile, stat } from 'node:fs/promises';
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
import type { IngestRepository } from './ingest.repository.js';
import type { SheetRow } from './metadata-sheet.js';
import { formatSlideName } from './nomenclature.js';
import { Refusal } from './refusal.js';
import type { SlideMetadata, Vocabulary } from './types.js';

/** The slide's metadata (its sheet row, else the folder's fallback), refused when pathology_info looks identifying. */
export function checkMetadata(row: SheetRow | undefined, fallback: SlideMetadata | undefined, textPatterns: readonly RegExp[]): SlideMetadata {
  const metadata = metadataFor(row, fallback);
  const info = metadata.pathologyInfo;
  if (info && textPatterns.some((pattern) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(info))) {
    throw new Refusal('refused', 'pathology_info looks like it holds an identifier (it matches one of ingest.scrubTextPatterns); reword it');
  }
  return metadata;
}

function metadataFor(row: SheetRow | undefined, fallback: SlideMetadata | undefined): SlideMetadata {
  if (row) {
    if (row.metadata) return row.metadata;
    throw new Refusal('refused', `metadata.csv line ${row.line}: ${row.problems.join('; ')}`, { metadataProblems: row.problems });
  }
  if (fallback) return fallback;
  throw new Refusal('refused', 'no metadata: add a row for it to metadata.csv (or give --organ, --histology and --stain for the whole folder)');
}

/** The slide's size, levels and resolution; a file that does not read as a slide is quarantined. */
export async function readableSlide(file: string): Promise<SlideFacts> {
  try {
    return await readSlideFacts(file);
  } catch (error) {
    throw new Refusal('quarantined', `cannot be read as a slide: ${stripPath((error as Error).message, file)}`);
  }
}

/** Error messages from the reader name the file; the curator knows which file, and the record must not keep its name. */
export function stripPath(message: string, file: string): string {
  return message.split(`${file}: `).join('').split(file).join('the file');
}

export interface CheckedAnnotation {
  xml: string;
  removed: string[];
  summary: AnnotationSummary;
}

/** ImageScope files of real slides are at most a few MB; parsing costs about 15× the file size in memory. */
const MAX_ANNOTATION_BYTES = 64 * 1024 * 1024;

/** The annotation parsed, checked against the slide's size and scrubbed; anything wrong quarantines the slide. */
export async function checkAnnotation(file: string, slide: SlideFacts, textPatterns: RegExp[]): Promise<CheckedAnnotation> {
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

/** A name of the nomenclature that no slide has yet. */
export async function freshName(metadata: SlideMetadata, vocabulary: Vocabulary, repository: IngestRepository): Promise<string> {
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
