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
  | 'out_of_range' // a level, tile or region outside the slide
  | 'too_large' // a render that would decode more source pixels than the slide allows
  | 'aborted'; // the caller gave up (its AbortSignal fired) before the work was done

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
export const tooLarge = (message: string) => new WsiError('too_large', message);
