/**
 * The toolbox forms of the slide page in a real browser, as an L2 researcher
 * on a demo slide (generated and ingested with its annotation, as the demo
 * data is): every tool opens with values the server takes, or says why it
 * cannot run and keeps its Run button disabled; the heat map starts from the
 * newest map there is and runs with its defaults; a refused input reads as a
 * sentence naming the form's field, with the request id apart in the details
 * line. The portal is built from the current sources into a folder of this
 * test's own, so that a stale web/dist cannot hide a change.
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { createIngestService } from '../../server/ingest/create.js';
import { csvText } from '../../server/lib/csv.js';
import { createUser, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, launchChromium } from '../support/browser.js';
import { queueApp } from '../support/queue-app.js';
import { makeSlide } from '../support/slides.js';

browserTest('every toolbox form opens with valid defaults or says why it cannot run; the heat map runs with its defaults; refusals are sentences without the request id', async (t) => {
  t.timeout(400_000);
  const { root, database, config, log, start } = await queueApp(t, 'toolbox-forms');

  // A demo slide as the first start makes them: generated with its annotation and taken in through ingest.
  const inbox = path.join(root, 'in');
  await makeSlide({ width: 1600, height: 1200, levels: 2, seed: 100, out: inbox, name: 'demo-01' });
  for (const name of await readdir(inbox)) if (name.endsWith('.truth.json')) await rm(path.join(inbox, name));
  const row = { file: 'demo-01.svs', organ: 'LV', histology: 'HCC', stain: 'HE', marker: '', differentiation: 'MD', annotation_method: 'manual', pathology_info: '', dataset: 'demo', collection_date: '2012', consent: 'yes' };
  await writeFile(path.join(inbox, 'metadata.csv'), csvText([row], { columns: Object.keys(row) }));
  const { results } = await createIngestService(config, database.db, log).ingestFolder(inbox, { source: 'demo' });
  t.is(results[0]?.outcome, 'published', JSON.stringify(results));
  const slide = (await database.db.knex('slides').first('id', 'annotation_path')) as { id: number; annotation_path: string | null };
  t.truthy(slide.annotation_path, 'the demo slide has its annotation');

  const site = await start();
  const researcher = await createUser(site as never, { level: 'L2' });

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page: Page = await (await browser.newContext({ viewport: { width: 1366, height: 900 } })).newPage();
  await page.goto(site.url('/account/login'));
  await page.fill('input[name=email]', researcher.email);
  await page.fill('input[name=password]', TEST_PASSWORD);
  await page.click('form button[type=submit]');
  await page.waitForURL(/\/catalog/);
  await page.goto(site.url(`/slides/${slide.id}`));
  const section = page.getByTestId('toolbox-jobs');
  await section.getByText('No jobs on this slide yet.').waitFor();

  const tool = section.locator('select[name=type]');
  const run = section.getByRole('button', { name: 'Run' });
  const unavailable = section.getByTestId('toolbox-unavailable');
  const refusal = section.getByTestId('toolbox-refusal');
  const succeeded = section.locator('li[data-job][data-status=succeeded]');
  const jobs = section.locator('li[data-job]');

  /** Submit the form as it is; the job joins the list (and nothing is refused). */
  const submitted = async (before: number) => {
    await run.click();
    const queued = await jobs
      .nth(before)
      .waitFor({ timeout: 10_000 })
      .then(() => true)
      .catch(() => false);
    // allTextContents does not wait for a refusal that is not there.
    t.true(queued, `a job was queued (${(await refusal.allTextContents()).join(' ')})`);
    t.is(await refusal.count(), 0);
  };

  // Before any job: the tools that need nothing open ready to run; stitching waits for predictions, the heat map for a map.
  for (const type of ['tissue-mask', 'xml-masks', 'patches']) {
    await tool.selectOption(type);
    t.true(await run.isEnabled(), `${type} runs with its defaults`);
    t.is(await unavailable.count(), 0, type);
  }
  await tool.selectOption('stitch');
  t.regex((await unavailable.textContent()) ?? '', /Paste your model's patch predictions/);
  t.true(await run.isDisabled());
  await tool.selectOption('heatmap');
  t.regex((await unavailable.textContent()) ?? '', /A heat map colours the map of a finished tissue mask.*run one of those first\./);
  t.true(await run.isDisabled());
  t.true(await section.locator('select[name=source]').isDisabled());
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, 'toolbox-forms-no-source.png'), fullPage: true });

  // Each tool with its defaults is taken, and runs to the end.
  let count = 0;
  for (const type of ['tissue-mask', 'xml-masks', 'patches']) {
    await tool.selectOption(type);
    await submitted(count++);
  }
  await tool.selectOption('stitch');
  await section.getByRole('button', { name: 'Use the example' }).click();
  t.is(await unavailable.count(), 0);
  await submitted(count++);
  await section.locator('li[data-job]:not([data-status=succeeded])').first().waitFor({ state: 'detached', timeout: 180_000 });
  t.is(await succeeded.count(), 4, 'every job succeeded');

  // The heat map now starts from the newest map there is, and runs with its defaults.
  await tool.selectOption('heatmap');
  t.is(await unavailable.count(), 0);
  const source = section.locator('select[name=source]');
  const choices = await source.locator('option').allTextContents();
  t.deepEqual(choices.map((c) => c.replace(/ #\d+$/, '')).sort(), ['Masks from the annotation', 'Stitch predictions', 'Tissue mask'], 'patches have no map to colour');
  t.is(await source.inputValue(), (await source.locator('option').first().getAttribute('value')) ?? 'none', 'the newest map is chosen');
  t.not(await source.inputValue(), '');
  await submitted(count++);
  await section.locator('li[data-job]:not([data-status=succeeded])').first().waitFor({ state: 'detached', timeout: 120_000 });
  t.is(await succeeded.count(), 5);
  t.regex((await jobs.first().textContent()) ?? '', /heatmap #\d+ — succeeded.*overlay heatmap-/);

  // Refusals. The browser's own checks are turned off to send what a careless script would.
  await section.locator('form.job-form').evaluate((form) => {
    (form as unknown as { noValidate: boolean }).noValidate = true;
  });
  const refused = async (): Promise<{ text: string; details: string; requestId: string }> => {
    const answer = page.waitForResponse((r) => r.url().endsWith('/api/jobs') && r.request().method() === 'POST');
    await run.click();
    const response = await answer;
    t.is(response.status(), 400);
    const requestId = response.headers()['x-request-id'] ?? '';
    t.truthy(requestId);
    await refusal.waitFor();
    return { text: (await refusal.locator('.error-text').textContent()) ?? '', details: (await refusal.locator('.error-details').textContent()) ?? '', requestId };
  };
  const plain = (said: { text: string; details: string; requestId: string }) => {
    t.false(said.text.includes(said.requestId), said.text);
    t.notRegex(said.text, /parameters\.|\.\d+\.|request id/i);
    t.regex(said.details, new RegExp(`request id ${said.requestId} · invalid_request`));
  };

  await section.getByLabel('Overlay name').fill('My Heat Map');
  await section.getByLabel('Cut-off').fill('2');
  const heatmap = await refused();
  t.is(heatmap.text, "Overlay name must be 1 to 64 of a-z, 0-9 and '-'. Cut-off must be from 0 to 1.");
  plain(heatmap);
  await page.screenshot({ path: path.join(artifactsDir, 'toolbox-forms-refusal.png'), fullPage: true });

  await tool.selectOption('patches');
  t.is(await refusal.count(), 0, 'another tool starts without the refusal of the last');
  await section.getByLabel('Size', { exact: true }).fill('0');
  const patches = await refused();
  t.is(patches.text, 'Size must be at least 1.');
  plain(patches);
  await section.getByLabel('Size', { exact: true }).fill('256');

  await tool.selectOption('stitch');
  await section.locator('textarea[name=predictions]').fill('[{"x": -5, "y": 0, "size": 256, "score": 1.5}]');
  const stitch = await refused();
  t.is(stitch.text, 'X of prediction 1 must not be negative. Score of prediction 1 must be from 0 to 1.');
  plain(stitch);

  // What the portal checks itself is a sentence too, and has no request to name.
  await section.locator('textarea[name=predictions]').fill('[{"x": 0,');
  await run.click();
  await refusal.waitFor();
  t.regex((await refusal.textContent()) ?? '', /^Predictions must be a JSON array such as .*; this is not JSON\.$/);
  t.is(await refusal.locator('.error-details').count(), 0);
  t.is(await jobs.count(), 5, 'nothing more was queued');

  // Other forms read the server's problems the same way: the register form's e-mail address.
  const visitor = await (await browser.newContext()).newPage();
  await visitor.goto(site.url('/account/register'));
  await visitor.locator('form.stack').evaluate((form) => {
    (form as unknown as { noValidate: boolean }).noValidate = true;
  });
  await visitor.fill('input[name=name]', 'Ada');
  await visitor.fill('input[name=institution]', 'Test Hospital');
  await visitor.fill('input[name=email]', 'not-an-address');
  await visitor.fill('input[name=password]', TEST_PASSWORD);
  await visitor.click('form button[type=submit]');
  const box: Locator = visitor.locator('.error-box', { has: visitor.getByRole('alert') });
  await box.waitFor();
  t.is(await box.locator('.error-text').textContent(), 'E-mail must be an e-mail address.');
  t.is(await visitor.getByRole('alert').textContent(), 'E-mail must be an e-mail address.', 'the alert read out is the sentence, without the request id');
  t.regex((await box.locator('.error-details').textContent()) ?? '', /request id \S+ · invalid_request/);
});
