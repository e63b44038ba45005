import { z } from 'zod';
import { INGEST_RECORDS_PAGE } from '../../ingest/ingest-records.service.js';
import { INGEST_OUTCOMES, ingestRecord, ingestRecordList } from '../../ingest/views.js';
import { staffOnly } from '../access.js';
import { idParam, wholeQuery } from '../params.js';
import { route } from '../route.js';

/** Curators' view of ingest: what each ingest did and why, and the de-identification report of a published slide. Staff only. */

const recordsQuery = z.strictObject({
  outcome: z.enum(INGEST_OUTCOMES, { error: `outcome must be one of ${INGEST_OUTCOMES.join(', ')}` }).optional(),
  limit: wholeQuery('limit', INGEST_RECORDS_PAGE.default, 1, INGEST_RECORDS_PAGE.max),
  offset: wholeQuery('offset', 0, 0, Number.MAX_SAFE_INTEGER),
});

const tag = 'Ingest';

export const ingestRoutes = [
  route({
    method: 'get',
    path: '/api/ingest/records',
    tag,
    summary: 'What each ingest did (published, quarantined, duplicate, refused, failed) and why, newest first',
    access: staffOnly,
    query: recordsQuery,
    response: { description: 'A window of ingest records', schema: ingestRecordList },
    handle: ({ query }, ctx) => ctx.services.ingestRecords.list(query),
  }),
  route({
    method: 'get',
    path: '/api/ingest/slides/{id}/report',
    tag,
    summary: "A published slide's de-identification report: what was removed, what was checked",
    access: staffOnly,
    params: z.strictObject({ id: idParam('slide') }),
    response: { description: 'The ingest record that published the slide', schema: ingestRecord },
    handle: ({ params }, ctx) => ctx.services.ingestRecords.forSlide(params.id),
  }),
];
