import type { Middleware } from 'koa';
import { AppError } from '../../errors.js';

/** A refusal that says when to come back (429 throttling, 503 busy: `details.retryAfterSeconds`) carries it in Retry-After as well. */
export const retryAfter: Middleware = async (ctx, next) => {
  try {
    await next();
  } catch (error) {
    const seconds = error instanceof AppError ? (error.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds : undefined;
    if (typeof seconds === 'number') ctx.set('Retry-After', String(seconds));
    throw error;
  }
};
