import test, { type ExecutionContext } from 'ava';
import { UsersRepository } from '../../server/access/users.repository.js';
import type { AuditEvent, AuditLog } from '../../server/audit/index.js';
import { AuditRepository } from '../../server/audit/index.js';
import { isUniqueViolation } from '../../server/db/index.js';
import { AppError } from '../../server/errors.js';
import { DEFAULT_GUIDE_SLUG, ensureDefaultGuide, PagesRepository, PagesService, type NewPage } from '../../server/pages/index.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

async function setup(t: ExecutionContext) {
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const clock = { now: new Date('2026-11-29T09:00:00.000Z') };
  const pages = new PagesRepository(database.db.knex);
  const audit = new AuditRepository(database.db.knex, () => clock.now);
  const users = new UsersRepository(database.db.knex);
  const admin = await users.create({ email: 'admin@example.org', passwordHash: null, level: 'L1', roles: ['admin'], emailConfirmedAt: clock.now });
  return { database, clock, pages, audit, service: new PagesService(pages, audit, () => clock.now), users, admin: admin.id };
}

const draft = (fields: Partial<NewPage> = {}): NewPage => ({
  kind: 'news',
  slug: 'hello',
  title: 'Hello',
  body: 'Hi **there**',
  position: 0,
  publishedAt: null,
  authorId: null,
  ...fields,
});

test(`pages are stored and listed: news newest first, the guide by position then title, drafts and future dates hidden, on ${testDialect}`, async (t) => {
  const { pages } = await setup(t);
  const now = new Date('2026-11-29T09:00:00.000Z');
  const at = (iso: string) => new Date(iso);
  await pages.create(draft({ slug: 'old', publishedAt: at('2026-01-01T00:00:00Z') }), now);
  await pages.create(draft({ slug: 'new', publishedAt: at('2026-11-01T00:00:00Z') }), now);
  await pages.create(draft({ slug: 'draft' }), now);
  await pages.create(draft({ slug: 'tomorrow', publishedAt: at('2026-11-30T00:00:00Z') }), now);
  await pages.create(draft({ kind: 'guide', slug: 'b', title: 'Beta', position: 1, publishedAt: now }), now);
  await pages.create(draft({ kind: 'guide', slug: 'a', title: 'Alpha', position: 1, publishedAt: now }), now);
  await pages.create(draft({ kind: 'guide', slug: 'z', title: 'Zulu', position: 0, publishedAt: now }), now);

  const news = await pages.listPublished('news', { limit: 10, offset: 0 }, now);
  t.deepEqual(news.items.map((p) => p.slug), ['new', 'old']);
  t.is(news.total, 2);
  t.deepEqual((await pages.listPublished('news', { limit: 1, offset: 1 }, now)).items.map((p) => p.slug), ['old']);
  t.deepEqual((await pages.listPublished('guide', { limit: 10, offset: 0 }, now)).items.map((p) => p.slug), ['z', 'a', 'b']);
  t.is(await pages.findPublished('news', 'draft', now), undefined);
  t.is(await pages.findPublished('news', 'tomorrow', now), undefined);
  t.is(await pages.findPublished('guide', 'new', now), undefined, 'slugs belong to a kind');
  const found = await pages.findPublished('news', 'new', now);
  t.like(found, { kind: 'news', slug: 'new', title: 'Hello', body: 'Hi **there**', position: 0, authorId: null });
  t.is(found!.publishedAt!.toISOString(), '2026-11-01T00:00:00.000Z');
  t.is(found!.createdAt.toISOString(), now.toISOString());
  t.is((await pages.listAll()).length, 7);
  t.is((await pages.listAll('guide')).length, 3);
});

test(`a slug is unique within its kind, and a page outlives its author, on ${testDialect}`, async (t) => {
  const { pages, users, database } = await setup(t);
  const now = new Date();
  const author = await users.create({ email: 'editor@example.org', passwordHash: null, level: 'L1', roles: ['admin'], emailConfirmedAt: now });
  const page = await pages.create(draft({ authorId: author.id }), now);
  const error = await t.throwsAsync(pages.create(draft(), now), { any: true });
  t.true(isUniqueViolation(error));
  await t.notThrowsAsync(pages.create(draft({ kind: 'guide' }), now));
  await database.db.knex('users').where({ id: author.id }).delete();
  t.is((await pages.findById(page.id))!.authorId, null);
});

test(`publishing is conditional: a second publish or unpublish changes nothing, on ${testDialect}`, async (t) => {
  const { pages } = await setup(t);
  const now = new Date('2026-11-29T09:00:00.000Z');
  const page = await pages.create(draft(), now);
  const published = await pages.setPublishedAt(page.id, now, now);
  t.is(published!.publishedAt!.toISOString(), now.toISOString());
  t.is(await pages.setPublishedAt(page.id, new Date('2027-01-01T00:00:00Z'), now), undefined);
  t.is((await pages.findById(page.id))!.publishedAt!.toISOString(), now.toISOString());
  t.like(await pages.setPublishedAt(page.id, null, now), { publishedAt: null });
  t.is(await pages.setPublishedAt(page.id, null, now), undefined);
  t.is(await pages.setPublishedAt(9999, now, now), undefined);
});

