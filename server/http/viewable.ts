import type { Context } from 'koa';
import './context.js';

/**
 * The slide id, once the slide access policy lets this requester view the
 * slide: what the catalog entry, its thumbnail, its annotation, its tiles
 * and overlays ask after the route's own access declaration.
 */
export async function viewable(ctx: Context, slideId: number): Promise<number> {
  await ctx.services.slideAccess.assertCanView(ctx, slideId);
  return slideId;
}
