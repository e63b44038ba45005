/**
 * The response headers that describe a downloadable file: validators,
 * checksums and the name to save it under. Pure functions.
 */

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A catalog checksum as lower-case hex, or null when it is missing or not a SHA-256. */
export function normalizeSha256(value: string | null | undefined): string | null {
  if (!value) return null;
  const lower = value.trim().toLowerCase();
  return SHA256_HEX.test(lower) ? lower : null;
}

/** The strong ETag of a file with this SHA-256: it changes exactly when the bytes do. */
export function etagFor(sha256: string): string {
  return `"sha256-${sha256}"`;
}

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

/** Downloads are for one person: never stored by shared caches, never re-encoded on the way. */
export const DOWNLOAD_CACHE_CONTROL = 'private, no-transform';
