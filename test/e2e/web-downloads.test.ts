/**
 * Downloads from the catalog in a real browser (Debian's chromium through
 * playwright-core) against the real server as its own process: a researcher
 * selects slides, reloads (the selection stays), sees its size, downloads it
 * through the browser's own download manager (a signed GET link) and checks
 * the ZIP with `unzip -t`; copies the `slidebank fetch` command for all
 * results; a page past the end goes to the last page; on a phone (390×844)
 * the filters are a drawer and the page never scrolls sideways. Screenshots
 * go to test/artifacts/ (git-ignored).
 */
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';
import { makeSlide } from '../support/slides.js';

const run = promisify(execFile);

/** What the test reads in the page (this file is compiled without the DOM's types). */
interface Browserish {
  navigator: { clipboard: { readText(): Promise<string> } };
  document: { documentElement: { scrollWidth: number; clientWidth: number } };
}

browserTest(`catalog downloads: selection kept over a reload, its size, a streamed ZIP, the fetch command, the phone layout (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-downloads-${name}.png`), fullPage: true });

  const { root, base, cli, serve, database } = await appliance(t);
  await cli(['user', 'add', '--email', 'rita@lab.example', '--level', 'L3', '--name', 'Rita'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  for (const [i, name] of ['colon-a', 'colon-b', 'colon-c'].entries()) await makeSlide({ width: 1600, height: 1200, seed: 60 + i, out: inbox, name });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  const slides = (await database.db.knex('slides').orderBy('name').select('id', 'name')) as { id: number; name: string }[];
  t.is(slides.length, 3);

  await serve();
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // Expected: the 401 of GET /api/auth/me while logged out.
    if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
  });

  await logInThroughPortal(page, base, 'rita@lab.example', TEST_PASSWORD, '/catalog');
  await t.notThrowsAsync(page.getByTestId('total-line').filter({ hasText: /^\s*3 slides\s*$/ }).waitFor());

  // Select two slides: the size shows before anything is downloaded.
  const [first, second] = slides as [{ id: number; name: string }, { id: number; name: string }];
  await page.locator(`[data-slide-id="${first.id}"] .select input`).check();
  await page.locator(`[data-slide-id="${second.id}"] .select input`).check();
  const size = page.getByTestId('selection-size');
  await size.filter({ hasText: /^2 slides · [\d.]+ (KiB|MiB)$/ }).waitFor();
  t.is(await page.getByTestId('selected-count').textContent(), '2 selected');

  // The selection survives a reload.
  await page.reload();
  await page.getByTestId('selected-count').filter({ hasText: '2 selected' }).waitFor();
  t.true(await page.locator(`[data-slide-id="${first.id}"] .select input`).isChecked());
  t.true(await page.locator(`[data-slide-id="${second.id}"] .select input`).isChecked());
  await size.filter({ hasText: /^2 slides · / }).waitFor();
  const sizeText = (await size.textContent()) ?? '';
  await shot(page, '1-selection');

  // The browser's own download: a plain GET of the signed link, streamed to disk.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download-selected').click()]);
  t.is(await download.failure(), null);
  t.regex(download.suggestedFilename(), /^slidebank-\d{8}-\d{6}-2-slides\.zip$/);
  const saved = path.join(root, 'selected.zip');
  await download.saveAs(saved);
  const { stdout } = await run('/usr/bin/unzip', ['-t', saved]);
  t.regex(stdout, /No errors detected/);
  for (const slide of [first, second]) t.true(stdout.includes(`slides/${slide.name}.svs`), `${slide.name} is in the ZIP`);
  t.regex(download.url(), /\/api\/downloads\/zip\?user=\d+&slides=\d+%2C\d+&expires=\d+&signature=[\w-]{43}$/, 'the signed GET link');
  t.regex(sizeText, /^2 slides/, 'the size shown was the ZIP\'s');

  // All results: the size, and the fetch command copied to the clipboard.
  await page.getByTestId('all-results-open').click();
  await page.getByTestId('all-results-size').filter({ hasText: /^3 slides, 6 files · / }).waitFor();
  t.true(await page.getByTestId('download-all').isVisible(), 'three slides fit in a ZIP');
  const command = (await page.getByTestId('fetch-command').textContent()) ?? '';
  t.is(command, `SLIDEBANK_TOKEN=<your access token> slidebank fetch --server ${base} --filter '' --out slidebank-download`);
  await page.getByTestId('copy-fetch-command').click();
  await page.getByTestId('copy-fetch-command').filter({ hasText: 'Copied' }).waitFor();
  t.is(await page.evaluate(() => (globalThis as unknown as Browserish).navigator.clipboard.readText()), command);
  await shot(page, '2-all-results');

  // A filter narrows the command; one result reads "1 slide".
  await page.goto(`${base}/catalog?q=${encodeURIComponent(first.name)}`);
  await page.getByTestId('total-line').filter({ hasText: /^\s*1 slide\s*$/ }).waitFor();
  await page.getByTestId('all-results-open').filter({ hasText: 'Download all 1 result…' }).waitFor();
  await page.getByTestId('all-results-open').click();
  await page.getByTestId('all-results-size').filter({ hasText: /^1 slide, 2 files · / }).waitFor();
  t.regex((await page.getByTestId('fetch-command').textContent()) ?? '', new RegExp(`--filter 'q=${first.name}' --out`));

  // A page past the end shows the last page.
  await page.goto(`${base}/catalog?page=7`);
  await page.waitForURL(`${base}/catalog`, { waitUntil: 'commit' });
  await page.getByTestId('total-line').filter({ hasText: /3 slides/ }).waitFor();

  // A phone: no sideways scrolling; the filters open as a drawer.
  await page.setViewportSize({ width: 390, height: 844 });
  const sideways = () =>
    page.evaluate(() => {
      const { documentElement } = (globalThis as unknown as Browserish).document;
      return documentElement.scrollWidth - documentElement.clientWidth;
    });
  const filters = page.getByTestId('filters');
  await page.getByTestId('filters-toggle').waitFor();
  await t.notThrowsAsync(filters.waitFor({ state: 'hidden', timeout: 5000 }), 'the filters start closed on a phone');
  t.is(await sideways(), 0, 'no horizontal scroll');
  await page.getByTestId('all-results-open').click();
  await page.getByTestId('all-results-size').waitFor();
  t.is(await sideways(), 0, 'no horizontal scroll with the fetch command shown');
  await shot(page, '3-phone');
  await page.getByTestId('filters-toggle').click();
  await filters.locator('input[type=search]').waitFor({ state: 'visible' });
  t.true(await filters.locator('[data-facet=organ]').isVisible());
  // It slides in (a short transition).
  await page.waitForFunction((element) => (element as unknown as { getBoundingClientRect(): { left: number } }).getBoundingClientRect().left >= 0, await filters.elementHandle());
  const box = await filters.boundingBox();
  t.true(box !== null && box.x >= 0 && box.x + box.width <= 390, `the drawer is within the screen (${JSON.stringify(box)})`);
  t.is(await sideways(), 0, 'no horizontal scroll with the drawer open');
  await shot(page, '4-phone-drawer');
  await filters.getByRole('button', { name: /Show 3 slides/ }).click();
  await filters.waitFor({ state: 'hidden' });

  t.deepEqual(pageErrors, []);
});
