/** Why a bag was refused; `file` is the bag-relative path at fault when there is one. */
export type BagErrorCode =
  | 'not_a_bag'
  | 'bad_declaration'
  | 'bad_tag_file'
  | 'bad_manifest'
  | 'unsafe_path'
  | 'missing_file'
  | 'extra_file'
  | 'checksum_mismatch'
  | 'oxum_mismatch'
  | 'incomplete'
  | 'signature_missing'
  | 'signature_invalid'
  | 'signature_untrusted';

export class BagError extends Error {
  constructor(
    readonly code: BagErrorCode,
    message: string,
    readonly file?: string,
  ) {
    super(message);
    this.name = 'BagError';
  }
}
