import { createHash } from 'node:crypto';

/** Slidebank's Implementation Class UID (a UUID-derived UID, PS3.5 B.2), written in every file's meta information. */
export const IMPLEMENTATION_CLASS_UID = '2.25.138959635897563520925390910870936027115';
export const IMPLEMENTATION_VERSION_NAME = 'SLIDEBANK';

/** The UIDs of one slide's DICOM series. Instance `n` is the n-th instance of the series (levels, then the thumbnail). */
export interface SeriesUids {
  study: string;
  series: string;
  frameOfReference: string;
  dimensionOrganization: string;
  specimen: string;
  instance(n: number): string;
}

const UID_PATTERN = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;

/** Why `root` cannot be a UID root (undefined when it can): digits and dots, no leading zeros, room left for Slidebank's suffixes. */
export function uidRootProblem(root: string): string | undefined {
  if (!UID_PATTERN.test(root)) return 'a UID root is numbers separated by dots, without leading zeros (for example 1.2.826.0.1.3680043.10.999)';
  if (root.length > 40) return 'a UID root may be at most 40 characters long, to leave room for the slide\'s part';
  return undefined;
}

/**
 * The same UIDs every time for the same slide: each is derived from `key`
 * (a stable name of the slide's content, such as its id and checksum) and the
 * role of the UID, so that a later export, or a DICOMweb server describing
 * the slide on the fly, names the same study, series and instances.
 *
 * Without a root the UIDs are 2.25 UIDs (PS3.5 B.2): a UUID's 128 bits as
 * a decimal integer, here a name-based UUID from SHA-256. Under a root
 * (an organisation's, from configuration) they are `<root>.<digits>`, the
 * digits again from the hash, as many as fit in 64 characters.
 */
export function seriesUids(key: string, root?: string): SeriesUids {
  if (root !== undefined && root !== '') {
    const problem = uidRootProblem(root);
    if (problem) throw new RangeError(`UID root ${root}: ${problem}`);
  }
  const make = (role: string) => derivedUid(`${key}\u0000${role}`, root || undefined);
  return {
    study: make('study'),
    series: make('series'),
    frameOfReference: make('frame-of-reference'),
    dimensionOrganization: make('dimension-organization'),
    specimen: make('specimen'),
    instance: (n) => make(`instance-${n}`),
  };
}

function derivedUid(name: string, root: string | undefined): string {
  const hash = createHash('sha256').update(name).digest();
  if (!root) {
    // An RFC 9562 name-based UUID layout (version 8, variant 10) from the hash's first 128 bits.
    const bits = Buffer.from(hash.subarray(0, 16));
    bits[6] = (bits[6]! & 0x0f) | 0x80;
    bits[8] = (bits[8]! & 0x3f) | 0x80;
    return `2.25.${BigInt(`0x${bits.toString('hex')}`).toString()}`;
  }
  const room = 64 - root.length - 1;
  const digits = BigInt(`0x${hash.toString('hex')}`).toString().slice(0, Math.min(room, 39));
  return `${root}.${digits.replace(/^0+/, '') || '0'}`;
}
