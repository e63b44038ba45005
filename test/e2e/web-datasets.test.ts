/**
 * The portal's Datasets page in a real browser (Debian's chromium through
 * playwright-core) against the real server as its own process: an L3 member
 * sees the dataset and its releases, the site's key fingerprint and the
 * mirror command, and downloads a release as a bag in a ZIP through the
 * button; an L1 user has no Datasets link and gets the not-allowed notice.
 * Screenshots go to test/artifacts/ (git-ignored).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { loadConfig } from '../../server/config/index.js';
import { createDatasetsService } from '../../server/datasets/index.js';
import { packageRoot } from '../../server/package-info.js';
import { makeSlide } from '../support/slides.js';
import { TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';

const run = promisify(execFile);

browserTest(`Datasets page: an L3 member downloads a release as a bag in a ZIP; an L1 user is not let in (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-datasets-${name}.png`), fullPage: true });

  const { root, base, cli, serve, database, env } = await appliance(t);
  await cli(['user', 'add', '--email', 'rita@partner.example', '--level', 'L3', '--name', 'Rita'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'lou@lab.example', '--level', 'L1', '--name', 'Lou'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 2000, height: 1500, seed: 5, out: inbox, name: 'liver' });
  await cli(['ingest', inbox, '--organ', 'LV', '--histology', 'HCC', '--stain', 'HE', '--differentiation', 'MD']);
  const slide = (await database.db.knex('slides').first('id', 'name')) as { id: number; name: string };
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env });
  const datasets = createDatasetsService(config, database.db);
  await datasets.create('liver', 'HCC with viable tumour annotations');
  await datasets.add('liver', { slides: [slide.id] });
  await datasets.release('liver', '2027.1', 'curator');
  await datasets.release('liver', '2027.2', 'curator');

  await serve();
  const site = (await (await fetch(`${base}/api/site`)).json()) as { signingKey: { fingerprint: string } };
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const logInAs = async (email: string, next: string) => {
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, acceptDownloads: true });
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Expected: the 401 of GET /api/auth/me while logged out.
      if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
    });
    await logInThroughPortal(page, base, email, TEST_PASSWORD, next);
    return page;
  };

  // --- Rita, at a partner site (L3).
  const rita = await logInAs('rita@partner.example', '/datasets');
  const dataset = rita.locator('[data-dataset=liver]');
  await dataset.waitFor();
  t.regex((await dataset.textContent()) ?? '', /HCC with viable tumour annotations/);
  const release = dataset.locator('[data-release="2027.1"]');
  t.deepEqual((await release.locator('td').allTextContents()).slice(0, 5).map((cell) => cell.trim()).filter((_c, i) => i !== 1 && i !== 3), ['2027.1', '1', '0'], 'version, slides, withdrawals');
  t.is(await rita.getByTestId('fingerprint').textContent(), site.signingKey.fingerprint);
  t.is(await dataset.getByTestId('mirror-command').textContent(), `slidebank mirror --from ${base} --token <your token> --dataset liver`);
  t.is(await rita.locator('nav[aria-label=Main] a', { hasText: 'Datasets' }).count(), 1, 'the nav has the link');
  await shot(rita, '1-list');

  const [download] = await Promise.all([rita.waitForEvent('download'), release.getByTestId('download-bag').click()]);
  t.is(download.suggestedFilename(), 'liver_2027.1.zip');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-web-datasets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const zip = path.join(dir, download.suggestedFilename());
  await download.saveAs(zip);
  t.is(await download.failure(), null);
  t.regex((await run('/usr/bin/unzip', ['-t', zip])).stdout, /No errors detected/);
  const entries = (await run('/usr/bin/unzip', ['-Z1', zip])).stdout.trim().split('\n');
  t.true(entries.includes('liver_2027.1/bagit.txt'));
  t.true(entries.includes(`liver_2027.1/data/slides/${slide.name}.svs`), 'the slide itself is in the bag');
  t.false(entries.includes('liver_2027.1/fetch.txt'));

  // The changes since an earlier release: the same slide, so the incremental bag carries none.
  const second = dataset.locator('[data-release="2027.2"]');
  await second.getByRole('combobox', { name: 'Changes since, for liver 2027.2' }).selectOption('2027.1');
  t.regex((await second.getByTestId('download-holey').getAttribute('href')) ?? '', /^\/api\/datasets\/liver\/bag\.zip\?version=2027\.2&since=2027\.1&holey=1$/);
  const [incremental] = await Promise.all([rita.waitForEvent('download'), second.getByTestId('download-bag').click()]);
  t.is(incremental.suggestedFilename(), 'liver_2027.2_since_2027.1.zip');
  const incrementalZip = path.join(dir, incremental.suggestedFilename());
  await incremental.saveAs(incrementalZip);
  const incrementalEntries = (await run('/usr/bin/unzip', ['-Z1', incrementalZip])).stdout.trim().split('\n');
  t.true(incrementalEntries.includes('liver_2027.2_since_2027.1/bag-info.txt'));
  t.false(incrementalEntries.some((e) => e.includes('/data/slides/')), 'no slide changed');

  // --- Lou (L1): no link, and the page says why.
  const lou = await logInAs('lou@lab.example', '/datasets');
  await lou.getByText('This page is for partner sites (level L3) and administrators.').waitFor();
  t.is(await lou.locator('nav[aria-label=Main] a', { hasText: 'Datasets' }).count(), 0, 'no Datasets link for L1');
  t.is(await lou.locator('[data-dataset]').count(), 0);
  await shot(lou, '2-refused');

  t.deepEqual(pageErrors, []);
});
