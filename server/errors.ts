/**
 * Errors that carry their own answer.
 *
 * `AppError` is what request handling throws: the HTTP layer turns `status`,
 * `code` and (when `expose` is true) `message` into the JSON error body.
 * `FatalError` is what start-up throws: the CLI prints its one-line message
 * and exits with its `exitCode`, without a stack trace.
 */

export interface AppErrorOptions {
  /** Whether `message` may be shown to the client. Defaults to true below 500. */
  expose?: boolean;
  /** Extra machine-readable facts for the client (validation issues, limits). */
  details?: unknown;
  cause?: unknown;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly expose: boolean;
  readonly details: unknown;

  constructor(status: number, code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.expose = options.expose ?? status < 500;
    this.details = options.details;
  }
}

export const badRequest = (code: string, message: string, details?: unknown) =>
  new AppError(400, code, message, { details });

export const notFound = (code: string, message: string) => new AppError(404, code, message);

/** Process exit codes, documented in the README for operators and systemd. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  config: 2,
  database: 3,
  network: 4,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export class FatalError extends Error {
  readonly exitCode: ExitCode;

  constructor(exitCode: ExitCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FatalError';
    this.exitCode = exitCode;
  }
}
