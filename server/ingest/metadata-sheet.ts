import { readFile } from 'node:fs/promises';
import { parse } from 'csv-parse/sync';
import type { RequirableField, SlideMetadata, Vocabulary } from './types.js';
import { lookup, type VocabularyField } from '../catalog/vocabulary.js';

/**
 * The ingest metadata sheet (`metadata.csv`): one row per slide with its
 * diagnostic facts in the curator's words, resolved to vocabulary codes, and
 * the eligibility rules applied to it. Collection date and consent are checked
 * here and never published.
 *
 * A sheet that cannot be read as a whole throws; a row's problems stay with
 * that row so that the rest of the batch carries on.
 */

/** The columns a sheet may have, in the order the checks report them. Only `file` is required. */
export const SHEET_COLUMNS = [
  'file',
  'organ',
  'histology',
  'stain',
  'marker',
  'differentiation',
  'pathology_info',
  'annotation_method',
  'dataset',
  'collection_date',
  'consent',
] as const;
type Column = (typeof SHEET_COLUMNS)[number];

export const PATHOLOGY_INFO_MAX_CHARS = 2000;
export const DATASET_MAX_CHARS = 100;

export interface EligibilityRules {
  /** `YYYY-MM` from which a specimen needs recorded consent (config `ingest.consentRequiredFrom`); '' turns the rule off. */
  consentRequiredFrom: string;
  /** Today, for refusing collection dates in the future; the clock when absent. */
  now?: Date;
}

export interface CollectionDate {
  year: number;
  month?: number;
}

export interface SheetRow {
  /** The line of the sheet the row starts on (the header is usually line 1). */
  line: number;
  /** The `file` cell as written. */
  file: string;
  /** Present exactly when `problems` is empty: the row is eligible. */
  metadata?: SlideMetadata;
  /** Why the slide is refused, each naming the value or the rule. */
  problems: string[];
  collected: CollectionDate | null;
  /** Recorded donation consent; null when the sheet does not say. */
  consent: boolean | null;
}

/** A problem that belongs to no single slide's row: a bad header, a row without a file, a repeated file. */
export interface SheetProblem {
  line: number;
  column: string | null;
  message: string;
}

export interface MetadataSheet {
  /** By `sheetKey(file)`. */
  rows: Map<string, SheetRow>;
  problems: SheetProblem[];
}

/** The key under which a slide's row is found: its base name without folders and slide extension, in lower case. */
export function sheetKey(fileName: string): string {
  const base = fileName.trim().split(/[/\\]/).pop() ?? '';
  return base.replace(/\.(svs|tiff?|ndpi|dcm|dicom)$/i, '').toLowerCase();
}

/**
 * Read `metadata.csv`: UTF-8 with or without BOM, comma or semicolon
 * separated, a header row naming the columns (any case, spaces for
 * underscores). Throws an Error naming the file and the reason when the sheet
 * as a whole cannot be used.
 */
export async function readMetadataSheet(file: string, vocabulary: Vocabulary, rules: EligibilityRules): Promise<MetadataSheet> {
  if (!/^(\d{4}-(0[1-9]|1[0-2]))?$/.test(rules.consentRequiredFrom)) {
    throw new Error(`consentRequiredFrom must be a month as YYYY-MM or empty, got ${JSON.stringify(rules.consentRequiredFrom)}`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw new Error(`metadata sheet ${file}: ${reason}`, { cause: error });
  }
  const fail = (reason: string, cause?: unknown) => new Error(`metadata sheet ${file} ${reason}`, { cause });
  const records = parseCsv(decode(bytes, fail), fail);
  const header = records[0];
  if (header === undefined) throw fail('is empty; it needs a header row naming at least the file column');
  return readRows(header, records.slice(1), vocabulary, rules, fail);
}

interface CsvRecord {
  line: number;
  cells: string[];
}

function decode(bytes: Buffer, fail: (reason: string) => Error): string {
  const saveAs = 'save it from the spreadsheet as "CSV UTF-8"';
  if (bytes.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) throw fail(`is an Excel workbook or other ZIP file, not CSV; ${saveAs}`);
  if (bytes.subarray(0, 4).equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0]))) throw fail(`is an old Excel workbook, not CSV; ${saveAs}`);
  if (bytes[0] === 0xff && bytes[1] === 0xfe) throw fail(`is UTF-16 text, not UTF-8; ${saveAs}`);
  if (bytes[0] === 0xfe && bytes[1] === 0xff) throw fail(`is UTF-16 text, not UTF-8; ${saveAs}`);
  if (bytes.includes(0)) throw fail('is a binary file, not CSV');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail(`is not UTF-8 text (perhaps Windows-1252); ${saveAs}`);
  }
}

