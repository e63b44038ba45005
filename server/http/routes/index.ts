import { openApiDocument } from '../openapi.js';
import { publicAccess } from '../access.js';
import { route, type RouteDefinition } from '../route.js';
import { pageRoutes } from './pages.js';
import { downloadRoutes } from './downloads.js';
import { siteRoutes } from './site.js';
import { accountRoutes } from './account.js';
import { adminUserRoutes } from './admin-users.js';
import { agreementRoutes } from './agreements.js';
import { authRoutes } from './auth.js';
import { signInRoutes } from './sign-in.js';
import { tokenRoutes } from './tokens.js';
import { queueRoutes } from './queue.js';
import { annotationReviewRoutes } from './annotation-review.js';
import { auditRoutes } from './audit.js';
import { scheduledJobRoutes } from './jobs.js';
import { metricsRoutes } from './metrics.js';
import { healthRoutes } from './health.js';
import { overlayRoutes } from './overlays.js';
import { tileRoutes } from './tiles.js';
import { slideRoutes } from './slides.js';
import { collectionRoutes } from './collection.js';
import { adminSlideRoutes } from './admin-slides.js';
import { ingestRoutes } from './ingest.js';
import { challengeRoutes } from './challenges.js';
import { dicomwebRoutes } from './dicomweb.js';

let description: ReturnType<typeof openApiDocument> | undefined;

const describeApi = route({
  method: 'get',
  path: '/api/openapi.json',
  tag: 'API',
  summary: 'This API described in OpenAPI 3.1: every route, its input, its answer and who may call it (x-access)',
  access: publicAccess,
  response: { description: 'The OpenAPI document', contentType: 'application/json' },
  handle: (_input, ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    return (description ??= openApiDocument(apiRoutes));
  },
});

/** Every route of the API, in the order they are matched; the API description is made from this list. */
export const apiRoutes: readonly RouteDefinition[] = [describeApi, ...pageRoutes, ...siteRoutes, ...downloadRoutes, ...authRoutes, ...signInRoutes, ...accountRoutes, ...tokenRoutes, ...adminUserRoutes, ...agreementRoutes, ...queueRoutes, ...annotationReviewRoutes, ...auditRoutes, ...scheduledJobRoutes, ...metricsRoutes, ...healthRoutes, ...collectionRoutes, ...slideRoutes, ...adminSlideRoutes, ...ingestRoutes, ...challengeRoutes, ...overlayRoutes, ...tileRoutes, ...dicomwebRoutes];
