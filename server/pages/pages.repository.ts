import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

export const PAGE_KINDS = ['news', 'guide'] as const;
export type PageKind = (typeof PAGE_KINDS)[number];

export interface Page {
  id: number;
  kind: PageKind;
  slug: string;
  title: string;
  /** Markdown. */
  body: string;
  position: number;
  publishedAt: Date | null;
  authorId: number | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface NewPage {
  kind: PageKind;
  slug: string;
  title: string;
  body: string;
  position: number;
  publishedAt: Date | null;
  authorId: number | null;
}

export type PageChanges = Partial<Pick<Page, 'slug' | 'title' | 'body' | 'position'>>;

interface PageRow {
  id: number;
  kind: PageKind;
  slug: string;
  title: string;
  body: string;
  position: number;
  published_at: string | null;
  author_id: number | null;
  created_at: string;
  updated_at: string;
}

/** Every query on news and user-guide pages. */
export class PagesRepository {
  constructor(private readonly knex: Knex) {}

  /** Run `work` in one transaction; repositories given `trx` join it. */
  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    return this.knex.transaction(work);
  }

  /** A duplicate (kind, slug) raises the database's unique violation. */
  async create(page: NewPage, now: Date, trx: Knex = this.knex): Promise<Page> {
    const [inserted] = await trx('pages')
      .insert({
        kind: page.kind,
        slug: page.slug,
        title: page.title,
        body: page.body,
        position: page.position,
        published_at: page.publishedAt ? toDbTime(page.publishedAt) : null,
        author_id: page.authorId,
        created_at: toDbTime(now),
        updated_at: toDbTime(now),
      })
      .returning('id');
    const id = typeof inserted === 'object' ? (inserted as { id: number }).id : (inserted as number);
    const created = await this.findById(id, trx);
    if (!created) throw new Error(`page ${id} vanished inside its own transaction`);
    return created;
  }

  /** The page after the change, or undefined when there is no such page. */
  async update(id: number, changes: PageChanges, now: Date, trx: Knex = this.knex): Promise<Page | undefined> {
    const row: Record<string, unknown> = { updated_at: toDbTime(now) };
    if (changes.slug !== undefined) row.slug = changes.slug;
    if (changes.title !== undefined) row.title = changes.title;
    if (changes.body !== undefined) row.body = changes.body;
    if (changes.position !== undefined) row.position = changes.position;
    const count = await trx('pages').where({ id }).update(row);
    return count === 0 ? undefined : this.findById(id, trx);
  }

  /**
   * Publish (a date) or unpublish (null) a page that is not so already, in one
   * conditional statement so that two administrators cannot both do it.
   * Undefined when the page is missing or already in that state.
   */
  async setPublishedAt(id: number, publishedAt: Date | null, now: Date, trx: Knex = this.knex): Promise<Page | undefined> {
    const query = trx('pages').where({ id });
    if (publishedAt === null) query.whereNotNull('published_at');
    else query.whereNull('published_at');
    const count = await query.update({ published_at: publishedAt ? toDbTime(publishedAt) : null, updated_at: toDbTime(now) });
    return count === 0 ? undefined : this.findById(id, trx);
  }

  async delete(id: number, trx: Knex = this.knex): Promise<boolean> {
    return (await trx('pages').where({ id }).delete()) > 0;
  }

  async findById(id: number, trx: Knex = this.knex): Promise<Page | undefined> {
    const row = await trx<PageRow>('pages').where({ id }).first();
    return row ? toPage(row) : undefined;
  }

  /** A page readers may see: published at or before `now`. */
  async findPublished(kind: PageKind, slug: string, now: Date): Promise<Page | undefined> {
    const row = await this.published(kind, now).where({ slug }).first();
    return row ? toPage(row) : undefined;
  }

  /** Published news newest first; the guide in its table-of-contents order. */
  async listPublished(kind: PageKind, window: { limit: number; offset: number }, now: Date): Promise<{ items: Page[]; total: number }> {
    const [rows, count] = await Promise.all([
      ordered(this.published(kind, now), kind).limit(window.limit).offset(window.offset),
      this.published(kind, now).count({ n: '*' }).first(),
    ]);
    return { items: rows.map(toPage), total: Number(count?.n ?? 0) };
  }

  /** Every page of a kind (or of both), drafts included, for administrators. */
  async listAll(kind?: PageKind): Promise<Page[]> {
    const query = this.knex<PageRow>('pages');
    if (kind !== undefined) query.where({ kind });
    return (await query.orderBy('kind').orderBy('id', 'desc')).map(toPage);
  }

  async count(kind: PageKind): Promise<number> {
    const result = await this.knex('pages').where({ kind }).count({ n: '*' }).first();
    return Number(result?.n ?? 0);
  }

  private published(kind: PageKind, now: Date): Knex.QueryBuilder<PageRow> {
    return this.knex<PageRow>('pages').where({ kind }).whereNotNull('published_at').andWhere('published_at', '<=', toDbTime(now));
  }
}

function ordered(query: Knex.QueryBuilder<PageRow>, kind: PageKind): Knex.QueryBuilder<PageRow> {
  return kind === 'news'
    ? query.orderBy('published_at', 'desc').orderBy('id', 'desc')
    : query.orderBy('position', 'asc').orderBy('title', 'asc').orderBy('id', 'asc');
}

function toPage(row: PageRow): Page {
  return {
    id: Number(row.id),
    kind: row.kind,
    slug: row.slug,
    title: row.title,
    body: row.body,
    position: Number(row.position),
    publishedAt: row.published_at ? fromDbTime(row.published_at) : null,
    authorId: row.author_id === null ? null : Number(row.author_id),
    createdAt: fromDbTime(row.created_at),
    updatedAt: fromDbTime(row.updated_at),
  };
}