/** Records with the line each starts on; blank lines are skipped, line ends normalised. */
function parseCsv(text: string, fail: (reason: string, cause?: unknown) => Error): CsvRecord[] {
  const normalised = text.replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
  const firstLine = normalised.split('\n').find((line) => line.trim() !== '') ?? '';
  let output: Array<{ record: string[]; raw: string; info: { lines: number } }>;
  try {
    // The typings do not model `info` and `raw`, which wrap each record.
    output = parse(normalised, {
      delimiter: detectDelimiter(firstLine),
      relax_column_count: true,
      skip_empty_lines: true,
      info: true,
      raw: true,
    }) as unknown as typeof output;
  } catch (error) {
    throw fail(`is not a readable CSV: ${(error as Error).message}`, error);
  }
  return output
    .map(({ record, raw, info }) => {
      // `info.lines` is the record's last line; its raw text may also hold the blank lines skipped before it.
      const own = raw.replace(/^\n+/, '').replace(/\n$/, '');
      return { line: info.lines - (own.match(/\n/g)?.length ?? 0), cells: record.map((cell) => cell.trim()) };
    })
    .filter((record) => record.cells.some((cell) => cell !== ''));
}

/** Semicolons when the header has more of them than commas (spreadsheets in many locales), else commas. */
function detectDelimiter(headerLine: string): ',' | ';' {
  const unquoted = headerLine.replace(/"[^"]*"/g, '');
  const count = (c: string) => unquoted.split(c).length - 1;
  return count(';') > count(',') ? ';' : ',';
}

function readRows(
  header: CsvRecord,
  records: CsvRecord[],
  vocabulary: Vocabulary,
  rules: EligibilityRules,
  fail: (reason: string) => Error,
): MetadataSheet {
  const problems: SheetProblem[] = [];
  const known = new Set<string>(SHEET_COLUMNS);
  const columnAt = new Map<number, Column>();
  /** Cells under these headers are not read: a value there would be lost, so its row is refused. */
  const ignored = new Map<number, string>();
  header.cells.forEach((cell, index) => {
    const name = cell.toLowerCase().replace(/\s+/g, '_');
    const first = [...columnAt].find(([, column]) => column === name);
    if (cell === '') {
      ignored.set(index, `column ${index + 1} has no header`);
    } else if (!known.has(name)) {
      const hint = closest(name);
      problems.push({
        line: header.line,
        column: cell,
        message: `unknown column ${JSON.stringify(cell)}${hint ? ` (did you mean ${hint}?)` : ''}; the columns are ${SHEET_COLUMNS.join(', ')}`,
      });
      ignored.set(index, `column ${JSON.stringify(cell)} is unknown`);
    } else if (first !== undefined) {
      problems.push({ line: header.line, column: cell, message: `column ${name} appears twice (columns ${first[0] + 1} and ${index + 1})` });
      ignored.set(index, `column ${name} appears twice and column ${index + 1} is not read`);
    } else {
      columnAt.set(index, name as Column);
    }
  });
  if (![...columnAt.values()].includes('file')) {
    throw fail(`has no "file" column; its header reads ${JSON.stringify(header.cells.join(', '))}`);
  }

  const rows = new Map<string, SheetRow>();
  for (const { line, cells } of records) {
    const values = new Map<Column, string>();
    const lost: string[] = [];
    cells.forEach((cell, index) => {
      const column = columnAt.get(index);
      if (column !== undefined) values.set(column, cell);
      else if (cell !== '') lost.push(`${ignored.get(index) ?? `field ${index + 1} is beyond the header`}; its value ${quote(cell)} would be lost`);
    });
    const file = values.get('file') ?? '';
    const key = sheetKey(file);
    if (key === '') {
      problems.push({ line, column: 'file', message: file === '' ? 'file is empty; every row must name its slide' : `file ${quote(file)} names no slide` });
      continue;
    }
    const earlier = rows.get(key);
    if (earlier !== undefined) {
      problems.push({ line, column: 'file', message: `${quote(file)} is already listed on line ${earlier.line}; a slide must have one row` });
      earlier.problems.push(`the slide is listed again on line ${line}; a slide must have one row`);
      delete earlier.metadata;
      continue;
    }
    rows.set(key, checkRow(line, file, values, lost, vocabulary, rules));
  }
  return { rows, problems };
}

