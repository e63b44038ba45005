import { BagError } from './errors.js';

/** One line of a manifest: the checksum and the bag-relative path with `/` separators. */
export interface ManifestEntry {
  path: string;
  sha256: string;
}

/** RFC 8493 §2.1.3: CR, LF and % in a path are percent-encoded, and only those. */
export function encodePath(p: string): string {
  return p.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

export function decodePath(p: string): string {
  return p.replace(/%0D/gi, '\r').replace(/%0A/gi, '\n').replace(/%25/g, '%');
}

/** A bag path must stay inside the bag: relative, `/`-separated, no `.` or `..` segments. */
export function checkSafePath(p: string, file: string): void {
  const segments = p.split('/');
  if (p.startsWith('/') || p.includes('\\') || p.includes('\0') || segments.some((s) => s === '' || s === '.' || s === '..')) {
    throw new BagError('unsafe_path', `${file} names ${JSON.stringify(p)}, which is not a plain path inside the bag`, p);
  }
}

export function formatManifest(entries: readonly ManifestEntry[]): string {
  return [...entries]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((e) => `${e.sha256}  ${encodePath(e.path)}\n`)
    .join('');
}

export function parseManifest(text: string, file: string): ManifestEntry[] {
  const entries: ManifestEntry[] = [];
  const seen = new Set<string>();
  for (const [index, line] of text.split(/\r\n|\n/).entries()) {
    if (line === '') continue;
    const match = /^([0-9a-fA-F]{64})[ \t]+(.+)$/.exec(line);
    if (!match) throw new BagError('bad_manifest', `${file} line ${index + 1} is not "<sha256>  <path>"`, file);
    const p = decodePath(match[2]!.replace(/^\*/, ''));
    checkSafePath(p, file);
    if (seen.has(p)) throw new BagError('bad_manifest', `${file} lists ${p} twice`, file);
    seen.add(p);
    entries.push({ path: p, sha256: match[1]!.toLowerCase() });
  }
  return entries;
}

/** One line of fetch.txt: `url length path` (length `-` when unknown). */
export interface FetchEntry {
  url: string;
  length: number | null;
  path: string;
}

export function formatFetch(entries: readonly FetchEntry[]): string {
  return entries.map((e) => `${e.url} ${e.length ?? '-'} ${encodePath(e.path)}\n`).join('');
}

export function parseFetch(text: string): FetchEntry[] {
  const entries: FetchEntry[] = [];
  for (const [index, line] of text.split(/\r\n|\n/).entries()) {
    if (line === '') continue;
    const match = /^(\S+)[ \t]+(\d+|-)[ \t]+(.+)$/.exec(line);
    if (!match) throw new BagError('bad_tag_file', `fetch.txt line ${index + 1} is not "<url> <length> <path>"`, 'fetch.txt');
    const p = decodePath(match[3]!);
    checkSafePath(p, 'fetch.txt');
    if (!p.startsWith('data/')) throw new BagError('unsafe_path', `fetch.txt names ${p}, outside the payload`, p);
    entries.push({ url: match[1]!, length: match[2] === '-' ? null : Number(match[2]), path: p });
  }
  return entries;
}
