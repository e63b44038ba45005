import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * The optional link from a published name back to the original file name,
 * sealed with AES-256-GCM under the operator's key (config ingest.linkageKey)
 * so that the database alone does not re-identify a slide.
 */
export function sealOriginalName(name: string, keyHex: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), iv);
  const sealed = Buffer.concat([cipher.update(name, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64');
}

export function openOriginalName(sealed: string, keyHex: string): string {
  const bytes = Buffer.from(sealed, 'base64');
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), bytes.subarray(0, 12));
  decipher.setAuthTag(bytes.subarray(12, 28));
  return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
}
