import Router from '@koa/router';
import type { Middleware } from 'koa';
import { assertLevel, hasLevel } from '../../access/levels.js';
import type { ExchangeService } from '../../datasets/exchange.service.js';
import type { SiteIdentity } from '../../datasets/site-key.js';
import { deliverBundle, retryAfter } from '../deliver.js';
import { requesterOf } from '../middleware/permissions.js';

/** Partner sites: members at L3 (an institutional agreement), and administrators. */
const requirePartner: Middleware = (ctx, next) => {
  const requester = requesterOf(ctx);
  if (!requester.roles.includes('admin') && !hasLevel(requester, 'L3')) assertLevel(requester, 'L3');
  return next();
};

/**
 * Site-to-site exchange.
 * - `GET /api/site` (public): this site's name, address and the Ed25519
 *   public key its export bags are signed with. A partner's administrator
 *   copies the key into their `mirror.trustedKeys`, ideally after checking
 *   the fingerprint with this site by another channel.
 * - `GET /api/datasets` (L3, admin): every dataset with its releases, for
 *   the portal's Datasets page.
 * - `GET /api/datasets/:name` (L3, admin): the released versions.
 * - `GET /api/datasets/:name/bag?version=V&since=S` (L3, admin): a release
 *   as a holey bag, for `slidebank mirror`; audited.
 * - `GET /api/datasets/:name/bag.zip?version=V&since=S&holey=1` (L3, admin):
 *   a release as a bag serialized in one ZIP, streamed; audited when it ends.
 *
 * Bags are downloads like any other: the per-user download limits hold
 * (429 with Retry-After), and a slide withdrawn since the release is left
 * out and named in the bag's withdrawal notice.
 */
export function siteRoutes(identity: () => SiteIdentity, exchange: ExchangeService): Router {
  const router = new Router();
  router.get('/api/site', (ctx) => {
    const site = identity();
    ctx.set('Cache-Control', 'no-cache');
    ctx.body = { name: site.name, publicUrl: site.publicUrl, signingKey: { algorithm: 'Ed25519', publicKey: site.publicKey, fingerprint: site.fingerprint } };
  });
  router.get('/api/datasets', requirePartner, async (ctx) => {
    ctx.body = await exchange.catalogue();
  });
  router.get('/api/datasets/:name', requirePartner, async (ctx) => {
    ctx.body = await exchange.versions(ctx.params.name!);
  });
  router.get('/api/datasets/:name/bag', requirePartner, retryAfter, async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = await exchange.holeyBag(ctx.params.name!, ctx.query, { actorId: requesterOf(ctx).user?.id ?? null, ip: ctx.ip });
  });
  router.get('/api/datasets/:name/bag.zip', requirePartner, retryAfter, async (ctx) => {
    deliverBundle(ctx, await exchange.bagZip(ctx.params.name!, ctx.query, { actorId: requesterOf(ctx).user?.id ?? null, ip: ctx.ip }));
  });
  return router;
}
