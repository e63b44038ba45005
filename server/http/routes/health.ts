import { health } from '../../metrics/index.js';
import { publicAccess } from '../access.js';
import { noStore } from '../middleware/cache-control.js';
import { route } from '../route.js';

/**
 * Whether the server and its database answer; public, so it says what is down
 * but not why (the reason goes to the log). Monitors may add query parameters
 * of their own: the query is not read.
 */
export const healthRoutes = [
  route({
    method: 'get',
    path: '/healthz',
    tag: 'Operations',
    summary: 'Whether the server and its database answer, for load balancers and monitors',
    description: 'Answers 503 with the same body (status unavailable) when the database does not answer.',
    access: publicAccess,
    before: [noStore],
    response: { description: 'Up', schema: health },
    handle: async (_input, ctx) => {
      const { health: answer, databaseProblem } = await ctx.services.health.summary();
      if (databaseProblem !== undefined) ctx.log.warn({ reason: databaseProblem }, 'health check: database down');
      ctx.status = answer.status === 'ok' ? 200 : 503;
      return answer;
    },
  }),
];