const REQUIRED_COLUMN: Record<RequirableField, Column> = {
  differentiation: 'differentiation',
  pathologyInfo: 'pathology_info',
  annotationMethod: 'annotation_method',
  marker: 'marker',
};

/** Resolve a row through the vocabulary and apply the eligibility rules. */
function checkRow(
  line: number,
  file: string,
  values: Map<Column, string>,
  lost: string[],
  vocabulary: Vocabulary,
  rules: EligibilityRules,
): SheetRow {
  const problems = [...lost];
  const value = (column: Column) => values.get(column) ?? '';
  const resolve = (field: VocabularyField, column: Column, organ?: string): string | null => {
    if (value(column) === '') return null;
    const found = lookup(vocabulary, field, value(column), organ);
    if (found.code === null) problems.push(found.reason);
    return found.code;
  };

  for (const column of ['organ', 'histology', 'stain'] as const) {
    if (value(column) === '') problems.push(`${column} is empty; every slide needs organ, histology and stain`);
  }
  const organCode = resolve('organ', 'organ');
  const organ = vocabulary.organs.find((o) => o.code === organCode);
  const histology = organ ? resolve('histology', 'histology', organ.code) : null;
  const stainCode = resolve('stain', 'stain');
  const stain = vocabulary.stains.find((s) => s.code === stainCode);
  let marker: string | null = null;
  if (stain?.requiresMarker === false && value('marker') !== '') {
    problems.push(`rule: stain ${stain.code} takes no marker; got ${quote(value('marker'))}`);
  } else {
    if (stain?.requiresMarker && value('marker') === '') problems.push(`rule: stain ${stain.code} requires a marker`);
    marker = resolve('marker', 'marker');
  }
  const differentiation = resolve('differentiation', 'differentiation');
  const annotationMethod = resolve('annotationMethod', 'annotation_method');
  const pathologyInfo = freeText('pathology_info', value('pathology_info'), PATHOLOGY_INFO_MAX_CHARS, problems);
  const dataset = freeText('dataset', value('dataset'), DATASET_MAX_CHARS, problems);
  for (const field of organ?.requiredFields ?? []) {
    const column = REQUIRED_COLUMN[field];
    if (value(column) === '') problems.push(`rule: organ ${organ!.code} requires ${column}`);
  }

  const collected = collectionDate(value('collection_date'), rules.now ?? new Date(), problems);
  const consent = consentOf(value('consent'), problems);
  // An unreadable date or consent is already a problem; the rule is applied once both read.
  if (rules.consentRequiredFrom !== '' && collected !== undefined && consent !== undefined && consent !== true) {
    const reason = consentMissing(rules.consentRequiredFrom, collected, consent);
    if (reason !== null) problems.push(reason);
  }

  const row: SheetRow = { line, file, problems, collected: collected ?? null, consent: consent ?? null };
  if (problems.length === 0 && organ && histology !== null && stain) {
    row.metadata = { organ: organ.code, histology, stain: stain.code, marker, differentiation, pathologyInfo, annotationMethod, dataset };
  }
  return row;
}

