import { z } from 'zod';
import { DATASET_NAME } from '../../datasets/datasets.service.js';
import { datasetList, datasetVersions, holeyBag, siteView, siteViewOf } from '../../datasets/views.js';
import { atLeast, publicAccess } from '../access.js';
import { actorOf } from '../actor.js';
import { deliverBundle } from '../deliver.js';
import { cacheControl, noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { flagQuery, textQuery } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';

/**
 * Site-to-site exchange. Anyone may read this site's identity: its name,
 * address and the Ed25519 public key its export bags are signed with, which
 * a partner's administrator copies into their `mirror.trustedKeys` (ideally
 * after checking the fingerprint with this site by another channel). Partner
 * sites — members at L3, by an institutional agreement — and administrators
 * list the datasets and download a release as a bag: holey in JSON for
 * `slidebank mirror`, or as one ZIP for the portal.
 *
 * Bags are downloads like any other: the per-user download limits hold
 * (429 with Retry-After), every bag is audited, and a slide withdrawn since
 * the release is left out and named in the bag's withdrawal notice.
 */

const tag = 'Datasets';
const partner = atLeast('L3', { orRoles: ['admin'] });

const datasetPath = z.strictObject({
  name: z.string().regex(DATASET_NAME, 'There is no dataset with that name').meta({ description: "The dataset's name", 'x-not-found': 'dataset_not_found' }),
});

/** Unknown parameters are ignored, as partners' older clients may send some. */
const release = {
  version: textQuery('version', 50).meta({ description: 'The release; default the newest' }),
  since: textQuery('since', 50).meta({ description: 'An incremental bag: only what changed since this older release, and its withdrawals' }),
};

export const siteRoutes = [
  route({
    method: 'get',
    path: '/api/site',
    tag,
    summary: "This site's name, address and the public key its export bags are signed with",
    description: "What a partner's administrator puts into mirror.trustedKeys, ideally after checking the fingerprint with this site by another channel.",
    access: publicAccess,
    before: [cacheControl('no-cache')],
    response: { description: 'The site', schema: siteView },
    handle: (_input, ctx) => siteViewOf(ctx.services.site()),
  }),
  route({
    method: 'get',
    path: '/api/datasets',
    tag,
    summary: 'Every dataset with its releases, for the portal',
    access: partner,
    response: { description: 'The datasets', schema: datasetList },
    handle: (_input, ctx) => ctx.services.exchange.catalogue(),
  }),
  route({
    method: 'get',
    path: '/api/datasets/{name}',
    tag,
    summary: "A dataset's released versions",
    access: partner,
    params: datasetPath,
    response: { description: 'The versions, oldest first', schema: datasetVersions },
    handle: ({ params }, ctx) => ctx.services.exchange.versions(params.name),
  }),
  route({
    method: 'get',
    path: '/api/datasets/{name}/bag',
    tag,
    summary: 'A release as a holey bag in JSON, for slidebank mirror (audited)',
    description:
      'A release (default the newest; with since, the incremental bag on top of that older release) with every file but the slides, base64-encoded; its fetch.txt lists the slide files as this site\'s `/api/slides/{id}/files/slide` URLs. A slide of the release withdrawn since it was made, from the dataset or the catalog, is left out and named in the signed tag file `slidebank-withdrawn.json` (`{"schemaVersion": 1, "withdrawn": [{"name", "sha256", "reason", "withdrawnAt"}]}`), which `slidebank import` and `slidebank mirror` apply. 400 invalid_query when since is not older than version; 404 dataset_not_found or release_not_found; 409 export_refused when a released slide file no longer matches the catalog. Audited as dataset.exported and counted against the download limits (429 with Retry-After).',
    access: partner,
    params: datasetPath,
    query: z.object(release),
    before: [noStore, retryAfter],
    response: { description: "The bag's files but the slides, which its fetch.txt points at", schema: holeyBag },
    handle: async ({ params, query }, ctx) => {
      await ctx.services.hiddenTruth.assertDatasetVisible(requesterOf(ctx), params.name);
      return ctx.services.exchange.holeyBag(params.name, query, actorOf(ctx));
    },
  }),
  route({
    method: 'get',
    path: '/api/datasets/{name}/bag.zip',
    tag,
    summary: 'A release as a signed bag in one ZIP, streamed (audited when it ends)',
    description:
      'The bag serialized as RFC 8493 §4 has it: one top-level folder, the bag, named as `slidebank export` names it; entries STOREd, ZIP64 as needed; sent as `<bag>.zip` (`<bag>_holey.zip` with holey). By default the complete bag, its slide files read from the slide store; with holey=1 the holey bag, whose fetch.txt points at the slides. Versions, since, withdrawn slides and refusals as for `/bag`, and 413 or 429 past the download limits. Audited as dataset.exported when the response ends, with the bytes sent and whether it completed; a client that goes away stops the archive.',
    access: partner,
    params: datasetPath,
    query: z.object({ ...release, holey: flagQuery('holey').meta({ description: 'Leave the slide files out: fetch.txt points at their download URLs' }) }),
    before: [retryAfter],
    response: { description: 'The bag as a ZIP archive', contentType: 'application/zip' },
    handle: async ({ params, query }, ctx) => {
      await ctx.services.hiddenTruth.assertDatasetVisible(requesterOf(ctx), params.name);
      deliverBundle(ctx, await ctx.services.exchange.bagZip(params.name, query, actorOf(ctx)));
    },
  }),
];