test(`each change is audited in its transaction, with actor, address and what changed, on ${testDialect}`, async (t) => {
  const { service, audit, clock, admin } = await setup(t);
  const actor = { actorId: admin, ip: '192.0.2.1' };
  const created = await service.create({ kind: 'guide', slug: 'faq', title: 'FAQ', body: '# Questions' }, actor);
  t.like(created, { kind: 'guide', slug: 'faq', published: false, publishedAt: null, authorId: admin, position: 0 });
  t.is(created.html, '<h1>Questions</h1>\n');
  clock.now = new Date('2026-11-29T10:00:00.000Z');
  const updated = await service.update(created.id, { slug: 'questions', title: 'FAQ', body: '# Questions?' }, actor);
  t.is(updated.updatedAt.toISOString(), '2026-11-29T10:00:00.000Z');
  t.is((await service.update(created.id, { slug: 'questions', title: 'FAQ', body: '# Questions?' }, actor)).updatedAt.toISOString(), updated.updatedAt.toISOString(), 'no change, no write');
  await service.publish(created.id, actor);
  await service.unpublish(created.id, actor);
  await service.delete(created.id, actor);

  const { items } = await audit.list({ subjectType: 'page', subjectId: String(created.id), limit: 10, offset: 0 });
  t.deepEqual(
    items.reverse().map((e) => [e.action, e.actorId, e.ip, e.details]),
    [
      ['page.created', admin, '192.0.2.1', { kind: 'guide', slug: 'faq', title: 'FAQ', published: false }],
      ['page.updated', admin, '192.0.2.1', { kind: 'guide', slug: 'questions', changed: ['slug', 'body'], previousSlug: 'faq' }],
      ['page.published', admin, '192.0.2.1', { kind: 'guide', slug: 'questions' }],
      ['page.unpublished', admin, '192.0.2.1', { kind: 'guide', slug: 'questions' }],
      ['page.deleted', admin, '192.0.2.1', { kind: 'guide', slug: 'questions', title: 'FAQ' }],
    ],
  );
});

test(`when the audit record cannot be written, the change is not made either, on ${testDialect}`, async (t) => {
  const { pages, admin } = await setup(t);
  const failing: AuditLog = {
    async record(_event: AuditEvent) {
      throw new Error('audit log unavailable');
    },
  };
  const service = new PagesService(pages, failing);
  await t.throwsAsync(service.create({ kind: 'news', slug: 'x', title: 'X', body: '' }, { actorId: admin }), { message: 'audit log unavailable' });
  t.deepEqual(await pages.listAll(), []);
});

test(`publish and unpublish refuse a page already in that state with 409, and a missing page with 404, on ${testDialect}`, async (t) => {
  const { service, admin } = await setup(t);
  const actor = { actorId: admin };
  const page = await service.create({ kind: 'news', slug: 'x', title: 'X', body: '', publish: true }, actor);
  t.true(page.published);
  const again = await t.throwsAsync(service.publish(page.id, actor), { instanceOf: AppError });
  t.like(again, { status: 409, code: 'already_published' });
  await service.unpublish(page.id, actor);
  t.like(await t.throwsAsync(service.unpublish(page.id, actor), { instanceOf: AppError }), { status: 409, code: 'not_published' });
  t.like(await t.throwsAsync(service.publish(9999, actor), { instanceOf: AppError }), { status: 404, code: 'page_not_found' });
  t.like(await t.throwsAsync(service.delete(9999, actor), { instanceOf: AppError }), { status: 404, code: 'page_not_found' });
});

test(`ensureDefaultGuide seeds a published "Getting started" once, and never over an existing guide, on ${testDialect}`, async (t) => {
  const { pages, service, admin } = await setup(t);
  const now = new Date('2026-11-29T00:00:00.000Z');
  const seeded = await ensureDefaultGuide(pages, now);
  t.like(seeded, { kind: 'guide', slug: DEFAULT_GUIDE_SLUG, title: 'Getting started', authorId: null });
  t.is(seeded!.publishedAt!.toISOString(), now.toISOString());
  t.is(await ensureDefaultGuide(pages, now), undefined, 'the second start adds nothing');
  t.is((await pages.listAll('guide')).length, 1);

  const page = await service.getPublished('guide', DEFAULT_GUIDE_SLUG);
  t.regex(page.html, /<table>/);
  t.regex(page.html, /<h2>1\. Register and confirm your address<\/h2>/);

  // An administrator who replaced it with their own guide does not get it back.
  await service.delete(seeded!.id, { actorId: admin });
  await service.create({ kind: 'guide', slug: 'our-guide', title: 'Our guide', body: 'x' }, { actorId: admin });
  t.is(await ensureDefaultGuide(pages, now), undefined);
  t.deepEqual((await pages.listAll('guide')).map((p) => p.slug), ['our-guide']);
});
