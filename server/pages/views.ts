import { z } from 'zod';
import { timestamp } from '../lib/schema-types.js';
import { PAGE_KINDS } from './pages.repository.js';

/** A published page as anyone (L0 included) reads it. */
export const publicPage = z
  .object({
    slug: z.string(),
    title: z.string(),
    html: z.string().meta({ description: 'Rendered from Markdown and sanitised' }),
    publishedAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'PublicPage' });
export type PublicPage = z.infer<typeof publicPage>;

export const newsList = z
  .object({ items: z.array(publicPage), total: z.number().int(), page: z.number().int(), pageSize: z.number().int() })
  .meta({ id: 'NewsList' });
export type NewsList = z.infer<typeof newsList>;

export const guideEntry = z.object({ slug: z.string(), title: z.string(), publishedAt: timestamp, updatedAt: timestamp }).meta({ id: 'GuideEntry' });
export type GuideEntry = z.infer<typeof guideEntry>;

export const guideContents = z.object({ items: z.array(guideEntry) }).meta({ id: 'GuideContents' });
export type GuideContents = z.infer<typeof guideContents>;

/** What administrators list: a page without its text. */
export const adminPageSummary = z
  .object({
    id: z.number().int(),
    kind: z.enum(PAGE_KINDS),
    slug: z.string(),
    title: z.string(),
    position: z.number().int(),
    published: z.boolean(),
    publishedAt: timestamp.nullable(),
    authorId: z.number().int().nullable(),
    createdAt: timestamp,
    updatedAt: timestamp,
  })
  .meta({ id: 'AdminPageSummary' });
export type AdminPageSummary = z.infer<typeof adminPageSummary>;

/** What administrators edit: the Markdown and its rendering, drafts included. */
export const adminPage = adminPageSummary.extend({ body: z.string(), html: z.string() }).meta({ id: 'AdminPage' });
export type AdminPage = z.infer<typeof adminPage>;

export const adminPageList = z.object({ items: z.array(adminPageSummary) }).meta({ id: 'AdminPageList' });
export type AdminPageList = z.infer<typeof adminPageList>;
