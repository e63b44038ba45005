/**
 * Why a slide could not be opened or read. `code` is stable for callers (the
 * HTTP layer maps it to a status); `message` names the file and the problem.
 */
export type WsiErrorCode =
  | 'not_found' // no such file
  | 'unsupported_format' // not a TIFF, or a TIFF no driver accepts
  | 'corrupt' // structurally broken: truncated, offsets past the end, loops, absurd values
  | 'unsupported_compression' // a codec we do not decode
  | 'decode_failed' // tile data that the codec rejects
  | 'out_of_range'; // a level, tile or region outside the slide

export class WsiError extends Error {
  readonly code: WsiErrorCode;

  constructor(code: WsiErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WsiError';
    this.code = code;
  }
}

export const corrupt = (message: string, cause?: unknown) => new WsiError('corrupt', message, { cause });
export const outOfRange = (message: string) => new WsiError('out_of_range', message);
