import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { isUniqueViolation, type Transaction } from '../db/index.js';
import { AppError, notFound } from '../errors.js';
import { renderMarkdown } from './markdown.js';
import type { Page, PageChanges, PageKind, PagesRepository } from './pages.repository.js';
import type { AdminPage, AdminPageList, AdminPageSummary, GuideContents, NewsList, PublicPage } from './views.js';

export const PAGE_LIMITS = { title: 200, slug: 100, bodyBytes: 100_000, position: 1_000_000 } as const;
export const NEWS_PAGE_SIZE = { default: 10, max: 50 } as const;
/** The guide is a table of contents, listed whole up to this many pages. */
const GUIDE_LIST_MAX = 1000;

/** A page's fields as an administrator writes them. */
export interface PageFields {
  slug: string;
  title: string;
  /** Markdown. */
  body: string;
  position?: number;
}

export interface NewPageFields extends PageFields {
  kind: PageKind;
  /** Publish at once instead of saving a draft. */
  publish?: boolean;
}

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
  async listNews({ page, pageSize }: { page: number; pageSize: number }): Promise<NewsList> {
    const { items, total } = await this.pages.listPublished('news', { limit: pageSize, offset: (page - 1) * pageSize }, this.clock());
    return { items: items.map(toPublic), total, page, pageSize };
  }

  /** `GET /api/guide`: the published guide pages in table-of-contents order. */
  async listGuide(): Promise<GuideContents> {
    const { items } = await this.pages.listPublished('guide', { limit: GUIDE_LIST_MAX, offset: 0 }, this.clock());
    return { items: items.map(({ slug, title, publishedAt, updatedAt }) => ({ slug, title, publishedAt: publishedAt!, updatedAt })) };
  }

  /** One published page; drafts and unknown slugs are the same 404. */
  async getPublished(kind: PageKind, slug: string): Promise<PublicPage> {
    const page = await this.pages.findPublished(kind, slug, this.clock());
    if (!page) throw notFound('page_not_found', `There is no published ${kind === 'news' ? 'news item' : 'guide page'} "${slug}"`);
    return toPublic(page);
  }

  async listAll({ kind }: { kind?: PageKind }): Promise<AdminPageList> {
    const pages = await this.pages.listAll(kind);
    return { items: pages.map((page) => summary(page)) };
  }

  async get(id: number): Promise<AdminPage> {
    return toAdmin(await this.existing(id));
  }

  async create(fields: NewPageFields, actor: AuditActor): Promise<AdminPage> {
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
  async update(id: number, fields: PageFields, actor: AuditActor): Promise<AdminPage> {
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
    change: (trx: Transaction) => Promise<Page>,
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
