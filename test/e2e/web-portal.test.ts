/**
 * The portal's heat maps, download history and slide administration in a real
 * browser (Debian's chromium through playwright-core) against the real server
 * as its own process: a heat map published with `slidebank toolbox heatmap`
 * shows as a toggle on the slide page, turning it on loads its tiles and the
 * slider changes its opacity; a researcher downloads the slide and finds it in
 * their account; an administrator withdraws the slide (the catalog no longer
 * lists it, its tiles answer 404) and publishes it again. Screenshots go to
 * test/artifacts/ (git-ignored).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page, Response } from 'playwright-core';
import sharp from 'sharp';
import { makeSlide } from '../support/slides.js';
import { logIn, TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { runCli } from '../support/cli.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';

browserTest(`portal: heat-map overlay with opacity, download history, withdraw and publish a slide (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-portal-${name}.png`), fullPage: true });

  const { root, base, site, cli, serve, database, env } = await appliance(t);
  await cli(['user', 'add', '--email', 'admin@hospital.example', '--level', 'L1', '--role', 'admin', '--name', 'Admin'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'cora@hospital.example', '--level', 'L1', '--role', 'curator', '--name', 'Cora'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'rita@lab.example', '--level', 'L3', '--name', 'Rita'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 9, out: inbox, name: 'colon' });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  const published = (await database.db.knex('slides').first('id', 'name', 'file_path')) as { id: number; name: string; file_path: string };
  const slideId = published.id;
  // A file that is no slide: ingest quarantines it (exit 1).
  const broken = path.join(root, 'broken');
  await mkdir(broken);
  await writeFile(path.join(broken, 'broken.svs'), Buffer.concat([Buffer.from('II*\0'), Buffer.alloc(4096, 7)]));
  const quarantine = await runCli(['ingest', broken, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD'], { env, timeoutMs: 120_000 });
  t.is(quarantine.code, 1, quarantine.stdout + quarantine.stderr);
  t.regex(quarantine.stdout, /quarantined/);
  // Ingest names the slide by the nomenclature.
  const name = published.name;

  // A probability map (an 8-bit mask: 255 is 1), a gradient from left to right, published as the heat map "tumour".
  const width = 60;
  const height = 40;
  const mask = Buffer.alloc(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) mask[y * width + x] = Math.round((x / (width - 1)) * 255);
  const mapFile = path.join(root, 'map.png');
  await sharp(mask, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toFile(mapFile);
  const slideFile = path.resolve(root, 'var', 'slides', published.file_path);
  await cli(['toolbox', 'heatmap', mapFile, '--slide', slideFile, '--out', path.join(root, 'var', 'cache', 'overlays', String(slideId), 'tumour'), '--cutoff', '0.1']);

  await serve();
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      // Expected: the 401 of GET /api/auth/me while logged out, and the 404s of the withdrawn slide's requests.
      if (message.type() === 'error' && !/401|404/.test(message.text())) pageErrors.push(message.text());
    });
  };
  const logInAs = (page: Page, email: string, next: string) => logInThroughPortal(page, base, email, TEST_PASSWORD, next);

  // --- The heat map on the slide page.
  const ritaContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const rita = await ritaContext.newPage();
  watch(rita);
  const overlayTiles: Response[] = [];
  rita.on('response', (response) => {
    if (response.url().includes(`/tiles/${slideId}/overlays/tumour_files/`)) overlayTiles.push(response);
  });
  await logInAs(rita, 'rita@lab.example', `/slides/${slideId}`);
  const viewer = rita.getByTestId('viewer');
  await rita.waitForFunction((element) => Number((element as unknown as { dataset: { tilesLoaded: string } }).dataset.tilesLoaded) > 0, await viewer.elementHandle());
  const controls = rita.getByTestId('heatmap-controls');
  const toggle = controls.locator('[data-heatmap=tumour] input[type=checkbox]');
  await toggle.waitFor();
  t.regex((await controls.locator('[data-heatmap=tumour]').textContent()) ?? '', /jet/, 'the colormap from the sidecar');
  t.false(await toggle.isChecked(), 'heat maps start off');
  t.is(overlayTiles.length, 0, 'no overlay tile is fetched while it is off');
  await toggle.check();
  await rita.waitForFunction((element) => Number((element as unknown as { dataset: { heatTilesLoaded: string } }).dataset.heatTilesLoaded) > 0, await controls.elementHandle());
  t.true(overlayTiles.length > 0);
  t.deepEqual([...new Set(overlayTiles.map((r) => r.status()))], [200], 'every overlay tile answered 200');
  t.true(overlayTiles.every((r) => r.headers()['content-type'] === 'image/png'));
  const layer = rita.locator('.leaflet-tile-pane .heatmap-tumour');
  t.is(await layer.count(), 1);
  const style = () => layer.evaluate((element) => {
    const s = (element as unknown as { style: { opacity: string; zIndex: string } }).style;
    return { opacity: Number(s.opacity), zIndex: Number(s.zIndex) };
  });
  const before = await style();
  t.is(before.opacity, 0.6);
  const slideLayer = await rita.locator('.leaflet-tile-pane > .leaflet-layer').first().evaluate((element) => Number((element as unknown as { style: { zIndex: string } }).style.zIndex));
  t.true(before.zIndex > slideLayer, `the heat map lies above the slide (${before.zIndex} > ${slideLayer}); annotations are in the overlay pane above both`);
  await controls.locator('input[name=heat-opacity]').fill('0.25');
  t.is((await style()).opacity, 0.25, 'the slider sets the layer\'s opacity');
  await rita.waitForURL(/[?&]heat=tumour/);
  await shot(rita, '1-heatmap');

  // The deep link keeps it on.
  const link = rita.url();
  await rita.reload();
  await controls.locator('[data-heatmap=tumour] input[type=checkbox]:checked').waitFor();
  await rita.locator('.leaflet-tile-pane .heatmap-tumour').waitFor({ state: 'attached' });
  await rita.waitForFunction((element) => Number((element as unknown as { dataset: { heatTilesLoaded: string } }).dataset.heatTilesLoaded) > 0, await controls.elementHandle());
  t.regex(rita.url(), /heat=tumour/, link);

  // Off again: the layer goes, and the link forgets it.
  await controls.locator('[data-heatmap=tumour] input[type=checkbox]').uncheck();
  await rita.waitForURL((url) => !url.searchParams.has('heat'));
  t.is(await rita.locator('.leaflet-tile-pane .heatmap-tumour').count(), 0);

  // --- A download, then the account's history.
  const [download] = await Promise.all([rita.waitForEvent('download'), rita.getByTestId('download-slide').click()]);
  t.is(await download.failure(), null);
  const ritaApi = await logIn(site, 'rita@lab.example');
  // The download is audited once its last byte has gone.
  for (let i = 0; i < 200; i++) {
    if ((await ritaApi.get<{ total: number }>('/api/account/downloads')).body.total > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await rita.goto(`${base}/account#downloads`);
  const history = rita.getByTestId('download-history');
  await history.waitFor();
  const rows = history.locator('tbody tr');
  t.is(await rows.count(), 1);
  const row = (await rows.first().textContent()) ?? '';
  t.regex(row, new RegExp(`Slide: ${name}`));
  t.regex(row, /complete/);
  t.regex(row, /[KM]iB/);
  await shot(rita, '2-download-history');

  // --- The administrator withdraws the slide, then publishes it again.
  const adminContext = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const admin = await adminContext.newPage();
  watch(admin);
  await logInAs(admin, 'admin@hospital.example', '/admin/slides');
  const slideRow = admin.locator(`[data-testid=admin-slides] tr[data-slide="${name}"]`);
  await slideRow.waitFor();
  t.is(await slideRow.getAttribute('data-status'), 'published');
  t.is(await slideRow.getByRole('link', { name: 'De-identification report' }).getAttribute('href'), `/admin/ingest?slide=${slideId}`);
  const quarantined = admin.locator('[data-testid=quarantined] tbody tr');
  await quarantined.first().waitFor();
  t.is(await quarantined.count(), 1, 'the quarantined ingest is listed');
  await slideRow.getByRole('button', { name: 'Withdraw…' }).click();
  await slideRow.locator('input[name=reason]').fill('Consent withdrawn');
  await slideRow.getByRole('button', { name: 'Withdraw', exact: true }).click();
  await admin.locator(`[data-testid=admin-slides] tr[data-slide="${name}"][data-status=withdrawn]`).waitFor();
  t.regex((await slideRow.textContent()) ?? '', /Consent withdrawn/);
  await admin.getByTestId('slide-status-done').filter({ hasText: `${name} is withdrawn.` }).waitFor();
  await shot(admin, '3-withdrawn');

  // At once: the tiles and the overlay answer 404, and the catalog is empty.
  t.is((await rita.request.get(`${base}/tiles/${slideId}.dzi`)).status(), 404);
  t.is((await rita.request.get(`${base}/tiles/${slideId}_files/0/0_0.jpeg`)).status(), 404);
  t.is((await rita.request.get(`${base}/tiles/${slideId}/overlays/tumour.dzi`)).status(), 404);
  await rita.goto(`${base}/catalog`);
  await rita.getByTestId('total').filter({ hasText: /^0$/ }).waitFor();
  t.is(await rita.locator(`[data-slide-id="${slideId}"]`).count(), 0);
  await rita.getByText('The catalog is empty').waitFor();
  await shot(rita, '4-catalog-without');

  await slideRow.getByRole('button', { name: 'Publish again' }).click();
  await admin.locator(`[data-testid=admin-slides] tr[data-slide="${name}"][data-status=published]`).waitFor();
  t.is((await rita.request.get(`${base}/tiles/${slideId}.dzi`)).status(), 200);
  await rita.reload();
  await rita.locator(`[data-slide-id="${slideId}"]`).waitFor();
  t.is(await rita.getByTestId('total').textContent(), '1');
  await shot(admin, '5-published-again');

  // The audit log has both, with the reason.
  const adminApi = await logIn(site, 'admin@hospital.example');
  const audit = await adminApi.get<{ items: { action: string; details: { reason?: string } }[] }>('/api/admin/audit?action=slide.*');
  t.deepEqual(audit.body.items.map((e) => e.action), ['slide.republished', 'slide.withdrawn']);
  t.is(audit.body.items[1]!.details.reason, 'Consent withdrawn');

  // A curator has the slides tab but not the administrators' ones.
  const coraContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const cora = await coraContext.newPage();
  watch(cora);
  await logInAs(cora, 'cora@hospital.example', '/admin/slides');
  await cora.locator(`[data-testid=admin-slides] tr[data-slide="${name}"][data-status=published]`).waitFor();
  const tabs = await cora.locator('nav.tabs a').allTextContents();
  t.deepEqual(tabs, ['Slides', 'Ingest records'], 'a curator sees the slides and the ingest records only');
  await coraContext.close();

  t.deepEqual(pageErrors, [], 'no script errors or CSP violations in the console');
});
