import { randomBytes } from 'node:crypto';
import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generateSigningKey, keyFingerprint, signingKeyFromPem, type SigningKey } from '../bagit/index.js';

/** The site's Ed25519 private key, PKCS#8 PEM, readable by the service user only. */
export const SITE_KEY_FILE = 'site-ed25519.pem';

/**
 * The key this site signs its export bags with: read from
 * `<paths.data>/site-ed25519.pem`, or created there (mode 0600) on first use.
 * The key is written whole under a temporary name and hard-linked into place,
 * which fails if the file exists: two processes starting together keep one key,
 * and none ever reads a half-written one.
 */
export function ensureSiteKey(dataDir: string): SigningKey & { created: boolean; file: string } {
  const file = path.join(dataDir, SITE_KEY_FILE);
  let created = false;
  if (!existsSync(file)) {
    const partial = `${file}.${randomBytes(6).toString('hex')}.partial`;
    try {
      writeFileSync(partial, generateSigningKey().privatePem, { mode: 0o600, flag: 'wx' });
      linkSync(partial, file);
      created = true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      rmSync(partial, { force: true });
    }
  }
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read the site key ${file}: ${(error as Error).message}`, { cause: error });
  }
  try {
    return { ...signingKeyFromPem(pem), created, file };
  } catch (error) {
    throw new Error(`${file} is not an Ed25519 private key (${(error as Error).message}); move it away to have a new one made, and tell partners the new public key`, { cause: error });
  }
}

/** What `GET /api/site` tells partners. */
export interface SiteIdentity {
  name: string;
  publicUrl: string;
  /** Base64 of the raw 32-byte Ed25519 public key: what a partner puts into mirror.trustedKeys. */
  publicKey: string;
  fingerprint: string;
}

export function siteIdentity(site: { name: string; publicUrl: string }, key: { publicKey: string }): SiteIdentity {
  return { name: site.name, publicUrl: site.publicUrl, publicKey: key.publicKey, fingerprint: keyFingerprint(key.publicKey) };
}
