import type { Logger } from '../logging.js';

declare module 'koa' {
  interface DefaultContext {
    /** Set by the request-context middleware for every request. */
    requestId: string;
    /** A child logger that stamps every line with the request id. */
    log: Logger;
  }
}

export {};
