import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { BagError } from './errors.js';
import { parseTagFile, formatTagFile, tagValue } from './tag-file.js';

/**
 * Ed25519 signatures over a bag's tag manifest. The tag manifest pins
 * bagit.txt, bag-info.txt, the payload manifest and fetch.txt, and the
 * payload manifest pins every payload file, so one signature covers the bag.
 *
 * The signature lives in the tag file `tagmanifest-sha256.txt.sig`, which the
 * tag manifest cannot list (it would have to hash itself); RFC 8493 §2.2.4
 * lets a bag carry tag files a tag manifest does not name. Its content:
 *
 *     Signature-Algorithm: Ed25519
 *     Signer: <site name>
 *     Public-Key: <base64 of the 32-byte raw key>
 *     Signature: <base64 of the 64-byte signature of tagmanifest-sha256.txt's bytes>
 *
 * The key in the file only says which key signed; trust comes from the
 * reader's own list of keys.
 */
export const SIGNATURE_FILE = 'tagmanifest-sha256.txt.sig';

/** A public key as configuration and `/api/site` carry it: base64 of the raw 32 bytes. */
export interface TrustedKey {
  name: string;
  publicKey: string;
}

export interface SigningKey {
  privateKey: KeyObject;
  /** Base64 of the raw public key. */
  publicKey: string;
}

export function generateSigningKey(): { privatePem: string; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey: rawPublicKey(publicKey) };
}

export function signingKeyFromPem(pem: string): SigningKey {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`the key is ${privateKey.asymmetricKeyType}, not Ed25519`);
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

function rawPublicKey(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  return Buffer.from(jwk.x!, 'base64url').toString('base64');
}

function publicKeyObject(raw: string): KeyObject {
  const bytes = Buffer.from(raw, 'base64');
  if (bytes.length !== 32) throw new Error('an Ed25519 public key is 32 bytes (44 characters of base64)');
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: bytes.toString('base64url') }, format: 'jwk' });
}

/** Whether `text` is a usable public key; for configuration checks. */
export function isPublicKey(text: string): boolean {
  try {
    publicKeyObject(text);
    return true;
  } catch {
    return false;
  }
}

/** A short, stable name for a key in messages: the first 16 hex digits of SHA-256 of its raw bytes. */
export function keyFingerprint(publicKey: string): string {
  return createHash('sha256').update(Buffer.from(publicKey, 'base64')).digest('hex').slice(0, 16);
}

export function signTagManifest(tagManifest: Buffer, key: SigningKey, signer: string): string {
  const signature = sign(null, tagManifest, key.privateKey).toString('base64');
  return formatTagFile([
    ['Signature-Algorithm', 'Ed25519'],
    ['Signer', signer],
    ['Public-Key', key.publicKey],
    ['Signature', signature],
  ]);
}

/** Check the signature file against the tag manifest's bytes and a list of trusted keys; return the trusted key that signed. */
export function verifyTagManifest(tagManifest: Buffer, signatureFile: string | undefined, trusted: readonly TrustedKey[]): TrustedKey & { signer: string } {
  if (signatureFile === undefined) throw new BagError('signature_missing', `the bag is not signed (${SIGNATURE_FILE} is missing)`, SIGNATURE_FILE);
  const entries = parseTagFile(signatureFile, SIGNATURE_FILE);
  const algorithm = tagValue(entries, 'Signature-Algorithm');
  const publicKey = tagValue(entries, 'Public-Key') ?? '';
  const signature = tagValue(entries, 'Signature') ?? '';
  const signer = tagValue(entries, 'Signer') ?? 'unknown';
  if (algorithm !== 'Ed25519') throw new BagError('signature_invalid', `${SIGNATURE_FILE}: algorithm ${algorithm ?? '(none)'} is not Ed25519`, SIGNATURE_FILE);
  const match = trusted.find((k) => Buffer.from(k.publicKey, 'base64').equals(Buffer.from(publicKey, 'base64')));
  if (!match) {
    throw new BagError(
      'signature_untrusted',
      `the bag is signed by "${signer}" with key ${publicKey ? keyFingerprint(publicKey) : '(none)'}, which is not among the trusted keys (mirror.trustedKeys)`,
      SIGNATURE_FILE,
    );
  }
  let valid = false;
  try {
    valid = verify(null, tagManifest, publicKeyObject(match.publicKey), Buffer.from(signature, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) throw new BagError('signature_invalid', `${SIGNATURE_FILE}: the signature does not match tagmanifest-sha256.txt (key of ${match.name})`, SIGNATURE_FILE);
  return { ...match, signer };
}
