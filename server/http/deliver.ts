import type { Context, Middleware } from 'koa';
import { DownloadLimitError, type BundleDelivery, type Settle } from '../downloads/index.js';

/** Stream a generated archive (a download bundle, a bag as a ZIP); when the response ends the service learns how. */
export function deliverBundle(ctx: Context, delivery: BundleDelivery): void {
  ctx.status = 200;
  ctx.set(delivery.headers);
  ctx.body = delivery.body;
  settleWhenDone(ctx, delivery.settle);
}

/** Tell the service how the response ended: every byte handed to the connection, or cut off by the client or an error. */
export function settleWhenDone(ctx: Context, settle: Settle): void {
  const { res } = ctx;
  const done = () => {
    settle(res.writableFinished).catch((error: unknown) => ctx.log.error({ err: error }, 'download: settling the delivery failed'));
  };
  if (res.closed) done();
  else res.once('close', done);
}

/** The download limits answer 429 with `Retry-After` (the error handler keeps headers it does not know). */
export const retryAfter: Middleware = async (ctx, next) => {
  try {
    await next();
  } catch (error) {
    if (error instanceof DownloadLimitError && error.retryAfterSeconds !== null) ctx.set('Retry-After', String(error.retryAfterSeconds));
    throw error;
  }
};
