/**
 * The annotation worklist and review page in a real browser: the worklist
 * opens on what needs work, with organ names; versions are numbered per slide
 * (v1, v2) in the list and in comparisons; the editor names what is wrong with
 * an outline before saving it, and asks before leaving unsaved edits; it has
 * the viewer's scale bar, overview inset and layer toggles, and a hidden layer
 * is still saved.
 * Screenshots go to test/artifacts/ (git-ignored).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { makeSlide } from '../support/slides.js';
import { logIn, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { appliance } from '../support/appliance.js';
import { testDialect } from '../support/database.js';

type Ring = [number, number][];

browserTest(`the worklist shows what needs work with organ names; versions are v1, v2; the editor warns about an invalid outline before saving (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-worklist-${name}.png`), fullPage: true });

  const { root, base, site, cli, serve } = await appliance(t);
  await cli(['user', 'add', '--email', 'ana@hospital.example', '--level', 'L1', '--role', 'pathologist', '--name', 'Ana'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 11, out: inbox, name: 'liver-a' });
  await makeSlide({ width: 3000, height: 2000, seed: 12, out: inbox, name: 'liver-b' });
  await makeSlide({ width: 3000, height: 2000, seed: 13, out: inbox, name: 'liver-c' });
  await cli(['ingest', inbox, '--organ', 'LV', '--histology', 'HCC', '--stain', 'HE', '--differentiation', 'MD']);
  await serve();
  const ana = await logIn(site, 'ana@hospital.example');
  const slides = (await ana.get<{ items: { id: number; name: string }[] }>('/api/slides?limit=10')).body.items;
  const [a, b, c] = slides.sort((x, y) => x.id - y.id) as [(typeof slides)[number], (typeof slides)[number], (typeof slides)[number]];

  // AI proposals for two of the three slides; the third keeps its released, ingested outline.
  const square: Ring = [[800, 600], [2200, 600], [2200, 1400], [800, 1400], [800, 600]];
  const proposalFile = path.join(root, 'proposal.geojson');
  await writeFile(proposalFile, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { layerId: 1, layerName: 'Tumor', colour: '#ff0000' }, geometry: { type: 'Polygon', coordinates: [square] } }] }));
  // The first slide's proposal is as detailed as a hand-drawn outline: 558 vertices.
  const round: Ring = Array.from({ length: 558 }, (_, i): [number, number] => [1500 + 700 * Math.cos((2 * Math.PI * i) / 558), 1000 + 600 * Math.sin((2 * Math.PI * i) / 558)]);
  const detailedFile = path.join(root, 'detailed.geojson');
  await writeFile(detailedFile, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { layerId: 1 }, geometry: { type: 'Polygon', coordinates: [[...round, round[0]!]] } }] }));
  await cli(['annotations', 'import', detailedFile, '--slide', String(a.id), '--model', 'unet-v3']);
  await cli(['annotations', 'import', proposalFile, '--slide', String(b.id), '--model', 'unet-v3']);

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await logInThroughPortal(page, base, 'ana@hospital.example', TEST_PASSWORD, '/worklist');

  // By default: the two proposals, named by organ; not the released slide.
  const worklist = page.getByTestId('worklist');
  await worklist.waitFor();
  const rows = worklist.locator('tbody tr');
  await rows.nth(1).waitFor();
  const texts = await rows.allInnerTexts();
  t.is(texts.length, 2, texts.join(' | '));
  t.true(texts.every((row) => row.includes('Liver') && row.includes('AI proposal to review')), texts.join(' | '));
  t.false(texts.some((row) => row.includes(c.name)), 'the released slide needs no work');
  t.deepEqual(await rows.locator('td:nth-child(2)').allInnerTexts(), ['Liver', 'Liver'], 'organ names, not codes');
  await shot(page, '1-worklist');

  // The second slide's versions are v1 (the ingested outline) and v2 (the proposal), whatever their ids.
  await worklist.getByRole('link', { name: b.name }).click();
  await page.getByTestId('review-state').filter({ hasText: 'AI proposal to review' }).waitFor();
  await page.locator('.leaflet-tile-loaded').first().waitFor();
  const versions = page.getByTestId('versions').locator('li');
  t.deepEqual(
    (await versions.allInnerTexts()).map((text) => text.split(' ')[0]),
    ['v2', 'v1'],
  );
  await page.getByTestId('compare-a').selectOption({ label: 'v1' });
  await page.getByTestId('compare-b').selectOption({ label: 'v2' });
  await page.getByRole('button', { name: 'Compare', exact: true }).click();
  await page.getByTestId('comparison-versions').filter({ hasText: 'v1 → v2' }).waitFor();

  // A rectangle drawn from the middle of the slide to beyond its corner: the editor names the problem and does not save.
  await page.locator('.leaflet-control-zoom-out').click();
  await page.waitForTimeout(500);
  const map = (await page.getByTestId('review-map').boundingBox())!;
  await page.locator('.leaflet-pm-icon-rectangle').click();
  await page.mouse.click(map.x + map.width / 2, map.y + map.height / 2);
  // Towards the top-right corner: the overview inset covers the bottom-right one.
  await page.mouse.move(map.x + map.width - 20, map.y + 20, { steps: 5 });
  await page.mouse.click(map.x + map.width - 20, map.y + 20);
  const problems = page.getByTestId('outline-problems');
  await problems.waitFor();
  t.regex(await problems.innerText(), /cannot be saved yet[\s\S]*lies outside the 3000×2000 slide/);
  t.false(await page.getByTestId('save-version').isEnabled(), 'nothing the server would refuse is sent');
  await shot(page, '2-invalid-outline');

  // Leaving with the unsaved rectangle asks first; staying keeps it.
  const asked: string[] = [];
  page.once('dialog', (dialog) => {
    asked.push(dialog.message());
    void dialog.dismiss();
  });
  await page.getByRole('link', { name: 'Worklist' }).first().click();
  await page.waitForTimeout(300);
  t.deepEqual(asked, ['This outline has unsaved changes. Leave without saving them?']);
  t.regex(page.url(), /\/review$/);

  const review = (await ana.get<{ versions: unknown[] }>(`/api/slides/${b.id}/annotations/review`)).body;
  t.is(review.versions.length, 2, 'nothing was saved');

  // Leaving after all; on the detailed outline, the editor shows handles only on the vertices nearest the cursor.
  page.once('dialog', (dialog) => void dialog.accept());
  await page.getByRole('link', { name: 'Worklist' }).first().click();
  await worklist.getByRole('link', { name: a.name }).click();
  await page.getByTestId('review-state').filter({ hasText: 'AI proposal to review' }).waitFor();
  await page.locator('.leaflet-tile-loaded').first().waitFor();
  await page.locator('.leaflet-pm-icon-edit').click();
  await page.locator('.marker-icon').first().waitFor();
  const at = (await page.getByTestId('review-map').boundingBox())!;
  await page.mouse.move(at.x + at.width / 2, at.y + 40, { steps: 5 });
  await page.waitForTimeout(300);
  const handles = await page.locator('.marker-icon').count();
  t.true(handles > 0 && handles <= 24, `${handles} handles for 558 vertices`);
  await shot(page, '3-detailed-outline-handles');
  await page.locator('.leaflet-pm-icon-edit').click();

  // As in the viewer: a scale bar, the overview inset, and each layer shown or hidden.
  t.regex(await page.getByTestId('scale-bar').innerText(), /\d+ (µm|mm)/);
  await page.getByTestId('overview-view').waitFor();
  const outlines = page.locator('.leaflet-overlay-pane path');
  t.is(await outlines.count(), 1);
  const toggle = page.getByTestId('layer-toggles').locator('[data-layer-id="1"] input');
  await toggle.uncheck();
  t.is(await outlines.count(), 0, 'the hidden layer is off the map');
  // A rectangle drawn while layer 1 is hidden: saving keeps the hidden outline too.
  const inside = (await page.getByTestId('review-map').boundingBox())!;
  await page.locator('.leaflet-pm-icon-rectangle').click();
  await page.mouse.click(inside.x + inside.width * 0.12, inside.y + inside.height * 0.12);
  await page.mouse.move(inside.x + inside.width * 0.18, inside.y + inside.height * 0.18, { steps: 5 });
  await page.mouse.click(inside.x + inside.width * 0.18, inside.y + inside.height * 0.18);
  await page.getByTestId('save-version').click();
  if ((await page.getByTestId('save-version').innerText()) === 'Save anyway') await page.getByTestId('save-version').click();
  await page.getByTestId('versions').locator('li').nth(2).waitFor();
  const saved = (await ana.get<{ workflow: { currentVersionId: number } }>(`/api/slides/${a.id}/annotations/review`)).body;
  const geojson = (await ana.get<{ features: { geometry: { coordinates: number[][][] } }[] }>(`/api/slides/${a.id}/annotations/versions/${saved.workflow.currentVersionId}.geojson`)).body;
  t.deepEqual(geojson.features.map((f) => f.geometry.coordinates[0]!.length).sort((x, y) => x - y), [5, 559], 'the rectangle and the hidden 558-vertex outline');
  await toggle.check();
  t.is(await outlines.count(), 2);
  await shot(page, '4-layers-scale-overview');
  t.deepEqual(pageErrors, []);
});
