import { z } from 'zod';
import { scheduledJobList } from '../../jobs/views.js';
import { adminOnly } from '../access.js';
import { noStore } from '../middleware/cache-control.js';
import { route } from '../route.js';

/** The scheduled jobs for administrators, read-only: each with its last runs. */
export const scheduledJobRoutes = [
  route({
    method: 'get',
    path: '/api/admin/jobs',
    tag: 'Administration',
    summary: 'Every scheduled job with its schedule and its last runs, newest first',
    description: 'Read-only: each job with its last 10 runs, each with what it did (`summary`) and whether the schedule or the command line started it.',
    access: adminOnly,
    query: z.strictObject({}),
    before: [noStore],
    response: { description: 'The scheduled jobs in the order `cron list` shows them', schema: scheduledJobList },
    handle: (_input, ctx) => ctx.services.jobs.list(),
  }),
];
