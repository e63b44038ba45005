/**
 * De-identification of an annotation file at ingest.
 *
 * Three rules, applied to a copy (the input is never changed):
 * 1. MarkupImagePath (a layer's) and ImageLocation (a region's) are always
 *    blanked: they name files on the scanning workstation.
 * 2. Any value anywhere that contains a file path — a Windows drive path
 *    (C:\…), a UNC path (\\server\…), an absolute POSIX path with at least two
 *    segments (/home/…/…) or a file: URL — is blanked whole.
 * 3. Free text that people type — layer Name and MacroName, region Text,
 *    <Attribute> Name and Value, <AttributeHeader> Name, the text of elements
 *    this module does not interpret — is filtered through the configured
 *    patterns (ingest.scrubTextPatterns): each match becomes "[removed]".
 * Ids, types, colours and vertices are never touched.
 *
 * `removed` says what was removed and where, never the removed value, so
 * that it can go into the ingest report.
 */
import { layerWhere, regionWhere, type AperioAnnotations, type XmlElement } from './model.js';

export const REMOVED_MARKER = '[removed]';

export interface ScrubOptions {
  /** Matches in free text are replaced by REMOVED_MARKER; a pattern without the g flag is used as if it had it. */
  textPatterns: readonly RegExp[];
}

export interface ScrubResult {
  doc: AperioAnnotations;
  /** One line per removal: the kind and the place, e.g. "MarkupImagePath of annotation 1 (Id 1): blanked". */
  removed: string[];
}

const PATH_PATTERNS: readonly RegExp[] = [
  /(?:^|[^A-Za-z0-9])[A-Za-z]:[\\/]/, // C:\… or C:/… (but not the "p:/" of http://)
  /\\\\[^\\\s]+\\/, // \\server\share
  /(?:^|[\s"'=(,;])\/(?:[^\s/]+\/)+[^\s/]*/, // /two/or/more segments
  /\bfile:\/\//i,
];

/** Whether `value` contains something that looks like a file path. */
export function looksLikePath(value: string): boolean {
  return PATH_PATTERNS.some((pattern) => pattern.test(value));
}

/** The configured pattern sources (already validated by the configuration schema) as global RegExps. */
export function compileTextPatterns(sources: readonly string[]): RegExp[] {
  return sources.map((source) => new RegExp(source, 'g'));
}

function globalPattern(pattern: RegExp): RegExp {
  return pattern.flags.includes('g') ? new RegExp(pattern.source, pattern.flags) : new RegExp(pattern.source, `${pattern.flags}g`);
}

class Scrubber {
  readonly removed: string[] = [];
  private readonly patterns: RegExp[];

  constructor(patterns: readonly RegExp[]) {
    this.patterns = patterns.map(globalPattern);
  }

  /** The scrubbed form of one value; `what` names it ("Text of region 2 (Id 5) of annotation 1 (Id 1)"). */
  value(value: string, what: string, kind: 'blank' | 'free-text' | 'other'): string {
    if (value === '') return value;
    if (kind === 'blank') {
      this.removed.push(`${what}: blanked`);
      return '';
    }
    if (looksLikePath(value)) {
      this.removed.push(`${what}: file path, blanked`);
      return '';
    }
    if (kind !== 'free-text') return value;
    let out = value;
    for (const pattern of this.patterns) {
      let count = 0;
      out = out.replace(pattern, (match) => {
        if (match === '') return match;
        count++;
        return REMOVED_MARKER;
      });
      if (count > 0) this.removed.push(`${what}: ${count} ${count === 1 ? 'match' : 'matches'} of ${pattern} replaced`);
    }
    return out;
  }

  /** Every value of an attribute record, in place; `rules` gives the kind of named attributes (others: 'other'). */
  record(attributes: Record<string, string>, where: string, rules: Record<string, 'blank' | 'free-text'> = {}): void {
    for (const [key, value] of Object.entries(attributes)) attributes[key] = this.value(value, `${key} of ${where}`, rules[key] ?? 'other');
  }

  /** An element kept as-is: its attributes and (free) text, and its children's. */
  element(element: XmlElement, where: string): void {
    const here = `<${element.name}> of ${where}`;
    this.record(element.attributes, here);
    element.text = this.value(element.text, `text of ${here}`, 'free-text');
    for (const child of element.children) this.element(child, where);
  }
}

/** A de-identified copy of `doc` and what was removed from it. */
export function scrubAnnotations(doc: AperioAnnotations, options: ScrubOptions): ScrubResult {
  const copy = structuredClone(doc);
  const scrub = new Scrubber(options.textPatterns);
  scrub.record(copy.extra, '<Annotations>');
  for (const child of copy.children) scrub.element(child, '<Annotations>');
  copy.layers.forEach((layer, li) => {
    const where = layerWhere(li, layer.id);
    layer.name = scrub.value(layer.name, `Name of ${where}`, 'free-text');
    scrub.record(layer.extra, where, { MarkupImagePath: 'blank', MacroName: 'free-text' });
    layer.attributes.forEach((attribute, ai) => {
      const at = `attribute ${ai + 1} of ${where}`;
      attribute.name = scrub.value(attribute.name, `Name of ${at}`, 'free-text');
      attribute.value = scrub.value(attribute.value, `Value of ${at}`, 'free-text');
      scrub.record(attribute.extra, at);
    });
    layer.headers.forEach((header, hi) => scrub.record(header, `attribute header ${hi + 1} of ${where}`, { Name: 'free-text' }));
    for (const child of [...layer.children, ...layer.plots]) scrub.element(child, where);
    layer.regions.forEach((region, ri) => {
      const at = regionWhere(li, layer.id, ri, region.id);
      region.text = scrub.value(region.text, `Text of ${at}`, 'free-text');
      scrub.record(region.extra, at, { ImageLocation: 'blank' });
      region.attributes.forEach((attribute, ai) => {
        const of = `attribute ${ai + 1} of ${at}`;
        attribute.name = scrub.value(attribute.name, `Name of ${of}`, 'free-text');
        attribute.value = scrub.value(attribute.value, `Value of ${of}`, 'free-text');
        scrub.record(attribute.extra, of);
      });
      for (const child of region.children) scrub.element(child, at);
    });
  });
  return { doc: copy, removed: scrub.removed };
}
