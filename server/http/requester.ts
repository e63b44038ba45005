import type { Context } from 'koa';
import { ANONYMOUS, type Requester } from '../access/levels.js';

/** The requester of this request; anonymous when the authenticate middleware did not run, so miswiring fails closed. */
export function requesterOf(ctx: Context): Requester {
  return (ctx.state as { requester?: Requester }).requester ?? ANONYMOUS;
}
