export { PagesRepository, PAGE_KINDS, type Page, type PageKind, type NewPage, type PageChanges } from './pages.repository.js';
export { PagesService, PAGE_LIMITS, NEWS_PAGE_SIZE, type PageFields, type NewPageFields } from './pages.service.js';
export type { AdminPage, AdminPageSummary, GuideEntry, PublicPage } from './views.js';
export { ensureDefaultGuide, DEFAULT_GUIDE_SLUG } from './default-guide.js';
export { renderMarkdown } from './markdown.js';
