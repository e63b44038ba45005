import { Marked } from 'marked';
import sanitizeHtml from 'sanitize-html';

/**
 * Markdown to HTML that is safe to put into the page: marked renders
 * (GitHub-flavoured, raw HTML passed through), then sanitize-html keeps only
 * an allow-list of elements and attributes. No scripts, styles, frames or
 * forms; no event handlers; links and images only to http(s), mailto (links)
 * or relative addresses, so `javascript:` and `data:` URLs are dropped
 * however they are spelled.
 *
 * Pages are rendered when read, not when saved, so that a tightened policy
 * applies to every page at once.
 */

const marked = new Marked({ gfm: true, breaks: false, async: false });

const POLICY: sanitizeHtml.IOptions = {
  allowedTags: [
    ...sanitizeHtml.defaults.allowedTags.filter((tag) => tag !== 'main'),
    'h1',
    'h2',
    'img',
    'del',
    's',
  ],
  allowedAttributes: {
    a: ['href', 'title', 'rel'],
    img: ['src', 'alt', 'title', 'width', 'height'],
    th: ['align', 'colspan', 'rowspan'],
    td: ['align', 'colspan', 'rowspan'],
    ol: ['start'],
  },
  // Fenced code keeps its language class (for highlighting); allowedClasses lets `class` through for these values only.
  allowedClasses: { code: [/^language-[\w+-]+$/] },
  allowedSchemes: ['http', 'https', 'mailto'],
  allowedSchemesByTag: { img: ['http', 'https'] },
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite'],
  allowProtocolRelative: false,
  disallowedTagsMode: 'discard',
  // Links that leave the site open without handing it the reader's page.
  transformTags: {
    a: (tagName, attribs) => ({
      tagName,
      attribs: /^https?:/i.test(attribs.href ?? '') ? { ...attribs, rel: 'noopener noreferrer nofollow' } : attribs,
    }),
  },
};

export function renderMarkdown(markdown: string): string {
  const html = marked.parse(markdown) as string;
  return sanitizeHtml(html, POLICY);
}
