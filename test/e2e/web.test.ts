/**
 * The web portal in a real browser (Debian's chromium through playwright-core)
 * against the real server as a separate process, a real database and mail over
 * a real SMTP server: a researcher registers, confirms by mail, logs in,
 * filters the catalog, views a slide with its tiles and annotation overlay,
 * applies for a DUA that an administrator approves in the admin page, and then
 * downloads. Screenshots go to test/artifacts/ (git-ignored) as evidence.
 *
 * The web app must be built (`npm run build`, which `npm ci` runs through
 * `prepare`); a checkout without web/dist gets it built by ensureWebBuilt().
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { Page } from 'playwright-core';
import { makeSlide } from '../support/slides.js';
import { logIn, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { appliance } from '../support/appliance.js';
import { testDialect } from '../support/database.js';
import { linksIn, parseMail, startTestSmtp } from '../support/smtp.js';

browserTest(`the researcher's path in the browser: register, confirm by mail, log in, filter, view a slide with tiles and annotations, DUA approved by an admin, download (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-${name}.png`), fullPage: true });

  const smtp = await startTestSmtp(t);
  const { root, database, base, site, cli, serve } = await appliance(t, { smtpUrl: smtp.url });

  // An administrator and two published slides of different organs.
  await cli(['user', 'add', '--email', 'admin@hospital.example', '--level', 'L1', '--role', 'admin', '--name', 'Admin'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  for (const [name, organ, histology, seed] of [['kidney', 'KI', 'RCC', 3], ['liver', 'LV', 'HCC', 4]] as const) {
    const inbox = path.join(root, `in-${name}`);
    await mkdir(inbox);
    await makeSlide({ width: 1600, height: 1200, seed, out: inbox, name });
    await cli(['ingest', inbox, '--organ', organ, '--histology', histology, '--stain', 'HE', '--differentiation', 'MD']);
  }

  await serve();
  const adminApi = await logIn(site, 'admin@hospital.example');
  t.is((await adminApi.post('/api/admin/dua/versions', { version: '2027.1', title: 'Slidebank DUA', body: 'Research use only.' })).status, 201);

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const researcher = await browser.newContext({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });
  const page = await researcher.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  page.on('console', (message) => {
    // The only expected console error is the 401 of GET /api/auth/me while logged out.
    if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
  });

  // Register, receive the mail, open the link, log in.
  await page.goto(`${base}/`);
  await page.getByRole('link', { name: 'Register' }).first().click();
  await page.fill('input[name=name]', 'Alice Researcher');
  await page.fill('input[name=institution]', 'Lab');
  await page.fill('input[name=email]', 'alice@lab.example');
  await page.fill('input[name=password]', TEST_PASSWORD);
  await page.click('button[type=submit]');
  await page.getByText('We sent a confirmation link').waitFor();
  await shot(page, '1-registered');
  const [mail] = await smtp.waitForMessages(1);
  t.deepEqual(mail!.envelope.to, ['alice@lab.example']);
  const link = linksIn(parseMail(mail!.raw).text).find((l) => l.startsWith(`${base}/account/confirm#token=`));
  t.truthy(link, 'the mail links to the confirmation page');
  await page.goto(link!);
  await page.getByText('Your address is confirmed').waitFor();
  t.false(page.url().includes('token='), 'the token leaves the address bar');
  await shot(page, '2-confirmed');
  await page.getByRole('link', { name: 'Log in' }).last().click();
  await page.fill('input[name=email]', 'alice@lab.example');
  await page.fill('input[name=password]', TEST_PASSWORD);
  await page.click('form button[type=submit]');
  await page.waitForURL(`${base}/catalog`);

  // The catalog: tick a filter, see the count and the grid change; the filter is in the URL.
  const total = page.getByTestId('total');
  await page.locator('.card').nth(1).waitFor();
  t.is(await total.textContent(), '2');
  t.is(await page.locator('.card').count(), 2);
  // Before its image arrives, each thumbnail's place has its stain's background colour, not a neutral grey.
  const placeholders = await page.locator('.card .thumb').evaluateAll((boxes) => boxes.map((box) => [box.getAttribute('data-stain-tone'), (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(box).backgroundColor]));
  t.true(placeholders.length === 2 && placeholders.every(([tone, colour]) => (tone === 'he' && colour === 'rgb(239, 217, 230)') || (tone === 'ihc' && colour === 'rgb(221, 227, 238)')), JSON.stringify(placeholders));
  await page.locator('fieldset[data-facet=organ] label', { hasText: 'Kidney' }).locator('input').check();
  await page.waitForURL(/organ=KI/);
  await page.locator('[data-testid=total]', { hasText: /^1$/ }).waitFor();
  t.is(await page.locator('.card').count(), 1);
  t.regex((await page.locator('.card').textContent()) ?? '', /Kidney/);
  await shot(page, '3-catalog-filtered');

  // A session that ends mid-use: back to the login page, then back to the same filtered catalog.
  await database.db.knex('sessions').delete();
  // click, not check(): the page leaves for the login form before the box could be seen ticked.
  await page.locator('fieldset[data-facet=stain] input').first().click();
  await page.waitForURL(/\/account\/login\?/);
  await page.getByText('Your session ended').waitFor();
  await page.fill('input[name=email]', 'alice@lab.example');
  await page.fill('input[name=password]', TEST_PASSWORD);
  await page.click('form button[type=submit]');
  await page.waitForURL(/\/catalog\?.*organ=KI/);
  await page.locator('.card').first().waitFor();

  // The slide page: the descriptor and tiles load (200), the map is not blank, the annotation layer toggles.
  const tileStatuses: number[] = [];
  page.on('response', (response) => {
    if (/\/tiles\/\d+_files\/\d+\/\d+_\d+\.\w+$/.test(new URL(response.url()).pathname)) tileStatuses.push(response.status());
  });
  await page.locator('.card a.name').click();
  await page.waitForURL(/\/slides\/\d+/);
  const slideId = Number(/\/slides\/(\d+)/.exec(page.url())![1]);
  const viewer = page.getByTestId('viewer');
  // (Not a string to evaluate: the page's CSP forbids eval, which this also proves.)
  await page.waitForFunction((element) => Number(element?.getAttribute('data-tiles-loaded')) >= 4, await viewer.elementHandle());
  await page.locator('.overlay-toggle').first().waitFor();
  await page.waitForURL(/[?&]z=/);
  t.true(tileStatuses.length >= 4, `tiles requested: ${tileStatuses.length}`);
  t.deepEqual([...new Set(tileStatuses)], [200], 'every tile answered 200');
  t.is(await viewer.getAttribute('data-tiles-failed'), '0');
  const stats = await sharp(await viewer.screenshot()).stats();
  t.true(Math.max(...stats.channels.map((c) => c.stdev)) > 10, 'the map shows an image, not a blank area');
  t.regex((await page.getByTestId('scale-bar').textContent()) ?? '', /\d+ (µm|mm)/);
  const paths = page.locator('.leaflet-overlay-pane path');
  const drawn = await paths.count();
  t.true(drawn > 0, 'the annotation is drawn');
  await shot(page, '4-slide');
  const toggle = page.locator('.overlay-toggle input').first();
  await toggle.uncheck();
  t.true((await paths.count()) < drawn, 'unticking a layer hides it');
  await toggle.check();
  t.is(await paths.count(), drawn, 'ticking it shows it again');
  await viewer.hover();
  t.regex((await page.getByTestId('cursor').textContent()) ?? '', /^x \d[\d,]*, y \d[\d,]* px$/);
  t.is(await page.getByTestId('download-slide').count(), 0, 'no download link at L1');

  // A deep link restores the view.
  await page.goto(`${base}/slides/${slideId}?x=400&y=300&z=10`);
  await page.locator('.dz-tile img').first().waitFor();
  await page.waitForTimeout(600);
  const restored = new URL(page.url()).searchParams;
  t.is(restored.get('z'), '10');
  t.true(Math.abs(Number(restored.get('x')) - 400) <= 2 && Math.abs(Number(restored.get('y')) - 300) <= 2, page.url());

  // Apply for the DUA on the account page.
  await page.goto(`${base}/account`);
  const form = page.getByTestId('dua-form');
  await form.locator('input[name=project]').fill('KidneySeg');
  await form.locator('input[name=principalInvestigator]').fill('Prof. Example');
  await form.locator('textarea[name=researchPurpose]').fill('Tumour segmentation');
  await form.getByLabel('I accept').check();
  await form.locator('button[type=submit]').click();
  await page.getByText('waits for an administrator').waitFor();
  // A personal access token: shown once, listed, revoked.
  await page.getByRole('textbox', { name: 'Token name' }).fill('laptop');
  await page.getByRole('button', { name: 'Create token' }).click();
  t.regex((await page.getByTestId('new-token').textContent()) ?? '', /^sbk_/);
  await shot(page, '5-applied');
  await page.getByRole('button', { name: 'Revoke' }).click();
  await page.locator('#tokens td', { hasText: 'revoked' }).waitFor();

  // The administrator approves it in the admin page.
  const adminContext = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const admin = await adminContext.newPage();
  await logInThroughPortal(admin, base, 'admin@hospital.example', TEST_PASSWORD, '/admin');
  const application = admin.locator('[data-application-id]', { hasText: 'KidneySeg' });
  await application.waitFor();
  await shot(admin, '6-admin-queue');
  await application.getByRole('button', { name: 'Approve' }).click();
  await application.getByRole('button', { name: 'Yes, approve' }).click();
  await admin.getByText('No application waits for a decision').waitFor();
  await adminContext.close();

  // Now Alice is L2 and downloads: the slide file (200) and a ZIP of a selection.
  await page.goto(`${base}/slides/${slideId}`);
  const downloadLink = page.getByTestId('download-slide');
  await downloadLink.waitFor();
  t.is((await page.request.get(`${base}/api/slides/${slideId}/files/slide`)).status(), 200);
  const [file] = await Promise.all([page.waitForEvent('download'), downloadLink.click()]);
  t.is(await file.failure(), null);
  t.regex(file.suggestedFilename(), /\.svs$/);
  await page.goto(`${base}/catalog`);
  await page.locator('.card .select input').first().check();
  const [zip] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download selected' }).click()]);
  t.is(await zip.failure(), null);
  t.regex(zip.suggestedFilename(), /\.zip$/);
  await shot(page, '7-downloaded');
  t.like((await (await page.request.get(`${base}/api/auth/me`)).json()) as object, { level: 'L2' });

  t.deepEqual(pageErrors, [], 'no script errors or CSP violations in the console');
});
