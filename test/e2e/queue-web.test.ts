/**
 * The toolbox section of the slide page in a real browser: an L2 researcher
 * submits a tissue mask, follows it to the end and gets the result link; an
 * L1 user sees no toolbox. The portal is built from the current sources into
 * a folder of this test's own, so that a stale web/dist cannot hide a change.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { createUser, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, launchChromium } from '../support/browser.js';
import { queueApp } from '../support/queue-app.js';
import { makeSlide, registerSlide } from '../support/slides.js';

browserTest('the slide page lists the slide\'s toolbox jobs with progress, runs a new one and links its results, shows why a job is refused; L1 sees no toolbox', async (t) => {
  t.timeout(400_000);
  const { root, database, start } = await queueApp(t, 'queue-web');
  const site = await start();
  const { svs } = await makeSlide({ width: 1600, height: 1200, levels: 2, seed: 51, out: path.join(root, 'gen') });
  const slide = await registerSlide(database.db, svs);
  const researcher = await createUser(site as never, { level: 'L2' });
  const viewer = await createUser(site as never, { level: 'L1' });

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const open = async (email: string): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    const page = await context.newPage();
    await page.goto(site.url('/account/login'));
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', TEST_PASSWORD);
    await page.click('form button[type=submit]');
    await page.waitForURL(/\/catalog/);
    await page.goto(site.url(`/slides/${slide.id}`));
    await page.locator('.slide-facts').waitFor();
    return page;
  };

  const page = await open(researcher.email);
  const section = page.getByTestId('toolbox-jobs');
  await section.getByText('No jobs on this slide yet.').waitFor();
  await section.locator('select[name=type]').selectOption('tissue-mask');
  await section.getByRole('button', { name: 'Run' }).click();
  // Polled every 2 s while it runs; the worker in this process takes it up.
  const item = section.locator('li[data-status=succeeded]');
  await item.waitFor({ timeout: 120_000 });
  const link = item.getByRole('link', { name: 'tissue-mask.png' });
  t.regex((await link.getAttribute('href')) ?? '', /^\/api\/jobs\/\d+\/results\/tissue-mask\.png$/);
  const answer = await page.request.get(site.url((await link.getAttribute('href'))!));
  t.is(answer.status(), 200);
  t.is(answer.headers()['content-type'], 'image/png');
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, 'queue-web-toolbox.png'), fullPage: true });

  // A job over the output budget is refused, and the researcher reads why beside the Run button.
  await section.locator('select[name=type]').selectOption('patches');
  await section.getByLabel('Size', { exact: true }).fill('16');
  await section.getByLabel('Stride', { exact: true }).fill('1');
  await section.getByRole('button', { name: 'Run' }).click();
  const refusal = section.getByTestId('toolbox-refusal');
  await refusal.waitFor();
  t.regex((await refusal.textContent()) ?? '', /Patches: level 0 \(1600×1200\) with size 16 and stride 1 gives 1878225 grid positions, over the limit of 1000000 per job \(queue\.maxOutputCount\)/);
  t.is(await section.locator('li[data-job]').count(), 1, 'nothing more was queued');
  await page.screenshot({ path: path.join(artifactsDir, 'queue-web-refusal.png'), fullPage: true });

  const l1 = await open(viewer.email);
  t.is(await l1.getByTestId('toolbox-jobs').count(), 0);

  // An administrator sees everybody's jobs in the queue tab, and filters them by status.
  const admin = await createUser(site as never, { level: 'L1', roles: ['admin'] });
  const adminPage = await open(admin.email);
  await adminPage.goto(site.url('/admin/queue'));
  const row = adminPage.getByTestId('queue-jobs').locator('tr.succeeded');
  await row.waitFor();
  const text = (await row.textContent()) ?? '';
  t.true(text.includes('tissue-mask') && text.includes(researcher.email), text);
  // The slide by its name, and each result file as a link of its own.
  t.is(await row.getByRole('link', { name: slide.name, exact: true }).getAttribute('href'), `/slides/${slide.id}`);
  const listed = (await (await adminPage.request.get(site.url('/api/jobs?status=succeeded'))).json()) as { items: { slideName: string | null; results: { name: string; url: string }[] }[] };
  t.is(listed.items[0]?.slideName, slide.name);
  const results = listed.items[0]?.results ?? [];
  t.true(results.length >= 1);
  const resultLinks = row.getByRole('list', { name: 'Result files' }).getByRole('listitem').getByRole('link');
  t.deepEqual(await resultLinks.allTextContents(), results.map((r) => r.name));
  t.deepEqual(await resultLinks.evaluateAll((links) => links.map((a) => a.getAttribute('href'))), results.map((r) => r.url));
  await adminPage.getByTestId('queue-status').selectOption('failed');
  await adminPage.getByText('No jobs.').waitFor();
  await adminPage.screenshot({ path: path.join(artifactsDir, 'queue-web-admin.png'), fullPage: true });
});
