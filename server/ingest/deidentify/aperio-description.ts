/**
 * Rebuild an Aperio ImageDescription from what is known to be safe: the
 * library version and image geometry lines of the header, and the allowed
 * `key = value` pairs. Anything else (free text after a `;`, unknown keys,
 * safe keys with odd values) is dropped and listed.
 */
import { SAFE_APERIO_KEYS, SAFE_VALUE } from './policy.js';

/** Header lines that carry only the library version or the image geometry and compression. */
export const SAFE_HEADER_LINES: readonly RegExp[] = [
  /^Aperio Image Library( v[0-9.]+)?$/,
  /^\d+x\d+( \[\d+,\d+ \d+x\d+\])?( \(\d+x\d+\))?( -> \d+x\d+)?( -)?( [A-Z0-9]+\/[A-Z0-9]+( Q=\d+)?)?$/,
];

export interface SanitizedDescription {
  text: string;
  keptKeys: string[];
  droppedKeys: string[];
  /** Header lines dropped because they matched no safe pattern (their text is not kept). */
  droppedHeaderLines: number;
}

export function sanitizeAperioDescription(description: string): SanitizedDescription {
  const [header = '', ...items] = description.split('|');
  let droppedHeaderLines = 0;
  const parts: string[] = [];
  for (const part of header.split(';')) {
    const lines = part
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line !== '');
    const kept = lines.filter((line) => SAFE_HEADER_LINES.some((pattern) => pattern.test(line)));
    droppedHeaderLines += lines.length - kept.length;
    if (kept.length > 0) parts.push(kept.join('\r\n'));
  }
  // Readers recognise the format by this prefix.
  if (!parts[0]?.startsWith('Aperio')) parts.unshift('Aperio Image Library');

  const keptKeys: string[] = [];
  const droppedKeys: string[] = [];
  const pairs: string[] = [];
  for (const item of items) {
    const eq = item.indexOf(' = ');
    const key = (eq > 0 ? item.slice(0, eq) : item).trim();
    const value = eq > 0 ? item.slice(eq + 3).trim() : '';
    if (eq > 0 && SAFE_APERIO_KEYS.has(key) && SAFE_VALUE.test(value)) {
      pairs.push(`${key} = ${value}`);
      keptKeys.push(key);
    } else {
      droppedKeys.push(key === '' ? '(unnamed)' : key);
    }
  }
  return { text: [parts.join(';'), ...pairs].join('|'), keptKeys, droppedKeys, droppedHeaderLines };
}

/** Why a description would not pass the sanitiser unchanged, or undefined when it is clean. Used to verify the output. */
export function descriptionProblem(description: string): string | undefined {
  const [header = '', ...items] = description.split('|');
  for (const part of header.split(';')) {
    for (const line of part.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')) {
      if (!SAFE_HEADER_LINES.some((pattern) => pattern.test(line))) return `a header line is not a version or geometry line`;
    }
  }
  for (const item of items) {
    const eq = item.indexOf(' = ');
    const key = (eq > 0 ? item.slice(0, eq) : item).trim();
    if (!SAFE_APERIO_KEYS.has(key)) return `key "${key}" is not on the allow-list`;
    if (!SAFE_VALUE.test(item.slice(eq + 3).trim())) return `the value of "${key}" does not look like a setting`;
  }
  return undefined;
}
