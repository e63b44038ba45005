import { z } from 'zod';
import { facetCount } from '../../catalog/views.js';
import { timestamp } from '../../lib/schema-types.js';
import type { Services } from '../../services.js';
import { publicAccess } from '../access.js';
import { cacheControl } from '../middleware/cache-control.js';
import { route } from '../route.js';

/**
 * What the collection holds, for anyone (as public archives show it before
 * a login): published slides counted by organ, stain and annotation method,
 * their total size, and the datasets with their releases. Counts only: no
 * slide's name, image or record.
 */

const COUNTED = ['organ', 'stain', 'annotationMethod'] as const;
/** The same counts for everyone, so made at most once a minute per server. */
const FRESH_MS = 60_000;

const releaseCounts = z.object({
  version: z.string(),
  releasedAt: timestamp,
  slides: z.number().int().meta({ description: 'Slides of the release still available (those withdrawn since are not counted)' }),
});

export const collectionView = z
  .object({
    slides: z.number().int().meta({ description: 'Published slides' }),
    bytes: z.number().int().meta({ description: 'Their slide files’ total size' }),
    annotated: z.number().int().meta({ description: 'Published slides with an annotation' }),
    byOrgan: z.array(facetCount),
    byStain: z.array(facetCount),
    byAnnotationMethod: z.array(facetCount),
    datasets: z
      .array(z.object({ name: z.string(), description: z.string().nullable(), releases: z.array(releaseCounts).meta({ description: 'Oldest first' }) }))
      .meta({ description: 'Datasets with at least one release' }),
    countedAt: timestamp.meta({ description: 'When these counts were made (they are kept for a minute)' }),
  })
  .meta({ id: 'Collection' });
export type CollectionView = z.infer<typeof collectionView>;

const made = new WeakMap<Services, { at: number; view: Promise<CollectionView> }>();

function collection(services: Services, now = Date.now()): Promise<CollectionView> {
  const kept = made.get(services);
  if (kept && now - kept.at < FRESH_MS) return kept.view;
  const view = count(services, new Date(now));
  made.set(services, { at: now, view });
  // A failure is not kept: the next request counts again.
  view.catch(() => made.delete(services));
  return view;
}

async function count(services: Services, at: Date): Promise<CollectionView> {
  const [counts, datasets] = await Promise.all([services.catalog.counts(COUNTED), services.exchange.catalogue()]);
  return {
    slides: counts.slides,
    bytes: counts.bytes,
    annotated: counts.annotated,
    byOrgan: counts.facets.organ,
    byStain: counts.facets.stain,
    byAnnotationMethod: counts.facets.annotationMethod,
    datasets: datasets.items
      .filter((dataset) => dataset.releases.length > 0)
      .map((dataset) => ({
        name: dataset.name,
        description: dataset.description,
        releases: dataset.releases.map((release) => ({
          version: release.version,
          releasedAt: release.releasedAt,
          slides: Math.max(0, release.slides - release.withdrawnAfter),
        })),
      })),
    countedAt: at,
  };
}

export const collectionRoutes = [
  route({
    method: 'get',
    path: '/api/collection',
    tag: 'Catalog',
    summary: 'What the collection holds, in counts, for anyone: slides by organ, stain and annotation method, their size, the datasets and releases',
    description:
      'Only published slides are counted (never a withdrawn one), and no slide is named. The counts are made at most once a minute; Cache-Control: public, max-age=60.',
    access: publicAccess,
    before: [cacheControl('public, max-age=60')],
    response: { description: 'The counts', schema: collectionView },
    handle: (_input, ctx) => collection(ctx.services),
  }),
];
