/**
 * The identifying values found in an original, which must not occur anywhere
 * in the published file: its file name, the values of identifying Aperio
 * fields, of identifying TIFF text tags, and of Hamamatsu's private tags
 * (the scanner's serial number, the reference, and the serial numbers and
 * dates of the NDPI property map).
 */
import path from 'node:path';
import { parseDescription } from '../../wsi/formats/aperio.js';
import type { TiffDirectory } from '../../wsi/tiff/directory.js';
import { IDENTIFYING_TIFF_TAGS, MIN_SCANNED_LENGTH, SAFE_APERIO_KEYS, isIdentifyingAperioKey } from './policy.js';

export interface IdentifyingValue {
  /** Where it was found, e.g. "file name" or "Aperio User"; never the value itself. */
  source: string;
  value: string;
}

export interface IdentifierSet {
  /** Values long enough to search for. */
  scanned: IdentifyingValue[];
  /** Sources whose values were too short to search for without false alarms (they are still removed). */
  tooShort: string[];
}

export function collectIdentifiers(directories: TiffDirectory[], originalFileName: string): IdentifierSet {
  const found: IdentifyingValue[] = [];
  const base = path.basename(originalFileName);
  found.push({ source: 'file name', value: base });
  found.push({ source: 'file name without extension', value: base.replace(/\.[^.]+$/, '') });

  for (const directory of directories) {
    if (directory.description.startsWith('Aperio')) {
      for (const [key, value] of parseDescription(directory.description)) {
        // Unknown keys are dropped too. Their values are searched for when they hold letters (a name,
        // an id); plain numbers under unknown keys are measurements that recur in the kept geometry.
        const unknownText = !SAFE_APERIO_KEYS.has(key) && /[A-Za-z]/.test(value);
        if (isIdentifyingAperioKey(key) || unknownText) found.push({ source: `Aperio ${key}`, value });
      }
    }
    found.push(...ndpiIdentifiers(directory));
    for (const [tag, name] of IDENTIFYING_TIFF_TAGS) {
      const value = directory.tags.get(tag);
      if (typeof value === 'string') found.push({ source: `TIFF ${name}`, value });
    }
  }

  const scanned = new Map<string, IdentifyingValue>();
  const tooShort = new Set<string>();
  for (const item of found) {
    const value = item.value.trim();
    if (value.length >= MIN_SCANNED_LENGTH) {
      if (!scanned.has(value)) scanned.set(value, { source: item.source, value });
    } else if (value.length > 0) {
      tooShort.add(item.source);
    }
  }
  return { scanned: [...scanned.values()], tooShort: [...tooShort] };
}

/** Hamamatsu's text tags that name the scanner or the slide. */
const NDPI_TEXT_TAGS: readonly [number, string][] = [
  [65442, 'NDPI scanner serial number'],
  [65427, 'NDPI reference'],
];
/** Property-map keys whose values identify the scanner, the slide or when it was scanned. */
const NDPI_IDENTIFYING_KEY = /(S\/N|Serial|Date|Created|Updated|Time|Barcode|Reference|User|Operator)/i;

/** The identifying values of an NDPI directory: its serial number and reference tags, and identifying records of its property map (tag 65449). */
function ndpiIdentifiers(directory: TiffDirectory): IdentifyingValue[] {
  const found: IdentifyingValue[] = [];
  for (const [tag, source] of NDPI_TEXT_TAGS) {
    const value = directory.tags.get(tag);
    if (typeof value === 'string') found.push({ source, value });
  }
  const map = directory.tags.get(65449);
  if (typeof map === 'string') {
    // Records are CR LF separated `key=value`; some scanners nest further `;key=value` records in a value.
    for (const record of map.split(/[\r\n;]+/)) {
      const eq = record.indexOf('=');
      if (eq > 0 && NDPI_IDENTIFYING_KEY.test(record.slice(0, eq))) found.push({ source: `NDPI property ${record.slice(0, eq).trim()}`, value: record.slice(eq + 1) });
    }
  }
  return found;
}
