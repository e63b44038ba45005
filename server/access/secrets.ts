import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random secret for links, sessions and CSRF: 32 bytes (256 bits) as base64url. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** How secrets are stored: SHA-256 in hex. A fast hash suffices for 256-bit random secrets (nothing to guess). */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Constant-time comparison of two strings. */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
