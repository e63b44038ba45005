import type { Context, Middleware } from 'koa';
import { requesterOf } from './requester.js';
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

/**
 * As `viewable`, for what shows a slide's annotation or is made from it
 * (GeoJSON, heat-map overlays): also refused (403 truth_hidden) while the
 * annotation is the hidden truth of a challenge, except to administrators.
 */
export async function annotationViewable(ctx: Context, slideId: number): Promise<number> {
  await viewable(ctx, slideId);
  await ctx.services.hiddenTruth.assertVisible(requesterOf(ctx), slideId);
  return slideId;
}

/** For routes about one slide's annotations (`{id}` in the path): 403 truth_hidden while it is a challenge's hidden truth, except to administrators. */
export const hiddenTruthGuard: Middleware = async (ctx, next) => {
  const id = Number((ctx.params as Record<string, string> | undefined)?.id);
  if (Number.isSafeInteger(id) && id > 0) await ctx.services.hiddenTruth.assertVisible(requesterOf(ctx), id);
  await next();
};
