/**
 * Annotation review in a real browser: an AI proposal imported with the CLI; a
 * pathologist moves a vertex of it in the viewer's editor, saves a new
 * version and confirms; a second pathologist approves it in their own
 * session; the released version is what the catalog's overlay then shows.
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
interface Review {
  workflow: { state: string; revision: number; releasedVersionId: number | null; currentVersionId: number | null };
  versions: { id: number; method: string; author: { email: string } | null }[];
}

browserTest(`a pathologist corrects an AI proposal in the viewer and confirms it; a colleague approves it (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-review-${name}.png`), fullPage: true });

  const { root, base, site, cli, serve } = await appliance(t);
  for (const [email, name] of [['ana@hospital.example', 'Ana'], ['ben@hospital.example', 'Ben']]) {
    await cli(['user', 'add', '--email', email!, '--level', 'L1', '--role', 'pathologist', '--name', name!], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  }
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 11, out: inbox, name: 'liver' });
  await cli(['ingest', inbox, '--organ', 'LV', '--histology', 'HCC', '--stain', 'HE', '--differentiation', 'MD']);
  await serve();
  const ana = await logIn(site, 'ana@hospital.example');
  const slideId = (await ana.get<{ items: { id: number }[] }>('/api/slides')).body.items[0]!.id;

  // The AI's proposal: a square well inside the slide, imported as an operator would.
  const square: Ring = [[800, 600], [2200, 600], [2200, 1400], [800, 1400], [800, 600]];
  const proposalFile = path.join(root, 'proposal.geojson');
  await writeFile(proposalFile, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { layerId: 1, layerName: 'Tumor', colour: '#ff0000' }, geometry: { type: 'Polygon', coordinates: [square] } }] }));
  await cli(['annotations', 'import', proposalFile, '--slide', String(slideId), '--model', 'unet-v3']);

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const open = async (email: string) => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await logInThroughPortal(page, base, email, TEST_PASSWORD, `/slides/${slideId}/review`);
    return page;
  };

  const first = await open('ana@hospital.example');
  await first.getByTestId('review-state').filter({ hasText: 'AI proposal to review' }).waitFor();
  await first.locator('.leaflet-tile-loaded').first().waitFor();
  // The editor's toolbar: "Edit Layers", then drag the proposal's first vertex 60 screen pixels right and down.
  await first.locator('.leaflet-pm-icon-edit').click();
  const vertex = first.locator('.marker-icon:not(.marker-icon-middle)').first();
  await vertex.waitFor();
  const box = (await vertex.boundingBox())!;
  await first.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await first.mouse.down();
  await first.mouse.move(box.x + box.width / 2 + 30, box.y + box.height / 2 + 30, { steps: 5 });
  await first.mouse.move(box.x + box.width / 2 + 60, box.y + box.height / 2 + 60, { steps: 5 });
  await first.mouse.up();
  await first.getByTestId('save-version').waitFor({ state: 'visible' });
  t.true(await first.getByTestId('save-version').isEnabled(), 'the moved vertex is an unsaved change');
  await shot(first, '1-edited');
  await first.getByTestId('save-version').click();
  await first.getByTestId('review-state').filter({ hasText: 'in review' }).waitFor();
  await first.getByTestId('confirm-version').click();
  await first.getByTestId('review-state').filter({ hasText: 'waiting for a cross-check' }).waitFor();
  t.is(await first.getByTestId('approve-version').count(), 0, 'the confirming pathologist is not offered the cross-check');
  await shot(first, '2-confirmed');

  const second = await open('ben@hospital.example');
  await second.getByTestId('review-state').filter({ hasText: 'waiting for a cross-check' }).waitFor();
  await second.getByTestId('cross-check-comment').fill('margins agreed');
  await second.getByTestId('approve-version').click();
  await second.getByTestId('review-state').filter({ hasText: 'released' }).waitFor();
  await shot(second, '3-released');

  // The server's record: proposal, correction by Ana, released after Ben's approval; the overlay is the correction.
  const review = (await ana.get<Review>(`/api/slides/${slideId}/annotations/review`)).body;
  t.is(review.workflow.state, 'released');
  const released = review.versions.find((v) => v.id === review.workflow.releasedVersionId)!;
  t.like(released, { method: 'corrected', author: { email: 'ana@hospital.example' } });
  const overlay = (await ana.get<{ features: { geometry: { coordinates: Ring[] } }[] }>(`/api/slides/${slideId}/annotation.geojson`)).body;
  const ring = overlay.features[0]!.geometry.coordinates[0]!;
  t.is(ring.length, square.length, 'still a four-cornered outline');
  const moved = ring.filter(([x, y]) => !square.some(([sx, sy]) => Math.abs(sx - x) < 1 && Math.abs(sy - y) < 1));
  t.is(new Set(moved.map((p) => JSON.stringify(p))).size, 1, `exactly one corner moved (the closing position repeats it): ${JSON.stringify(ring)}`);
  t.deepEqual(pageErrors, []);
});
