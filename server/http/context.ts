import type { Logger } from '../logging.js';
import type { Services } from '../services.js';

declare module 'koa' {
  interface DefaultContext {
    /** Set by the request-context middleware for every request. */
    requestId: string;
    /** A child logger that stamps every line with the request id. */
    log: Logger;
    /** The services route handlers call (set on the application's context by createApp). */
    services: Services;
  }
}

export {};