function freeText(column: Column, text: string, max: number, problems: string[]): string | null {
  if (text.length > max) problems.push(`${column} is ${text.length} characters long; at most ${max} are allowed`);
  return text === '' ? null : text;
}

/** The collection date, null when not recorded, undefined (with a problem) when unusable. */
function collectionDate(text: string, now: Date, problems: string[]): CollectionDate | null | undefined {
  if (text === '') return null;
  const match = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(text);
  const [year, month, day] = (match?.slice(1) ?? []).map((part) => (part === undefined ? undefined : Number(part)));
  const real =
    year !== undefined &&
    year >= 1900 &&
    (month === undefined || (month >= 1 && month <= 12)) &&
    (day === undefined || new Date(Date.UTC(year, month! - 1, day)).getUTCDate() === day);
  if (!real) {
    problems.push(`collection_date ${quote(text)} is not a date; write YYYY, YYYY-MM or YYYY-MM-DD`);
    return undefined;
  }
  const today = [now.getFullYear(), now.getMonth() + 1, now.getDate()];
  const given = [year, month, day].filter((part) => part !== undefined);
  if (compare(given, today.slice(0, given.length)) > 0) {
    problems.push(`collection_date ${quote(text)} is in the future`);
    return undefined;
  }
  return month === undefined ? { year } : { year, month };
}

/** Recorded consent, null when not recorded, undefined (with a problem) when unreadable. */
function consentOf(text: string, problems: string[]): boolean | null | undefined {
  const folded = text.toLowerCase();
  if (folded === '') return null;
  if (['yes', 'true', '1'].includes(folded)) return true;
  if (['no', 'false', '0'].includes(folded)) return false;
  problems.push(`consent ${quote(text)} must be yes, no, true, false, 1 or 0 (empty when unknown)`);
  return undefined;
}

/**
 * The consent rule: a specimen collected in or after the configured month
 * needs recorded consent. A specimen whose collection date (or month, in the
 * rule's first year) is not recorded may fall under the rule, so it needs
 * consent too.
 */
function consentMissing(from: string, collected: CollectionDate | null, consent: boolean | null): string | null {
  const [fromYear, fromMonth] = from.split('-').map(Number) as [number, number];
  let when: string;
  if (collected === null) when = 'collection date not recorded';
  else if (collected.month === undefined) {
    if (collected.year < fromYear) return null;
    when = collected.year === fromYear && fromMonth > 1 ? `collected ${collected.year} (month not recorded)` : `collected ${collected.year}`;
  } else {
    if (compare([collected.year, collected.month], [fromYear, fromMonth]) < 0) return null;
    when = `collected ${collected.year}-${String(collected.month).padStart(2, '0')}`;
  }
  const recorded = consent === false ? 'consent recorded as no' : 'consent not recorded';
  return `rule: consent required for specimens collected from ${from}; ${when}, ${recorded}`;
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

/** A known column within two edits of an unknown header, for "did you mean". */
function closest(name: string): string | undefined {
  return SHEET_COLUMNS.find((column) => editDistance(name, column) <= 2);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

function quote(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** Check one set of values as if they were a sheet row (for metadata given on the command line). */
export function checkMetadataValues(
  values: Partial<Record<Column, string | undefined>>,
  vocabulary: Vocabulary,
  rules: EligibilityRules,
): SheetRow {
  const cells = new Map<Column, string>();
  for (const [column, value] of Object.entries(values)) if (value !== undefined) cells.set(column as Column, value.trim());
  return checkRow(0, values.file ?? '', cells, [], vocabulary, rules);
}
