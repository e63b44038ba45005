/**
 * The portal's administration and account pages in a real browser (Debian's
 * chromium through playwright-core) against the real server as its own
 * process, as in web.test.ts: an administrator creates a partner institution
 * and adds a member, publishes a news item that then shows on the home page,
 * filters the audit log and exports it, reads a slide's de-identification
 * report and the scheduled jobs; the member changes their password and logs in
 * with the new one, and sees the slide with the overview inset. Screenshots go
 * to test/artifacts/ (git-ignored).
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { makeSlide } from '../support/slides.js';
import { logIn, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { appliance } from '../support/appliance.js';
import { testDialect } from '../support/database.js';

const NEW_PASSWORD = 'a kestrel above the meadow 77';
const NEWS_BODY = 'The new scanner is **much faster**.\n\n- one\n- two\n\n# Throughput\n\n## Per day\n\n| Scanner | Slides |\n| --- | --- |\n| old | 120 |\n| new | 400 |';

browserTest(`administration and account pages in the browser: institutions, news, audit, de-identification report, jobs, password change, overview inset (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-admin-${name}.png`), fullPage: true });

  const { root, base, site, cli, serve } = await appliance(t);

  await cli(['user', 'add', '--email', 'admin@hospital.example', '--level', 'L1', '--role', 'admin', '--name', 'Admin'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'bob@partner.example', '--level', 'L1', '--name', 'Bob'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 7, out: inbox, name: 'colon' });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);

  await serve();
  const adminApi = await logIn(site, 'admin@hospital.example');
  t.is((await adminApi.post('/api/admin/dua/versions', { version: '2027.1', title: 'Slidebank DUA', body: 'Research use only.' })).status, 201);
  const slides = await adminApi.get<{ items: { id: number }[] }>('/api/slides');
  const slideId = slides.body.items[0]!.id;

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
  const logInAs = (page: Page, email: string, password: string, next: string) => logInThroughPortal(page, base, email, password, next);

  const adminContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const admin = await adminContext.newPage();
  watch(admin);
  await logInAs(admin, 'admin@hospital.example', TEST_PASSWORD, '/admin/institutions');

  // A partner institution, and Bob added by address: he becomes L3.
  const institutionForm = admin.getByTestId('institution-form');
  await institutionForm.locator('input[name=name]').fill('Partner Lab');
  await institutionForm.locator('input[name=agreementReference]').fill('PA-2027-1');
  await institutionForm.locator('button[type=submit]').click();
  const institution = admin.locator('[data-institution="Partner Lab"]');
  await institution.waitFor();
  t.regex((await institution.textContent()) ?? '', /PA-2027-1/);
  await institution.getByRole('textbox', { name: 'Member e-mail for Partner Lab' }).fill('bob@partner.example');
  await institution.getByRole('button', { name: 'Add member' }).click();
  await admin.getByTestId('institution-done').filter({ hasText: 'bob@partner.example is a member of Partner Lab; level now L3' }).waitFor();
  const bob = await adminApi.get<{ items: { email: string; level: string }[] }>('/api/admin/users?q=bob%40partner.example');
  t.is(bob.body.items[0]?.level, 'L3', 'the server made Bob L3');
  await shot(admin, '1-institution');

  // A news item: written in Markdown, previewed from the saved page, published, then on the home page.
  await admin.getByRole('link', { name: 'News and guide' }).click();
  await admin.waitForURL(`${base}/admin/pages`);
  await admin.getByRole('button', { name: 'New news item' }).click();
  const pageForm = admin.getByTestId('page-form');
  await pageForm.locator('input[name=title]').fill('Scanner upgrade');
  t.is(await pageForm.locator('input[name=slug]').inputValue(), 'scanner-upgrade', 'the slug follows the title');
  await pageForm.locator('textarea[name=body]').fill(NEWS_BODY);
  await pageForm.getByRole('button', { name: 'Save draft' }).click();
  const preview = admin.getByTestId('page-preview');
  await preview.locator('strong', { hasText: 'much faster' }).waitFor();
  t.is(await preview.locator('li').count(), 2);
  t.is((await (await admin.request.get(`${base}/api/news`)).json() as { items: unknown[] }).items.length, 0, 'a draft is not public');
  await pageForm.getByRole('button', { name: 'Publish' }).click();
  await admin.getByText('“Scanner upgrade” is published.').waitFor();
  await shot(admin, '2-news-editor');
  // Opened again from the list (which holds summaries only), the item comes with its text and preview.
  await admin.reload();
  await admin.getByRole('button', { name: 'Scanner upgrade' }).click();
  await preview.locator('strong', { hasText: 'much faster' }).waitFor();
  t.is(await pageForm.locator('textarea[name=body]').inputValue(), NEWS_BODY, 'the body is loaded into the editor');
  const anonymous = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const visitor = await anonymous.newPage();
  watch(visitor);
  await visitor.goto(`${base}/`);
  const news = visitor.locator('.news-item', { hasText: 'Scanner upgrade' });
  await news.waitFor();
  t.is(await news.locator('strong').textContent(), 'much faster');
  // Headings in the item's text stay below its title; its table is ruled.
  // No DOM types in the tests' tsconfig: the computed style is read structurally.
  const style = (selector: string, property: string) =>
    news.locator(selector).first().evaluate((element, name) => (globalThis as unknown as { getComputedStyle(e: unknown): Record<string, string> }).getComputedStyle(element)[name]!, property);
  const fontSize = async (selector: string) => parseFloat(await style(selector, 'fontSize'));
  const titleSize = await fontSize('h3');
  for (const heading of ['.prose h1', '.prose h2']) {
    const size = await fontSize(heading);
    t.true(size < titleSize, `${heading} (${size}px) is smaller than the item's title (${titleSize}px)`);
  }
  t.is(await style('.prose table td', 'borderTopStyle'), 'solid', 'table cells are ruled');
  t.is(await style('.prose table th', 'fontWeight'), '600');
  t.is(await visitor.getByRole('link', { name: 'Administration' }).count(), 0, 'no admin link for visitors');
  await shot(visitor, '3-home-news');
  await anonymous.close();

  // The audit log filtered by an action family; the CSV link carries the same filter.
  await admin.getByRole('link', { name: 'Audit log' }).click();
  await admin.locator('table.audit tbody tr').first().waitFor();
  const everything = Number((await admin.getByTestId('audit-total').textContent())!.split(' ')[0]);
  const filters = admin.getByTestId('audit-filters');
  await filters.locator('input[name=action]').fill('institution.*');
  await filters.locator('input[name=actor]').fill('admin@hospital.example');
  await filters.getByRole('button', { name: 'Filter' }).click();
  await admin.getByTestId('audit-total').filter({ hasText: /^2 events$/ }).waitFor();
  const actions = await admin.locator('table.audit tbody tr').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-action')));
  t.deepEqual(actions, ['institution.member_added', 'institution.created'], 'newest first, only the family asked for');
  t.true(everything > 2, `the unfiltered log has more (${everything})`);
  const csvHref = (await admin.getByTestId('audit-csv').getAttribute('href'))!;
  t.regex(csvHref, /action=institution\.\*/);
  const csv = await admin.request.get(`${base}${csvHref}`);
  t.is(csv.status(), 200);
  const csvText = await csv.text();
  t.regex(csvText, /institution\.created/);
  t.notRegex(csvText, /page\.published|auth\.login/, 'the export holds the filtered events only');
  await shot(admin, '4-audit');

  // Ingest records and the slide's de-identification report.
  await admin.getByRole('link', { name: 'Ingest records' }).click();
  const published = admin.locator('[data-testid=ingest-records] tr[data-outcome=published]');
  await published.first().waitFor();
  const slideName = (await adminApi.get<{ items: { id: number; name: string }[] }>('/api/slides')).body.items[0]!.name;
  t.is(await published.first().getByRole('link', { name: slideName, exact: true }).getAttribute('href'), `/slides/${slideId}`, 'the slide by its name');
  await published.first().getByRole('button', { name: 'De-identification report' }).click();
  await admin.waitForURL(new RegExp(`slide=${slideId}`));
  const checks = admin.locator('[data-testid=deid-checks] tbody tr');
  await checks.first().waitFor();
  t.true((await checks.count()) >= 3, 'several checks are listed');
  t.is(await admin.locator('[data-testid=deid-checks] tbody tr.failed').count(), 0, 'every check passed');
  const directories = admin.locator('[data-testid=deid-directories] tbody');
  const removedRoles = await directories.locator('tr.removed td:nth-child(2)').allTextContents();
  t.true(removedRoles.includes('label') && removedRoles.includes('macro'), `label and macro removed: ${removedRoles.join(', ')}`);
  t.true((await directories.locator('tr.copied').count()) >= 2, 'the levels are copied');
  await shot(admin, '5-deid-report');

  // The scheduled jobs (read-only).
  await admin.getByRole('link', { name: 'Jobs' }).click();
  await admin.locator('[data-job=account-cleanup]').waitFor();
  await admin.locator('[data-job=preprocess]').waitFor();
  t.deepEqual(
    await admin.locator('[data-job]').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-job'))),
    ['inbox-ingest', 'dua-reminders', 'dua-expiry', 'account-cleanup', 'challenge-uploads', 'preprocess'],
    'every scheduled job, as cron list shows them',
  );
  await adminContext.close();

  // Bob (now L3) changes his password, logs in again with it; the old one no longer works.
  const bobContext = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const page = await bobContext.newPage();
  watch(page);
  await logInAs(page, 'bob@partner.example', TEST_PASSWORD, '/account');
  t.is(await page.getByRole('link', { name: 'Administration' }).count(), 0, 'no admin link for a researcher');
  const passwordForm = page.getByTestId('password-form');
  await passwordForm.locator('input[name=currentPassword]').fill(TEST_PASSWORD);
  await passwordForm.locator('input[name=newPassword]').fill(NEW_PASSWORD);
  await passwordForm.locator('input[name=repeat]').fill(NEW_PASSWORD);
  await passwordForm.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Your password is changed').waitFor();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(`${base}/`);
  await logInAs(page, 'bob@partner.example', NEW_PASSWORD, `/slides/${slideId}`);
  const oldPassword = await logIn(site, 'bob@partner.example', TEST_PASSWORD).catch((error: Error) => error);
  t.true(oldPassword instanceof Error && /answered 401/.test(oldPassword.message), 'the old password is refused');

  // The slide page: the overview inset shows the whole slide with the view drawn on it; a click there moves the view.
  const overview = page.getByTestId('overview');
  await overview.waitFor();
  // The thumbnail decoded (no DOM types in the tests' tsconfig: the element is read structurally).
  await page.waitForFunction((element) => {
    const img = element as unknown as { complete: boolean; naturalWidth: number } | null;
    return img?.complete === true && img.naturalWidth > 0;
  }, await overview.locator('img').elementHandle());
  const rect = page.getByTestId('overview-view');
  await rect.waitFor();
  const box = (await overview.boundingBox())!;
  const viewBox = (await rect.boundingBox())!;
  t.true(viewBox.width > 0 && viewBox.width <= box.width + 1, 'the view rectangle lies within the inset');
  await page.getByRole('button', { name: 'Zoom in' }).click();
  await page.getByRole('button', { name: 'Zoom in' }).click();
  await page.waitForTimeout(500);
  const zoomedBox = (await rect.boundingBox())!;
  t.true(zoomedBox.width < viewBox.width, `zooming in shrinks the rectangle (${viewBox.width} → ${zoomedBox.width})`);
  await page.waitForURL(/[?&]x=/);
  await overview.locator('button.overview-target').click({ position: { x: box.width * 0.85, y: box.height * 0.8 } });
  await page.waitForURL((url) => Number(url.searchParams.get('x')) > 2000 && Number(url.searchParams.get('y')) > 1300);
  const query = new URL(page.url()).searchParams;
  t.true(Math.abs(Number(query.get('x')) - 3000 * 0.85) < 120 && Math.abs(Number(query.get('y')) - 2000 * 0.8) < 120, `centred where clicked: ${page.url()}`);
  t.is(await page.getByTestId('download-slide').count(), 1, 'an L3 member may download');
  t.is(await page.getByTestId('deid-link').count(), 0, 'no curation link for a researcher');
  await shot(page, '6-overview-inset');

  t.deepEqual(pageErrors, [], 'no script errors or CSP violations in the console');
});
