import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import type { Logger } from '../../logging.js';
import '../context.js';

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Paths polled by load balancers and monitors: logged at debug so they do not drown the rest. */
const QUIET_PATHS = new Set(['/healthz']);

/**
 * Gives each request an id (the proxy's `X-Request-Id` when it is sane, else a
 * new UUID), echoes it in the response, hands handlers a logger stamped with
 * it, and writes one access-log line when the response is finished or the
 * client went away.
 */
export function requestContext(log: Logger): Middleware {
  return async (ctx, next) => {
    const incoming = ctx.get('X-Request-Id');
    ctx.requestId = SAFE_ID.test(incoming) ? incoming : randomUUID();
    ctx.log = log.child({ reqId: ctx.requestId });
    ctx.set('X-Request-Id', ctx.requestId);

    const started = performance.now();
    const { res } = ctx;
    const done = () => {
      res.off('finish', done);
      res.off('close', done);
      const fields = {
        method: ctx.method,
        url: ctx.originalUrl,
        status: ctx.status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        bytes: Number(res.getHeader('Content-Length') ?? 0) || undefined,
        ip: ctx.ip,
        aborted: !res.writableFinished || undefined,
      };
      if (ctx.status >= 500) ctx.log.error(fields, 'request');
      else if (ctx.status < 400 && QUIET_PATHS.has(ctx.path)) ctx.log.debug(fields, 'request');
      else ctx.log.info(fields, 'request');
    };
    res.once('finish', done);
    res.once('close', done);
    await next();
  };
}
