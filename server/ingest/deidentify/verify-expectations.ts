import type { IdentifierSet } from './identifiers.js';

/** What the independent verification checks a published copy against: what was found in the original, and what the copy must be. */
export interface VerifyExpectations {
  identifiers: IdentifierSet;
  levels: { width: number; height: number }[];
  sha256: string;
  size: number;
  /** A DICOM series (a folder): the slide's new name, and per level the digest of the original's frames. */
  dicom?: { name: string; frameDigests: string[] };
}
