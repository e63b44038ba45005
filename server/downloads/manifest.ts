import { z } from 'zod';
import { csvText } from '../lib/csv.js';
import { timestamp } from '../lib/schema-types.js';

/**
 * The download manifest: every file of a selection with where to get it,
 * its size and its SHA-256. `GET /api/downloads/manifest` serves it (JSON,
 * or TSV with `format=tsv`), and `slidebank fetch` reads it from the server
 * or from a file. This module is shared by both sides: no I/O.
 */

export const MANIFEST_FORMAT = 'slidebank-manifest';
export const MANIFEST_VERSION = 1;

export const FILE_KINDS = ['slide', 'annotation'] as const;
export type FileKind = (typeof FILE_KINDS)[number];

export const manifestFile = z
  .object({
    slideId: z.number().int(),
    slide: z.string().meta({ description: "The slide's nomenclature name" }),
    kind: z.enum(FILE_KINDS),
    path: z.string().meta({ description: 'Where the file goes: its path inside a ZIP bundle and under `slidebank fetch --out`' }),
    href: z.string().meta({ description: 'The download route, relative to the server (`/api/slides/12/files/slide`)' }),
    url: z.string().meta({ description: 'The same as an absolute URL, as the server that wrote the manifest saw itself' }),
    size: z.number().int(),
    sha256: z.string().nullable().meta({ description: 'Lower-case hex; null when the server has no checksum for the file (never for files ingest published)' }),
  })
  .meta({ id: 'ManifestFile' });
export type ManifestFile = z.infer<typeof manifestFile>;

/** What a bundle or a manifest was asked for: the canonical filter expression, or the slide ids. */
export const selectionView = z.union([z.object({ filter: z.string() }), z.object({ slides: z.array(z.number().int()) })]).meta({ id: 'DownloadSelection' });

export const manifestView = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    version: z.literal(MANIFEST_VERSION),
    generatedAt: timestamp,
    selection: selectionView,
    licence: z.string(),
    slides: z.number().int(),
    totalBytes: z.number().int(),
    files: z.array(manifestFile),
  })
  .meta({ id: 'Manifest' });
export type Manifest = z.infer<typeof manifestView>;

export const TSV_COLUMNS = ['url', 'size', 'sha256', 'path', 'slide_id', 'kind', 'slide'] as const;

/** One line per file, tab-separated, with a header line: for wget/aria2c/curl scripts and spreadsheets (so written as every CSV is, see lib/csv.ts). */
export function manifestTsv(manifest: Manifest): string {
  return csvText(
    manifest.files.map((f) => [f.url, f.size, f.sha256 ?? '', f.path, f.slideId, f.kind, f.slide]),
    { columns: TSV_COLUMNS, delimiter: '\t' },
  );
}

/** A file as the fetch client needs it: the TSV form has no `href`, only the absolute `url`. */
export type FetchableFile = Pick<ManifestFile, 'path' | 'size' | 'sha256'> & { href?: string; url?: string; slideId?: number; kind?: FileKind };

const SHA256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
  .transform((hex) => hex.toLowerCase());

const fileSchema = z.object({
  path: z.string().min(1),
  href: z.string().min(1).optional(),
  url: z.string().min(1).optional(),
  size: z.number().int().min(0),
  sha256: SHA256.nullable(),
  slideId: z.number().int().optional(),
  kind: z.enum(FILE_KINDS).optional(),
});

export class ManifestError extends Error {
  override name = 'ManifestError';
}

/**
 * A manifest as the fetch client reads it: the server's JSON (`files`), or
 * its TSV. Problems are reported with the file's place in the manifest.
 */
export function parseManifest(text: string): FetchableFile[] {
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      throw new ManifestError(`the manifest is not valid JSON: ${(error as Error).message}`);
    }
    const files = (json as { files?: unknown }).files;
    if (!Array.isArray(files)) throw new ManifestError('the manifest has no "files" list');
    return files.map((file, index) => {
      const parsed = fileSchema.safeParse(file);
      if (!parsed.success) throw new ManifestError(`file ${index + 1} of the manifest: ${describe(parsed.error)}`);
      if (!parsed.data.href && !parsed.data.url) throw new ManifestError(`file ${index + 1} of the manifest has neither href nor url`);
      return parsed.data;
    });
  }
  const lines = trimmed.split(/\r?\n/).filter((line) => line.trim() !== '');
  const header = lines.shift()?.split('\t') ?? [];
  const column = (name: (typeof TSV_COLUMNS)[number]) => header.indexOf(name);
  for (const name of ['url', 'size', 'sha256', 'path'] as const) {
    if (column(name) < 0) throw new ManifestError(`the manifest is neither JSON nor TSV with the columns ${TSV_COLUMNS.join(', ')} (no "${name}" column)`);
  }
  return lines.map((line, index) => {
    const cells = line.split('\t');
    const cell = (name: (typeof TSV_COLUMNS)[number]) => (column(name) < 0 ? undefined : cells[column(name)]);
    const size = cell('size') ?? '';
    const candidate = {
      url: cell('url'),
      path: cell('path'),
      size: /^\d+$/.test(size) ? Number(size) : NaN,
      sha256: cell('sha256') ? cell('sha256') : null,
      ...(cell('slide_id') && /^\d+$/.test(cell('slide_id')!) ? { slideId: Number(cell('slide_id')) } : {}),
      ...(cell('kind') ? { kind: cell('kind') } : {}),
    };
    const parsed = fileSchema.safeParse(candidate);
    if (!parsed.success) throw new ManifestError(`line ${index + 2} of the manifest: ${describe(parsed.error)}`);
    return parsed.data;
  });
}

function describe(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.join('.') || 'value'} ${issue.message}`).join('; ');
}

/**
 * Whether a manifest path may be written under the output folder: relative,
 * `/`-separated, no `.` or `..` segment, no empty segment, and only
 * characters that mean the same on every file system.
 */
export function isSafeRelativePath(p: string): boolean {
  if (p.length === 0 || p.length > 512 || p.startsWith('/')) return false;
  return p.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..' && /^[A-Za-z0-9._-]+$/.test(segment));
}
