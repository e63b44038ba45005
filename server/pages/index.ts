export { PagesRepository, PAGE_KINDS, type Page, type PageKind, type NewPage, type PageChanges } from './pages.repository.js';
export {
  PagesService,
  parsePageId,
  PAGE_LIMITS,
  NEWS_PAGE_SIZE,
  type AdminPage,
  type AdminPageSummary,
  type GuideEntry,
  type PublicPage,
} from './pages.service.js';
export { ensureDefaultGuide, DEFAULT_GUIDE_SLUG } from './default-guide.js';
export { renderMarkdown } from './markdown.js';
