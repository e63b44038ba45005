import { z } from 'zod';
import type { ZodOpenApiOverrideContext } from 'zod-openapi';

/**
 * The pieces route schemas are made of, so that the same kind of input is
 * checked the same way on every route.
 */

/** Database ids are positive 32-bit integers. */
export const MAX_ID = 2 ** 31 - 1;
const ID_TEXT = /^[1-9]\d{0,9}$/;

/**
 * An id in the path (`/api/slides/{id}`): a path naming an id that cannot
 * exist is a 404 `<entity>_not_found`, the same answer as an id that could
 * exist but does not.
 */
export function idParam(entity: string) {
  return z
    .string()
    .regex(ID_TEXT, `No ${entity.replace(/_/g, ' ')} with that id`)
    .transform(Number)
    .refine((id) => id <= MAX_ID, `No ${entity.replace(/_/g, ' ')} with that id`)
    .meta({ description: `The ${entity.replace(/_/g, ' ')}'s id`, 'x-not-found': `${entity}_not_found` });
}

/** A query parameter given once, as text: `?a=1&a=2` is refused rather than read as either. */
export function once(name: string) {
  return z.string({ error: (issue) => (Array.isArray(issue.input) ? `${name} is given more than once; give it once` : `${name} must be text`) });
}

/** A whole-number query parameter within [min, max]; `fallback` when absent or empty. */
export function wholeQuery(name: string, fallback: number, min: number, max: number) {
  return once(name)
    .regex(/^\d{0,15}$/, `${name} must be a whole number from ${min} to ${max}`)
    .optional()
    .transform((text) => (text === undefined || text === '' ? fallback : Number(text)))
    .refine((n) => n >= min && n <= max, `${name} must be a whole number from ${min} to ${max}`)
    .meta({ override: documentedAsInteger({ minimum: min, maximum: max, default: fallback }) });
}

/** An id in the query (`?slide=12`), for filters and references: 1 to 2^31-1, else a 400 that names the parameter. */
export function idQuery(name: string) {
  const problem = `${name} must be a whole number from 1 to ${MAX_ID}`;
  return once(name)
    .regex(ID_TEXT, problem)
    .transform(Number)
    .refine((id) => id <= MAX_ID, problem)
    .meta({ override: documentedAsInteger({ minimum: 1, maximum: MAX_ID }) });
}

/** A yes/no query parameter (`?holey=1`): false when absent or empty; `1`/`true` or `0`/`false`. */
export function flagQuery(name: string) {
  return once(name)
    .pipe(z.enum(['', '0', '1', 'false', 'true'], { error: `${name} must be 1 or 0` }))
    .optional()
    .transform((text) => text === '1' || text === 'true')
    .meta({ override: { type: 'string', enum: ['1', '0', 'true', 'false'], default: '0' } });
}

/** A text query parameter, trimmed; absent and empty are the same. */
export function textQuery(name: string, max = 200) {
  return once(name)
    .max(max, `${name} must be at most ${max} characters`)
    .optional()
    .transform((text) => (text === undefined || text.trim() === '' ? undefined : text.trim()));
}

/** An ISO 8601 date or date and time in the query; absent or empty is undefined. */
export function timeQuery(name: string) {
  return once(name)
    .optional()
    .transform((text, ctx) => {
      if (text === undefined || text === '') return undefined;
      const time = new Date(text);
      if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(time.getTime())) {
        ctx.addIssue({ code: 'custom', message: `${name} must be an ISO 8601 date such as 2026-01-31 or 2026-01-31T12:00:00Z` });
        return z.NEVER;
      }
      return time;
    });
}

/** Query parameters are text on the wire; the API description states the number they must hold. */
function documentedAsInteger(bounds: { minimum: number; maximum: number; default?: number }) {
  return ({ jsonSchema }: ZodOpenApiOverrideContext) => {
    delete jsonSchema.pattern;
    Object.assign(jsonSchema, { type: 'integer', ...bounds });
  };
}
