import { z } from 'zod';
import type { ZodOpenApiOverrideContext } from 'zod-openapi';

/** A level, column or row of a Deep Zoom grid (a slide's or an overlay's): plain decimal, so that one tile has one path. */
export const tileIndex = z
  .string()
  .regex(/^(0|[1-9]\d{0,8})$/, 'A level, column or row is a whole number from 0 up, without leading zeros')
  .transform(Number)
  .meta({
    'x-not-found': 'tile_not_found',
    override: ({ jsonSchema }: ZodOpenApiOverrideContext) => {
      delete jsonSchema.pattern;
      Object.assign(jsonSchema, { type: 'integer', minimum: 0 });
    },
  });

/** What a path segment of a tile path is, for the patterns of the tile routes. */
export const SEGMENT = '[^/]+';
