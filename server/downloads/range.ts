/**
 * HTTP range requests (RFC 9110 §14) for one file of known size, and the
 * If-Range precondition (§13.1.5). Pure functions: no I/O, no Koa.
 *
 * What Slidebank answers, and why:
 *
 * | request                                   | answer |
 * | ---                                       | ---    |
 * | no Range, or a method other than GET      | 200, the whole file (§14.2: Range is defined for GET only; HEAD answers as a GET without Range would) |
 * | a unit other than `bytes`, or no `unit=`  | 200, the whole file (§14.2: a server MUST ignore a range unit it does not understand) |
 * | one byte range that overlaps the file     | 206 with that range, its end clipped to the file (`bytes=a-b`, `bytes=a-`, `bytes=-n`) |
 * | one byte range that starts past the end, or `bytes=-0`, or any range of an empty file | 416 with `Content-Range: bytes *\/size` |
 * | byte ranges that do not parse: letters, a reversed range (`bytes=5-3`), `bytes=`, a negative or fractional number | 416 (§14.2 lets a server reject an invalid ranges-specifier; a client that sends one is broken, and sending it a whole slide it did not ask for helps nobody) |
 * | two or more valid byte ranges             | 200, the whole file (§14.2: a server MAY ignore Range; no multipart/byteranges, which no slide client needs) |
 * | If-Range that does not match              | 200, the whole file (§13.1.5: the server MUST ignore Range then) |
 */

export type RangeDecision =
  /** Send the whole file with 200. `reason` says why a Range header was not used. */
  | { kind: 'full'; reason: 'absent' | 'method' | 'unit' | 'multiple' | 'if-range' }
  /** Send bytes start..end (both inclusive) with 206. */
  | { kind: 'partial'; start: number; end: number }
  /** Answer 416 with `Content-Range: bytes *\/size`. */
  | { kind: 'unsatisfiable'; reason: 'malformed' | 'beyond-end'; message: string };

/** A range-spec as written, before it is held against the file's size. `Infinity` stands for a number too long to be exact. */
type Spec = { first: number; last: number | null } | { suffix: number };

const DIGITS = /^\d+$/;

/** A byte position: digits only; more than 15 of them (beyond any file) reads as Infinity rather than a rounded number. */
function position(text: string): number {
  const trimmed = text.replace(/^0+(?=\d)/, '');
  return trimmed.length > 15 ? Infinity : Number(trimmed);
}

function parseSpec(text: string): Spec | undefined {
  const dash = text.indexOf('-');
  if (dash < 0) return undefined;
  const first = text.slice(0, dash);
  const last = text.slice(dash + 1);
  if (first === '') return DIGITS.test(last) ? { suffix: position(last) } : undefined;
  if (!DIGITS.test(first)) return undefined;
  if (last === '') return { first: position(first), last: null };
  if (!DIGITS.test(last)) return undefined;
  const spec = { first: position(first), last: position(last) };
  // A reversed int-range is invalid (§14.1.1); two Infinities cannot be compared, and are past any end anyway.
  return spec.last < spec.first && spec.last !== Infinity ? undefined : spec;
}

/**
 * What to send for a `Range` header against a file of `size` bytes.
 * `method` is the request method; only GET uses ranges.
 */
export function parseRange(header: string | undefined, size: number, method = 'GET'): RangeDecision {
  if (header === undefined || header.trim() === '') return { kind: 'full', reason: 'absent' };
  if (method !== 'GET') return { kind: 'full', reason: 'method' };
  const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*=(.*)$/s.exec(header);
  if (!match || match[1]!.toLowerCase() !== 'bytes') return { kind: 'full', reason: 'unit' };

  // 1#range-spec: a comma-separated list in which empty elements are allowed and ignored (§5.6.1).
  const elements = match[2]!.split(',').map((element) => element.trim()).filter((element) => element !== '');
  const malformed = (message: string): RangeDecision => ({ kind: 'unsatisfiable', reason: 'malformed', message });
  if (elements.length === 0) return malformed('The Range header names no byte range (write bytes=0-99, bytes=100- or bytes=-100)');
  const specs: Spec[] = [];
  for (const element of elements) {
    const spec = parseSpec(element);
    if (!spec) return malformed(`"${element}" is not a byte range (write bytes=0-99, bytes=100- or bytes=-100; the first position comes first)`);
    specs.push(spec);
  }
  if (specs.length > 1) return { kind: 'full', reason: 'multiple' };

  const spec = specs[0]!;
  const beyond = (message: string): RangeDecision => ({ kind: 'unsatisfiable', reason: 'beyond-end', message });
  if (size === 0) return beyond('The file is empty: no byte range can be sent');
  if ('suffix' in spec) {
    if (spec.suffix === 0) return beyond('bytes=-0 asks for no bytes');
    return { kind: 'partial', start: Math.max(0, size - Math.min(spec.suffix, size)), end: size - 1 };
  }
  if (spec.first >= size) return beyond(`The file has ${size} bytes; the range starts at byte ${spec.first === Infinity ? 'beyond any file' : spec.first}`);
  return { kind: 'partial', start: spec.first, end: spec.last === null ? size - 1 : Math.min(spec.last, size - 1) };
}

/**
 * Whether an If-Range precondition lets the Range header be used (§13.1.5).
 * An entity tag matches by strong comparison only (a weak tag never does); an
 * HTTP-date matches when it equals the file's Last-Modified to the second. A
 * value that is neither never matches. Absent If-Range: the range is used.
 */
export function ifRangeAllows(ifRange: string | undefined, current: { etag: string | null; lastModified: Date }): boolean {
  if (ifRange === undefined) return true;
  const value = ifRange.trim();
  if (value.startsWith('"') || value.startsWith('W/')) return current.etag !== null && value === current.etag;
  const date = Date.parse(value);
  if (!/^[A-Za-z]{3},/.test(value) || Number.isNaN(date)) return false;
  return Math.floor(date / 1000) === Math.floor(current.lastModified.getTime() / 1000);
}

/** The strong entity tag of a file with this SHA-256, which If-Range compares with: it changes exactly when the bytes do. */
export function etagFor(sha256: string): string {
  return `"sha256-${sha256}"`;
}

/** Bytes `start` to `end` of a file, both inclusive. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Range and If-Range together: what a GET or HEAD of the file should send. */
export function decideRange(
  request: { method: string; range?: string; ifRange?: string },
  size: number,
  current: { etag: string | null; lastModified: Date },
): RangeDecision {
  const decision = parseRange(request.range, size, request.method);
  // If-Range is looked at only when there is a Range to use (§13.1.5: ignore it otherwise).
  if (decision.kind === 'full' || ifRangeAllows(request.ifRange, current)) return decision;
  return { kind: 'full', reason: 'if-range' };
}

/** `Content-Range` of a 206. */
export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** `Content-Range` of a 416. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}
