/**
 * The header values that describe a downloadable file or archive: its name,
 * its checksums and how it may be cached. Pure functions.
 */

/** Downloads are for one person: never stored by shared caches, never re-encoded on the way. */
export const DOWNLOAD_CACHE_CONTROL = 'private, no-transform';

/**
 * The checksum headers of a file: `Repr-Digest` (RFC 9530, structured field
 * byte sequence), the older `Digest` (RFC 3230) and a plain hex
 * `X-Checksum-SHA256` for scripts. All describe the whole file, also on a 206.
 */
export function digestHeaders(sha256: string): Record<string, string> {
  const base64 = Buffer.from(sha256, 'hex').toString('base64');
  return {
    'Repr-Digest': `sha-256=:${base64}:`,
    Digest: `SHA-256=${base64}`,
    'X-Checksum-SHA256': sha256,
  };
}

/**
 * `Content-Disposition: attachment` with the file name quoted (RFC 6266);
 * names outside printable ASCII also get an RFC 8187 `filename*`, with an
 * ASCII stand-in in `filename`. Nomenclature names are plain ASCII already.
 */
export function attachment(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  if (ascii === filename) return `attachment; filename="${ascii}"`;
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}
