import type { Page, PagesRepository } from './pages.repository.js';

export const DEFAULT_GUIDE_SLUG = 'getting-started';

const BODY = `Slidebank shares de-identified, pathologist-annotated whole-slide images with researchers.
What you can do depends on your access level:

| Level | Who | What you can do |
|:--|:--|:--|
| L0 | anyone, without an account | read this guide and the news, and see what the collection holds (counts by organ, stain and annotation method; the datasets and their releases) |
| L1 | registered, e-mail confirmed | search the catalog, view slides and their annotations |
| L2 | with an approved data use agreement | download slides and annotations |
| L3 | members of a partner institution | everything above, plus export bundles |

## 1. Register and confirm your address

Register with your name, institution and e-mail address. We send you a link: open it to
confirm the address, and your account becomes level L1.

## 2. Apply for a data use agreement

To download data, apply for a data use agreement (DUA): describe the research purpose, the
project and its principal investigator. An administrator approves or rejects the application
and you hear by e-mail either way. An approved agreement makes you L2 for one year.

## 3. View slides

Open a slide from the catalog. Besides panning and zooming, the viewer's side panel measures
distances and areas in µm, lists the annotation's regions (click one to go there), adjusts
brightness, contrast and gamma, rotates the view, shows two slides side by side, and exports the
annotation as GeoJSON.

## 4. Download

Choose slides in the catalog (your selection is kept when you reload) and download them one by
one, or as a ZIP archive with a checksum manifest that your browser's own download manager
fetches; the size is shown before you start. For a whole search, "Download all N results" offers
the ZIP when it is within the limits and always a manifest with the \`slidebank fetch\` command
to paste. For scripts, create a personal access token in your account and send it as
\`Authorization: Bearer <token>\`.

## 5. Report once a year

Before your agreement runs out, file an annual usage report: what you used the data for, your
results and publications (with DOIs). An approved report renews the agreement for another year.
We remind you 30 and 7 days ahead; without a report your account returns to L1 and downloads stop.
`;

/**
 * Seeds the user guide with a published "Getting started" page when it has
 * no pages at all (the first start). Returns the page it created, or
 * undefined when the guide had pages already. An administrator may edit or
 * delete it; it comes back only if the guide is ever left empty.
 */
export async function ensureDefaultGuide(pages: PagesRepository, now = new Date()): Promise<Page | undefined> {
  if ((await pages.count('guide')) > 0) return undefined;
  return pages.create(
    { kind: 'guide', slug: DEFAULT_GUIDE_SLUG, title: 'Getting started', body: BODY, position: 0, publishedAt: now, authorId: null },
    now,
  );
}
