import type { Knex } from 'knex';
import { z } from 'zod';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation } from '../db/index.js';
import { AppError, badRequest, notFound } from '../errors.js';
import { renderMarkdown } from './markdown.js';
import { PAGE_KINDS, type Page, type PageChanges, type PageKind, type PagesRepository } from './pages.repository.js';

/** Query parameters as Koa parses them. */
export type QueryParameters = Record<string, string | string[] | undefined>;

export const PAGE_LIMITS = { title: 200, slug: 100, bodyBytes: 100_000, position: 1_000_000 } as const;
export const NEWS_PAGE_SIZE = { default: 10, max: 50 } as const;
/** The guide is a table of contents, listed whole up to this many pages. */
const GUIDE_LIST_MAX = 1000;

/** What anyone (L0 included) reads. */
export interface PublicPage {
  slug: string;
  title: string;
  /** Rendered from Markdown and sanitised. */
  html: string;
  publishedAt: Date;
  updatedAt: Date;
}

export interface GuideEntry {
  slug: string;
  title: string;
  publishedAt: Date;
  updatedAt: Date;
}

/** What administrators edit: the Markdown too, drafts included. */
export interface AdminPage {
  id: number;
  kind: PageKind;
  slug: string;
  title: string;
  body: string;
  html: string;
  position: number;
  published: boolean;
  publishedAt: Date | null;
  authorId: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export type AdminPageSummary = Omit<AdminPage, 'body' | 'html'>;

/**
 * News and the user guide: Markdown pages that administrators write and
 * anyone reads once published. Every change is recorded in the audit log in
 * the transaction that makes it (`page.created`, `page.updated`,
 * `page.published`, `page.unpublished`, `page.deleted`).
 */
export class PagesService {
  constructor(
    private readonly pages: PagesRepository,
    private readonly audit: AuditLog,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** `GET /api/news`: published news, newest first, a page at a time. */
  async listNews(query: QueryParameters): Promise<{ items: PublicPage[]; total: number; page: number; pageSize: number }> {
    const { page, pageSize } = parseQuery(newsQuery, query);
    const size = pageSize ?? NEWS_PAGE_SIZE.default;
    const number = page ?? 1;
    const { items, total } = await this.pages.listPublished('news', { limit: size, offset: (number - 1) * size }, this.clock());
    return { items: items.map(toPublic), total, page: number, pageSize: size };
  }

  /** `GET /api/guide`: the published guide pages in table-of-contents order. */
  async listGuide(query: QueryParameters): Promise<{ items: GuideEntry[] }> {
    parseQuery(noQuery, query);
    const { items } = await this.pages.listPublished('guide', { limit: GUIDE_LIST_MAX, offset: 0 }, this.clock());
    return { items: items.map(({ slug, title, publishedAt, updatedAt }) => ({ slug, title, publishedAt: publishedAt!, updatedAt })) };
  }

  /** One published page; drafts and unknown slugs are the same 404. */
  async getPublished(kind: PageKind, slug: string | undefined): Promise<PublicPage> {
    const page = slug !== undefined && SLUG.test(slug) ? await this.pages.findPublished(kind, slug, this.clock()) : undefined;
    if (!page) throw notFound('page_not_found', `There is no published ${kind === 'news' ? 'news item' : 'guide page'} "${slug ?? ''}"`);
    return toPublic(page);
  }

  async listAll(query: QueryParameters): Promise<{ items: AdminPageSummary[] }> {
    const { kind } = parseQuery(adminListQuery, query);
    const pages = await this.pages.listAll(kind);
    return { items: pages.map((page) => summary(page)) };
  }

  async get(id: number): Promise<AdminPage> {
    return toAdmin(await this.existing(id));
  }

  async create(input: unknown, actor: AuditActor): Promise<AdminPage> {
    const fields = parseBody(createBody, input);
    const now = this.clock();
    const page = await this.write(fields.kind, fields.slug, (trx) =>
      this.pages.create(
        {
          kind: fields.kind,
          slug: fields.slug,
          title: fields.title,
          body: fields.body,
          position: fields.position ?? 0,
          publishedAt: fields.publish ? now : null,
          authorId: actor.actorId,
        },
        now,
        trx,
      ),
      (created) => ({ action: 'page.created', details: { kind: created.kind, slug: created.slug, title: created.title, published: created.publishedAt !== null } }),
      actor,
    );
    return toAdmin(page);
  }

  /** Replaces slug, title and body (and position, when given). A request that changes nothing writes nothing. */
  async update(id: number, input: unknown, actor: AuditActor): Promise<AdminPage> {
    const fields = parseBody(updateBody, input);
    const before = await this.existing(id);
    const changes: PageChanges = {};
    if (fields.slug !== before.slug) changes.slug = fields.slug;
    if (fields.title !== before.title) changes.title = fields.title;
    if (fields.body !== before.body) changes.body = fields.body;
    if (fields.position !== undefined && fields.position !== before.position) changes.position = fields.position;
    const changed = Object.keys(changes);
    if (changed.length === 0) return toAdmin(before);
    const page = await this.write(
      before.kind,
      fields.slug,
      async (trx) => (await this.pages.update(id, changes, this.clock(), trx)) ?? throwNotFound(id),
      (after) => ({ action: 'page.updated', details: { kind: after.kind, slug: after.slug, changed, ...(changes.slug ? { previousSlug: before.slug } : {}) } }),
      actor,
    );
    return toAdmin(page);
  }

  async publish(id: number, actor: AuditActor): Promise<AdminPage> {
    return this.setPublished(id, true, actor);
  }

  async unpublish(id: number, actor: AuditActor): Promise<AdminPage> {
    return this.setPublished(id, false, actor);
  }

  async delete(id: number, actor: AuditActor): Promise<void> {
    const before = await this.existing(id);
    await this.pages.transaction(async (trx) => {
      if (!(await this.pages.delete(id, trx))) throwNotFound(id);
      await this.audit.record(
        { action: 'page.deleted', actorId: actor.actorId, ip: actor.ip ?? null, subjectType: 'page', subjectId: id, details: { kind: before.kind, slug: before.slug, title: before.title } },
        trx,
      );
    });
  }

  private async setPublished(id: number, publish: boolean, actor: AuditActor): Promise<AdminPage> {
    const now = this.clock();
    const page = await this.write(
      undefined,
      undefined,
      async (trx) => (await this.pages.setPublishedAt(id, publish ? now : null, now, trx)) ?? stateConflict(id, publish, await this.pages.findById(id, trx)),
      (after) => ({ action: publish ? 'page.published' : 'page.unpublished', details: { kind: after.kind, slug: after.slug } }),
      actor,
    );
    return toAdmin(page);
  }

  /** One change and its audit record in one transaction; a taken slug is a 409. */
  private async write(
    kind: PageKind | undefined,
    slug: string | undefined,
    change: (trx: Knex.Transaction) => Promise<Page>,
    event: (page: Page) => { action: string; details: Record<string, unknown> },
    actor: AuditActor,
  ): Promise<Page> {
    try {
      return await this.pages.transaction(async (trx) => {
        const page = await change(trx);
        await this.audit.record({ ...event(page), actorId: actor.actorId, ip: actor.ip ?? null, subjectType: 'page', subjectId: page.id }, trx);
        return page;
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AppError(409, 'slug_taken', `A ${kind === 'news' ? 'news item' : 'guide page'} with the slug "${slug}" exists already; choose another slug`);
      }
      throw error;
    }
  }

  private async existing(id: number): Promise<Page> {
    return (await this.pages.findById(id)) ?? throwNotFound(id);
  }
}

/** A page id from the path; anything else is a page that does not exist. */
export function parsePageId(text: string | undefined): number {
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw notFound('page_not_found', `There is no page "${text ?? ''}"`);
  }
  return Number(text);
}

function stateConflict(id: number, publish: boolean, page: Page | undefined): never {
  if (!page) throwNotFound(id);
  if (publish) {
    throw new AppError(409, 'already_published', `Page ${id} ("${page.slug}") has been published since ${page.publishedAt!.toISOString()}`);
  }
  throw new AppError(409, 'not_published', `Page ${id} ("${page.slug}") is a draft already`);
}

function throwNotFound(id: number): never {
  throw notFound('page_not_found', `There is no page ${id}`);
}

function toPublic(page: Page): PublicPage {
  return { slug: page.slug, title: page.title, html: renderMarkdown(page.body), publishedAt: page.publishedAt!, updatedAt: page.updatedAt };
}

function summary(page: Page): AdminPageSummary {
  const { body: _body, ...rest } = page;
  return { ...rest, published: page.publishedAt !== null };
}

function toAdmin(page: Page): AdminPage {
  return { ...summary(page), body: page.body, html: renderMarkdown(page.body) };
}

// ---- validation ------------------------------------------------------------

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

const createBody = z.strictObject({
  kind: z.enum(PAGE_KINDS, { error: `kind must be ${PAGE_KINDS.join(' or ')}` }),
  slug,
  title,
  body,
  position: position.optional(),
  /** Publish at once instead of saving a draft. */
  publish: z.boolean({ error: 'publish must be true or false' }).optional(),
});

const updateBody = z.strictObject({ slug, title, body, position: position.optional() });

/** Reports every problem at once: `400 invalid_page` with `details.problems: [{field, message}]`. */
function parseBody<T>(schema: z.ZodType<T>, input: unknown): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw badRequest('invalid_page', 'The request body must be a JSON object with the page’s fields');
  }
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const given = input as Record<string, unknown>;
  const problems = parsed.error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ field: key, message: `${key} is not a page field here` }));
    const field = String(issue.path[0] ?? '');
    return [{ field, message: given[field] === undefined && field !== '' ? `${field} is missing` : issue.message }];
  });
  throw badRequest('invalid_page', problems.map((p) => p.message).join('; '), { problems });
}

const once = (parameter: string) =>
  z.string({ error: (issue) => (Array.isArray(issue.input) ? `${parameter} is given more than once; give it once` : `${parameter} must be text`) });
const wholeNumber = (parameter: string, min: number, max: number) =>
  once(parameter)
    .regex(/^\d{1,10}$/, `${parameter} must be a whole number from ${min} to ${max}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${parameter} must be a whole number from ${min} to ${max}`);

const newsQuery = z.strictObject({ page: wholeNumber('page', 1, 1_000_000), pageSize: wholeNumber('pageSize', 1, NEWS_PAGE_SIZE.max) }).partial();
const noQuery = z.strictObject({});
const adminListQuery = z.strictObject({ kind: once('kind').pipe(z.enum(PAGE_KINDS, { error: `kind must be ${PAGE_KINDS.join(' or ')}` })) }).partial();

function parseQuery<T>(schema: z.ZodType<T>, query: QueryParameters): T {
  const parsed = schema.safeParse({ ...query });
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ parameter: key, message: `${key} is not a parameter here` }))
      : [{ parameter: String(issue.path[0] ?? ''), message: issue.message }],
  );
  throw badRequest('invalid_query', problems.map((p) => p.message).join('; '), { problems });
}
