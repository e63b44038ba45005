import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';

/** One delivery as its recipient sees it in their account. */
export const downloadHistoryItem = z
  .object({
    id: z.number().int(),
    at: timestamp,
    kind: z.enum(['slide', 'annotation', 'bundle']),
    what: z.string().meta({ description: 'The slide\'s name for a file; "N slides" for a bundle' }),
    slideIds: z.array(z.number().int()),
    size: z.number().int().nullable().meta({ description: "The file's size, or a bundle's payload before compression" }),
    bytes: z.number().int().nullable().meta({ description: 'Bytes sent' }),
    complete: z.boolean().nullable().meta({ description: 'Whether every byte asked for was sent (null when nginx sent them and the app cannot know)' }),
    status: z.number().int().nullable().meta({ description: 'The HTTP status of a file download (200, or 206 for a range)' }),
    range: z.string().nullable(),
  })
  .meta({ id: 'DownloadHistoryItem' });
export type DownloadHistoryItem = z.infer<typeof downloadHistoryItem>;

export const downloadHistoryPage = z
  .object({ items: z.array(downloadHistoryItem), total: z.number().int(), page: z.number().int(), pageSize: z.number().int() })
  .meta({ id: 'DownloadHistory' });
export type DownloadHistoryPage = z.infer<typeof downloadHistoryPage>;
