import { BagError } from './errors.js';

/**
 * Tag files in the `Label: value` form of RFC 8493 §2.2.2 (bagit.txt,
 * bag-info.txt): one element per line, a value may continue on following
 * lines that start with white space, and a label may repeat.
 */
export type TagEntries = [label: string, value: string][];

export const BAGIT_TXT = 'BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n';

export function formatTagFile(entries: TagEntries): string {
  return entries
    .map(([label, value]) => {
      if (/[:\r\n]/.test(label) || label.trim() !== label || label === '') throw new Error(`tag label ${JSON.stringify(label)} is not allowed`);
      // Continuation lines start with white space; a value never holds a bare line break.
      return `${label}: ${value.replace(/\r?\n/g, '\n  ')}\n`;
    })
    .join('');
}

export function parseTagFile(text: string, file: string): TagEntries {
  if (text.startsWith('\uFEFF')) throw new BagError('bad_tag_file', `${file} starts with a byte order mark, which RFC 8493 forbids`, file);
  const entries: TagEntries = [];
  const lines = text.split(/\r\n|\r|\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  for (const [index, line] of lines.entries()) {
    if (/^[ \t]/.test(line)) {
      const last = entries[entries.length - 1];
      if (!last) throw new BagError('bad_tag_file', `${file} line ${index + 1} continues a value but no label precedes it`, file);
      last[1] += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new BagError('bad_tag_file', `${file} line ${index + 1} is not "Label: value"`, file);
    entries.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return entries;
}

/** The first value of a label, compared without regard to case (bag-info readers differ in case). */
export function tagValue(entries: TagEntries, label: string): string | undefined {
  const wanted = label.toLowerCase();
  return entries.find(([l]) => l.toLowerCase() === wanted)?.[1];
}

/** RFC 8493 §2.1.1: exactly these two elements, no BOM. */
export function checkDeclaration(text: string): void {
  const entries = parseTagFile(text, 'bagit.txt');
  const version = tagValue(entries, 'BagIt-Version');
  const encoding = tagValue(entries, 'Tag-File-Character-Encoding');
  if (entries.length !== 2 || version === undefined || encoding === undefined) {
    throw new BagError('bad_declaration', 'bagit.txt must hold exactly BagIt-Version and Tag-File-Character-Encoding', 'bagit.txt');
  }
  if (!/^1\.\d+$/.test(version) && version !== '0.97') throw new BagError('bad_declaration', `bagit.txt: BagIt-Version ${version} is not supported (1.0 is)`, 'bagit.txt');
  if (encoding.toUpperCase() !== 'UTF-8') throw new BagError('bad_declaration', `bagit.txt: tag files in ${encoding} are not supported (UTF-8 is)`, 'bagit.txt');
}

/** `Payload-Oxum: <octets>.<streams>` */
export function parseOxum(value: string): { bytes: number; files: number } {
  const match = /^(\d+)\.(\d+)$/.exec(value.trim());
  if (!match) throw new BagError('bad_tag_file', `bag-info.txt: Payload-Oxum "${value}" is not <bytes>.<files>`, 'bag-info.txt');
  return { bytes: Number(match[1]), files: Number(match[2]) };
}
