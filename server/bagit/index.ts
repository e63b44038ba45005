/**
 * BagIt (RFC 8493) bags: writing, validating and Ed25519 signing. A pure
 * library: files and node:crypto only, no HTTP and no database.
 */
export { BagError, type BagErrorCode } from './errors.js';
export { checkSafePath, decodePath, encodePath, parseFetch, parseManifest, type FetchEntry, type ManifestEntry } from './manifest.js';
export {
  SIGNATURE_FILE,
  generateSigningKey,
  isPublicKey,
  keyFingerprint,
  signingKeyFromPem,
  signTagManifest,
  verifyTagManifest,
  type SigningKey,
  type TrustedKey,
} from './signature.js';
export { BAGIT_TXT, formatTagFile, parseOxum, parseTagFile, tagValue, type TagEntries } from './tag-file.js';
export { validateBag, type PayloadFile, type ValidateOptions, type ValidatedBag } from './validate.js';
export { writeBag, type PayloadItem, type PayloadSource, type WriteBagOptions, type WrittenBag } from './write.js';
