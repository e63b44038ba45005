import type { Middleware } from 'koa';

/** Sets Cache-Control for a route's answers; the error handler removes it from errors, which are never cached. */
export function cacheControl(value: string): Middleware {
  return async (ctx, next) => {
    ctx.set('Cache-Control', value);
    await next();
  };
}

/** Answers that hold personal or unpublished data stay out of shared caches and the browser's history. */
export const noStore = cacheControl('no-store');
