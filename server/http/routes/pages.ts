import { z } from 'zod';
import { PAGE_KINDS } from '../../pages/pages.repository.js';
import { NEWS_PAGE_SIZE, PAGE_LIMITS } from '../../pages/pages.service.js';
import { adminPage, adminPageList, guideContents, newsList, publicPage } from '../../pages/views.js';
import { adminOnly, publicAccess } from '../access.js';
import { actorOf } from '../actor.js';
import { noStore } from '../middleware/cache-control.js';
import { idParam, wholeQuery } from '../params.js';
import { route } from '../route.js';

/** News and the user guide: published pages for anyone, Markdown editing for administrators (every write audited). */

const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

const slug = z
  .string({ error: 'slug must be text' })
  .min(1, 'slug is empty')
  .max(PAGE_LIMITS.slug, `slug is at most ${PAGE_LIMITS.slug} characters`)
  .regex(SLUG, 'slug must be lower-case letters and digits in words joined by single hyphens, such as getting-started');

const title = z
  .string({ error: 'title must be text' })
  .trim()
  .min(1, 'title is empty')
  .max(PAGE_LIMITS.title, `title is at most ${PAGE_LIMITS.title} characters`)
  // eslint-disable-next-line no-control-regex
  .refine((text) => !/[\u0000-\u001f\u007f]/.test(text), 'title is one line of text, without control characters')
  .refine((text) => !/<[a-zA-Z/!?]/.test(text), 'title is plain text: HTML tags are not allowed (the body may use Markdown)');

const body = z
  .string({ error: 'body must be Markdown text' })
  .refine((text) => Buffer.byteLength(text) <= PAGE_LIMITS.bodyBytes, {
    error: (issue) => `body is ${Buffer.byteLength(issue.input as string)} bytes; at most ${PAGE_LIMITS.bodyBytes} (100 kB) are allowed`,
  });

const position = z
  .number({ error: 'position must be a number' })
  .int('position must be a whole number')
  .min(-PAGE_LIMITS.position, `position is at least -${PAGE_LIMITS.position}`)
  .max(PAGE_LIMITS.position, `position is at most ${PAGE_LIMITS.position}`);

const pageFields = z.strictObject({ slug, title, body, position: position.optional() }).meta({ id: 'PageFields' });
const newPage = z
  .strictObject({
    kind: z.enum(PAGE_KINDS, { error: `kind must be ${PAGE_KINDS.join(' or ')}` }),
    ...pageFields.shape,
    publish: z.boolean({ error: 'publish must be true or false' }).optional().meta({ description: 'Publish at once instead of saving a draft' }),
  })
  .meta({ id: 'NewPage' });

const pageId = z.strictObject({ id: idParam('page') });
const publishedSlug = z.strictObject({
  slug: z.string().regex(SLUG, 'There is no published page with that name').meta({ 'x-not-found': 'page_not_found' }),
});
const newsQuery = z.strictObject({
  page: wholeQuery('page', 1, 1, 1_000_000),
  pageSize: wholeQuery('pageSize', NEWS_PAGE_SIZE.default, 1, NEWS_PAGE_SIZE.max),
});
const adminListQuery = z.strictObject({ kind: z.enum(PAGE_KINDS, { error: `kind must be ${PAGE_KINDS.join(' or ')}` }).optional() });

const tag = 'News and guide';

export const pageRoutes = [
  route({
    method: 'get',
    path: '/api/news',
    tag,
    summary: 'Published news, newest first, a page at a time',
    access: publicAccess,
    query: newsQuery,
    response: { description: 'A page of news', schema: newsList },
    handle: ({ query }, ctx) => ctx.services.pages.listNews(query),
  }),
  route({
    method: 'get',
    path: '/api/news/{slug}',
    tag,
    summary: 'One published news item',
    access: publicAccess,
    params: publishedSlug,
    response: { description: 'The news item, its Markdown rendered as sanitised HTML', schema: publicPage },
    handle: ({ params }, ctx) => ctx.services.pages.getPublished('news', params.slug),
  }),
  route({
    method: 'get',
    path: '/api/guide',
    tag,
    summary: "The user guide's published pages in table-of-contents order",
    access: publicAccess,
    query: z.strictObject({}),
    response: { description: 'The table of contents', schema: guideContents },
    handle: (_input, ctx) => ctx.services.pages.listGuide(),
  }),
  route({
    method: 'get',
    path: '/api/guide/{slug}',
    tag,
    summary: 'One published guide page',
    access: publicAccess,
    params: publishedSlug,
    response: { description: 'The guide page, its Markdown rendered as sanitised HTML', schema: publicPage },
    handle: ({ params }, ctx) => ctx.services.pages.getPublished('guide', params.slug),
  }),
  route({
    method: 'get',
    path: '/api/admin/pages',
    tag,
    summary: 'Every page, drafts included',
    access: adminOnly,
    query: adminListQuery,
    before: [noStore],
    response: { description: 'The pages, without their text', schema: adminPageList },
    handle: ({ query }, ctx) => ctx.services.pages.listAll(query),
  }),
  route({
    method: 'get',
    path: '/api/admin/pages/{id}',
    tag,
    summary: 'One page with its Markdown',
    access: adminOnly,
    params: pageId,
    before: [noStore],
    response: { description: 'The page', schema: adminPage },
    handle: ({ params }, ctx) => ctx.services.pages.get(params.id),
  }),
  route({
    method: 'post',
    path: '/api/admin/pages',
    tag,
    summary: 'Write a news item or guide page, as a draft or published at once',
    access: adminOnly,
    body: newPage,
    before: [noStore],
    response: { status: 201, description: 'The page as saved; Location names it', schema: adminPage },
    handle: async ({ body }, ctx) => {
      const page = await ctx.services.pages.create(body, actorOf(ctx));
      ctx.set('Location', `/api/admin/pages/${page.id}`);
      return page;
    },
  }),
  route({
    method: 'put',
    path: '/api/admin/pages/{id}',
    tag,
    summary: "Replace a page's slug, title and body (and position, when given)",
    access: adminOnly,
    params: pageId,
    body: pageFields,
    before: [noStore],
    response: { description: 'The page as saved', schema: adminPage },
    handle: ({ params, body }, ctx) => ctx.services.pages.update(params.id, body, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/pages/{id}/publish',
    tag,
    summary: 'Publish a draft',
    access: adminOnly,
    params: pageId,
    before: [noStore],
    response: { description: 'The published page', schema: adminPage },
    handle: ({ params }, ctx) => ctx.services.pages.publish(params.id, actorOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/pages/{id}/unpublish',
    tag,
    summary: 'Take a page back to a draft',
    access: adminOnly,
    params: pageId,
    before: [noStore],
    response: { description: 'The page, a draft again', schema: adminPage },
    handle: ({ params }, ctx) => ctx.services.pages.unpublish(params.id, actorOf(ctx)),
  }),
  route({
    method: 'delete',
    path: '/api/admin/pages/{id}',
    tag,
    summary: 'Delete a page',
    access: adminOnly,
    params: pageId,
    response: { status: 204, description: 'Deleted' },
    handle: async ({ params }, ctx) => {
      await ctx.services.pages.delete(params.id, actorOf(ctx));
    },
  }),
];
