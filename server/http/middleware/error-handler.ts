import type { Context, Middleware } from 'koa';
import { isConnectionLost, isTransactionConflict } from '../../db/transaction.js';
import { AppError } from '../../errors.js';
import '../context.js';

export interface ErrorBody {
  error: { code: string; message: string; requestId: string; details?: unknown };
}

/** Codes for errors raised by Koa and its middleware (http-errors) rather than by our own code. */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  406: 'not_acceptable',
  408: 'request_timeout',
  409: 'conflict',
  411: 'length_required',
  413: 'payload_too_large',
  414: 'uri_too_long',
  415: 'unsupported_media_type',
  416: 'range_not_satisfiable',
  422: 'unprocessable_entity',
  429: 'too_many_requests',
  501: 'not_implemented',
  503: 'unavailable',
};

/** Headers a handler may have set before failing that would misdescribe the error body. */
const HEADERS_OF_A_SUCCESS = ['Content-Disposition', 'Content-Range', 'Content-Encoding', 'ETag', 'Last-Modified', 'Cache-Control'];

/**
 * The outermost error boundary: every failure leaves as JSON
 * `{"error": {"code", "message", "requestId"}}` with a stable code. Messages of
 * unexpected errors, and all stack traces, stay in the log.
 */
export function errorHandler(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.body == null && (ctx.status === 404 || ctx.status === 405)) {
        const message =
          ctx.status === 404
            ? `Nothing here: ${ctx.method} ${ctx.path}`
            : `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow')}`;
        respond(ctx, ctx.status, CODE_BY_STATUS[ctx.status]!, message);
      }
    } catch (error) {
      for (const name of HEADERS_OF_A_SUCCESS) ctx.remove(name);
      handle(ctx, error);
    }
  };
}

function handle(ctx: Context, error: unknown): void {
  if (error instanceof AppError) {
    if (error.status >= 500) ctx.log.error({ err: error }, error.message);
    const message = error.expose ? error.message : 'Internal server error';
    respond(ctx, error.status, error.code, message, error.expose ? error.details : undefined);
    return;
  }

  // Errors from Koa, the router and the body parser carry http-errors' status/expose.
  const httpish = error as { status?: unknown; statusCode?: unknown; expose?: unknown; message?: string; type?: string; headers?: Record<string, string> };
  const status = Number(httpish.status ?? httpish.statusCode);
  if (Number.isInteger(status) && status >= 400 && status < 500) {
    // co-body reports malformed JSON as a SyntaxError with status 400.
    const badJson = error instanceof SyntaxError || httpish.type === 'entity.parse.failed';
    const code = badJson ? 'invalid_json' : CODE_BY_STATUS[status] ?? 'bad_request';
    const message = badJson
      ? `The request body is not valid JSON (${httpish.message})`
      : httpish.expose === true && httpish.message
        ? httpish.message
        : defaultMessage(status);
    for (const [name, value] of Object.entries(httpish.headers ?? {})) ctx.set(name, value);
    respond(ctx, status, code, message);
    return;
  }

  // A database node that stopped mid-request, or a conflict still there after the retries: the request may simply be sent again.
  if (isConnectionLost(error) || isTransactionConflict(error)) {
    ctx.log.warn({ err: error }, 'database unavailable for this request; the client is asked to retry');
    ctx.set('Retry-After', '1');
    respond(ctx, 503, 'database_unavailable', 'The database did not answer this request; try again in a moment');
    return;
  }

  ctx.log.error({ err: error }, 'unhandled error');
  respond(ctx, 500, 'internal_error', `Internal server error; quote request id ${ctx.requestId} to the operator`);
}

function respond(ctx: Context, status: number, code: string, message: string, details?: unknown): void {
  if (ctx.headerSent || !ctx.writable) {
    // The response has started: the only honest signal left is to cut the connection.
    ctx.req.socket.destroy();
    return;
  }
  ctx.status = status;
  ctx.type = 'application/json';
  const body: ErrorBody = { error: { code, message, requestId: ctx.requestId } };
  if (details !== undefined) body.error.details = details;
  ctx.body = body;
}

function defaultMessage(status: number): string {
  return (CODE_BY_STATUS[status] ?? 'bad_request').replace(/_/g, ' ');
}
