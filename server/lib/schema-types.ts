import { z } from 'zod';

/**
 * Shapes shared by the views services answer with: the views are zod schemas,
 * so that one definition gives the TypeScript type, the API description and
 * the portal's types.
 */

/** A point in time: a Date in the code, an ISO 8601 string in JSON. */
export const timestamp = z.date().meta({ override: { type: 'string', format: 'date-time' } });
