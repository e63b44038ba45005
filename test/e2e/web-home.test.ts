/**
 * The home page and the portal's shell in a real browser (Debian's chromium
 * through playwright-core) against the real server as its own process: an
 * anonymous visitor sees what the collection holds in counts (no withdrawn
 * slide, no slide's name) and the way to access; the skip link takes the
 * keyboard to the main content; on a phone the header folds into a menu
 * button that opens and closes, and nothing scrolls sideways. Screenshots go
 * to test/artifacts/ (git-ignored).
 */
import { mkdir, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { loadConfig } from '../../server/config/index.js';
import { createDatasetsService } from '../../server/datasets/index.js';
import { toDbTime } from '../../server/db/index.js';
import { packageRoot } from '../../server/package-info.js';
import { appliance } from '../support/appliance.js';
import { TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';

const SLIDES = [
  { name: 'SB1-LV-HCC-HE-A1', organ: 'LV', histology: 'HCC', stain: 'HE', method: 'M', size: 3_000_000 },
  { name: 'SB1-LV-HCC-IHC-B2', organ: 'LV', histology: 'HCC', stain: 'IHC', method: 'A', size: 2_000_000 },
  { name: 'SB1-CO-ADC-HE-C3', organ: 'CO', histology: 'ADC', stain: 'HE', method: 'M', size: 1_000_000 },
  { name: 'SB1-KI-RCC-HE-W4', organ: 'KI', histology: 'RCC', stain: 'HE', method: 'M', size: 9_000_000, withdrawn: true },
];

browserTest(`home page: the collection in counts for anyone, the skip link, the header on a phone (${testDialect})`, async (t) => {
  t.timeout(300_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-home-${name}.png`), fullPage: true });

  const { root, base, cli, serve, database, env } = await appliance(t);
  await cli(['migrate']);
  const email = 'maximilian.vandenberghe-oudshoorn@pathology-research.example';
  await cli(['user', 'add', '--email', email, '--level', 'L1', '--name', 'Maximilian van den Berghe-Oudshoorn'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const at = toDbTime(new Date());
  await database.db.knex('slides').insert(
    await Promise.all(
      SLIDES.map(async (slide, i) => {
        const file = path.join(root, `${slide.name}.svs`);
        await writeFile(file, '');
        await truncate(file, slide.size);
        return {
          name: slide.name,
          file_path: file,
          file_size: slide.size,
          sha256: String(i + 1).repeat(64),
          vendor: 'aperio',
          width: 1000,
          height: 800,
          level_count: 1,
          status: slide.withdrawn ? 'withdrawn' : 'published',
          created_at: at,
          updated_at: at,
          organ: slide.organ,
          histology: slide.histology,
          stain: slide.stain,
          annotation_method: slide.method,
          original_sha256: String(i + 1).padStart(64, 'a'),
        };
      }),
    ),
  );
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env });
  const datasets = createDatasetsService(config, database.db);
  const liver = (await database.db.knex('slides').where({ organ: 'LV' }).select('id')) as { id: number }[];
  await datasets.create('liver-hcc', 'Hepatocellular carcinoma with tumour outlines');
  await datasets.add('liver-hcc', { slides: liver.map((slide) => slide.id) });
  await datasets.release('liver-hcc', '2026.1', 'curator');
  await serve();

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Expected: the 401 of GET /api/auth/me while logged out.
      if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
    });
  };

  // --- Anonymous, on a desktop: the collection in counts and the way to access.
  const desktop = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  watch(desktop);
  await desktop.goto(`${base}/`);
  const holdings = desktop.locator('section.holdings');
  await holdings.locator('dd[data-total=slides]').waitFor();
  t.is(await holdings.locator('dd[data-total=slides]').textContent(), '3');
  t.is(await holdings.locator('dd[data-total=bytes]').textContent(), '5.7 MiB');
  const rows = async (facet: string) =>
    (await holdings.locator(`table[data-facet=${facet}] tbody tr`).allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').trim());
  t.deepEqual(await rows('organ'), ['Liver 2', 'Colon 1']);
  t.deepEqual(await rows('stain'), ['H&E 2', 'IHC 1']);
  t.deepEqual(await rows('annotationMethod'), ['manual 2', 'AI-assisted 1']);
  t.deepEqual(
    (await holdings.locator('.dataset-list > li').allInnerTexts()).map((text) => text.replace(/\s+/g, ' ').replace(/, [^:]+:/, ',…:')),
    ['liver-hcc Hepatocellular carcinoma with tumour outlines Release 2026.1,…: 2 slides'],
  );
  const text = await desktop.locator('main').innerText();
  for (const slide of SLIDES) t.false(text.includes(slide.name), `${slide.name} is not named`);
  t.false(/Kidney/.test(text), 'the withdrawn slide is not counted');
  t.is(await desktop.locator('main img').count(), 0, 'no images');
  const steps = desktop.locator('section.access-steps');
  t.deepEqual(
    (await steps.locator('ol > li').allInnerTexts()).map((step) => step.split(' ').slice(0, 3).join(' ')),
    ['Register with your', 'Confirm your e-mail', 'Apply for a', 'With an approved'],
  );
  t.is(await steps.getByRole('link', { name: 'user guide' }).getAttribute('href'), '/guide/getting-started');
  t.is(await steps.getByRole('link', { name: 'Register' }).getAttribute('href'), '/account/register');
  await shot(desktop, 'anonymous');

  // --- The skip link: the first Tab reaches it, Enter puts the focus on the main content.
  await desktop.keyboard.press('Tab');
  t.is(await desktop.evaluate<string>('document.activeElement.textContent.trim()'), 'Skip to main content');
  t.true(await desktop.locator('.skip-link').isVisible(), 'visible once focused');
  await desktop.keyboard.press('Enter');
  t.is(await desktop.evaluate<string>('document.activeElement.id'), 'main');
  t.is(await desktop.evaluate<string>('document.activeElement.tagName'), 'MAIN');
  t.is(new URL(desktop.url()).hash, '', 'the address is left alone');
  // The next Tab goes on from the main content, not from the top of the page.
  await desktop.keyboard.press('Tab');
  t.true(await desktop.evaluate<boolean>("document.querySelector('main').contains(document.activeElement)"), 'Tab continues inside main');
  t.is(await desktop.locator('.menu-button').isVisible(), false, 'no menu button on a wide screen');
  t.true(await desktop.getByRole('navigation', { name: 'Main' }).isVisible());

  // --- A phone: the header folds into a menu button, usable by keyboard; nothing scrolls sideways.
  const phone = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })).newPage();
  watch(phone);
  await phone.goto(`${base}/`);
  await phone.locator('dd[data-total=slides]').waitFor();
  const noSidewaysScroll = () => phone.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth');
  const menu = phone.getByRole('button', { name: 'Menu' });
  const nav = phone.getByRole('navigation', { name: 'Main' });
  t.true(await menu.isVisible());
  t.is(await menu.getAttribute('aria-expanded'), 'false');
  t.is(await menu.getAttribute('aria-controls'), 'site-menu');
  t.false(await nav.isVisible(), 'the navigation is folded away');
  t.true(await noSidewaysScroll(), 'closed: no sideways scroll');
  await shot(phone, 'phone-closed');

  await menu.focus();
  await phone.keyboard.press('Enter');
  t.is(await menu.getAttribute('aria-expanded'), 'true');
  t.true(await nav.isVisible());
  t.true(await phone.locator('header').getByRole('link', { name: 'Log in', exact: true }).isVisible());
  t.true(await noSidewaysScroll(), 'open: no sideways scroll');
  await shot(phone, 'phone-open');
  // Escape folds it again and gives the focus back to the button.
  await phone.keyboard.press('Tab');
  await phone.keyboard.press('Escape');
  t.is(await menu.getAttribute('aria-expanded'), 'false');
  t.false(await nav.isVisible());
  t.is(await phone.evaluate<string>('document.activeElement.className'), 'menu-button');
  // Space opens it too; following a link folds it.
  await phone.keyboard.press('Space');
  t.is(await menu.getAttribute('aria-expanded'), 'true');
  await nav.getByRole('link', { name: 'Guide' }).click();
  await phone.waitForURL(`${base}/guide`);
  t.is(await menu.getAttribute('aria-expanded'), 'false');
  t.true(await noSidewaysScroll(), 'the guide: no sideways scroll');

  // Logged in at L1, on the phone: the steps taken are marked, the organ links lead to the catalog, a long name does not widen the page.
  const member = await (await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true })).newPage();
  watch(member);
  await logInThroughPortal(member, base, email, TEST_PASSWORD, '/account');
  await member.goto(`${base}/`);
  await member.locator('dd[data-total=slides]').waitFor();
  t.deepEqual(await member.locator('section.access-steps li.done').count(), 2, 'registered and confirmed');
  t.is(await member.locator('table[data-facet=organ]').getByRole('link', { name: 'Liver' }).getAttribute('href'), '/catalog?organ=LV');
  await member.getByRole('button', { name: 'Menu' }).click();
  t.true(await member.locator('header').getByRole('link', { name: 'Catalog' }).isVisible());
  t.true(await member.evaluate<boolean>('document.documentElement.scrollWidth <= window.innerWidth'), 'logged in, menu open: no sideways scroll');
  await shot(member, 'phone-member');

  t.deepEqual(pageErrors, []);
});
