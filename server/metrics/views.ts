import { z } from 'zod';

/** What anybody may know of the server's health: up or not, never why. */
export const health = z
  .object({
    status: z.enum(['ok', 'unavailable']),
    version: z.string(),
    uptimeSeconds: z.number().int(),
    database: z.object({ status: z.enum(['up', 'down']), dialect: z.string(), latencyMs: z.number().int() }),
  })
  .meta({ id: 'Health' });
export type Health = z.infer<typeof health>;

export const databaseHealth = z
  .object({
    status: z.enum(['up', 'down']),
    dialect: z.string(),
    latencyMs: z.number().int(),
    error: z.string().optional().meta({ description: 'Why the database did not answer' }),
  })
  .meta({ id: 'DatabaseHealth' });

export const folderHealth = z
  .object({
    path: z.string(),
    status: z.enum(['ok', 'missing', 'read-only']),
    mountPoint: z.boolean().nullable().meta({ description: 'True when the folder is the root of a file system of its own (an NFS or CephFS mount, a dedicated disk)' }),
    freeBytes: z.number().nullable(),
    totalBytes: z.number().nullable(),
    error: z.string().optional(),
  })
  .meta({ id: 'FolderHealth' });
export type FolderHealth = z.infer<typeof folderHealth>;

export const tileEngineHealth = z
  .object({
    scaledJpeg: z
      .object({
        active: z.boolean(),
        library: z.string().optional().meta({ description: 'The libturbojpeg file the addon runs on (Linux)' }),
        source: z.enum(['system', 'npm']).optional().meta({ description: 'system: the distribution\'s package; npm: the library @julusian/jpeg-turbo ships, copied beside the addon' }),
        reason: z.string().optional().meta({ description: 'Why the path is not in use' }),
      })
      .meta({ description: 'Tiles that are whole blocks of stored JPEG tiles, or rectangles of them, made by libjpeg-turbo (native/scaled-jpeg); otherwise decoded and resized through libvips' }),
    pageCacheReads: z
      .object({ active: z.boolean(), reason: z.string().optional() })
      .meta({ description: 'Stored tiles read from the page cache on the calling thread (native/page-cache); otherwise through the thread pool' }),
  })
  .meta({ id: 'TileEngineHealth' });
export type TileEngineHealth = z.infer<typeof tileEngineHealth>;

/** What an operator needs when something is wrong; it names server paths, so operators only. */
export const healthDetails = z
  .object({
    status: z.enum(['ok', 'degraded', 'unavailable']).meta({ description: 'unavailable: the database is down; degraded: a data folder is missing or read-only' }),
    database: databaseHealth,
    folders: z.record(z.string(), folderHealth).meta({ description: 'By configuration key: data, slides, cache' }),
    jobs: z.array(z.object({ job: z.string(), status: z.string(), count: z.number().int() })).meta({ description: 'Recorded runs of the scheduled jobs by outcome' }),
    queue: z.array(z.object({ type: z.string(), status: z.string(), count: z.number().int() })).meta({ description: 'Toolbox jobs by type and status' }),
    tiles: tileEngineHealth.optional().meta({ description: 'Which of the tile engine\'s fast paths this server process uses' }),
  })
  .meta({ id: 'HealthDetails' });
export type HealthDetails = z.infer<typeof healthDetails>;
