/**
 * The slide viewer in a real browser (Debian's chromium through
 * playwright-core) against the real server: the overview level shows under
 * the tiles at once, a HiDPI screen gets the next finer Deep Zoom level, the
 * overview inset folds away and leaves the slide uncovered at the fit zoom,
 * Enter on it keeps the view on the slide; overlapping annotation layers share
 * one translucent fill; distances and areas are measured in µm from the
 * slide's MPP; the region list zooms to a region; brightness and gamma filter
 * the slide's image; the annotation exports as GeoJSON; the view turns by 90°
 * with the pointer and drags following, and the turn is in the deep link; a
 * second slide, chosen by name, beside the first follows its view and is in
 * the link too; every tile of either slide carries that slide's tile
 * capability and is answered through it. Screenshots go to test/artifacts/ (git-ignored).
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { makeSlide } from '../support/slides.js';
import { TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';

interface Feature {
  geometry: { type: string; coordinates: number[][][] | number[][] };
  properties: { layerId: number };
}

browserTest(`viewer: placeholder, HiDPI tiles, inset, fills, measuring, regions, image filters, GeoJSON export, rotation, side by side (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-viewer-${name}.png`) });

  const { root, base, cli, serve, database } = await appliance(t);
  await cli(['user', 'add', '--email', 'rita@lab.example', '--level', 'L3', '--name', 'Rita'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 9, out: inbox, name: 'colon' });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  const { id: slideId } = (await database.db.knex('slides').first('id')) as { id: number };
  // A second slide to compare with.
  const inbox2 = path.join(root, 'in2');
  await mkdir(inbox2);
  await makeSlide({ width: 3000, height: 2000, seed: 10, out: inbox2, name: 'colon2' });
  await cli(['ingest', inbox2, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  const { id: otherId } = (await database.db.knex('slides').whereNot('id', slideId).first('id')) as { id: number };
  await serve();

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
    });
  };
  const tileLevel = (url: string) => {
    const match = /\/tiles\/\d+_files\/(\d+)\/\d+_\d+\.\w+$/.exec(new URL(url).pathname);
    return match ? Number(match[1]) : null;
  };
  /** Every slide tile the pages asked for: each should carry its slide's tile capability (`?cap=v1.<user>.<slide>.…`). */
  const tileRequests: { slide: number; cap: string | null; status?: number }[] = [];
  const watchTiles = (page: Page) => {
    page.on('response', (response) => {
      const url = new URL(response.url());
      const slide = /^\/tiles\/(\d+)_files\//.exec(url.pathname)?.[1];
      if (slide) tileRequests.push({ slide: Number(slide), cap: url.searchParams.get('cap'), status: response.status() });
    });
  };

  // --- HiDPI: a screen of device pixel ratio 2.
  const hidpi = await browser.newContext({ viewport: { width: 1440, height: 900 }, deviceScaleFactor: 2, acceptDownloads: true });
  const page = await hidpi.newPage();
  watch(page);
  watchTiles(page);
  await logInThroughPortal(page, base, 'rita@lab.example', TEST_PASSWORD, '/catalog');
  const dzi = await (await page.request.get(`${base}/tiles/${slideId}.dzi`)).text();
  const tileSize = Number(/TileSize="(\d+)"/.exec(dzi)![1]);
  const maxLevel = Math.ceil(Math.log2(3000));
  let overviewLevel = maxLevel;
  while (3000 / 2 ** (maxLevel - overviewLevel) > tileSize) overviewLevel -= 1;

  // Tiles answer late (all but the one overview image): the placeholder is there before any tile.
  const requested: number[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await page.route(/\/tiles\/\d+_files\//, async (route) => {
    const level = tileLevel(route.request().url());
    const url = new URL(route.request().url()).pathname;
    if (level !== overviewLevel || !url.endsWith('/0_0.jpeg')) {
      requested.push(level!);
      await released;
    }
    await route.continue();
  });
  await page.goto(`${base}/slides/${slideId}`);
  const viewer = page.getByTestId('viewer');
  const placeholder = page.locator('img.viewer-placeholder');
  await placeholder.waitFor({ state: 'attached' });
  await page.waitForFunction((element) => {
    const image = element as unknown as { complete: boolean; naturalWidth: number };
    return image.complete && image.naturalWidth > 0;
  }, await placeholder.elementHandle());
  t.is(await viewer.getAttribute('data-tiles-loaded'), '0', 'the placeholder shows before any tile has loaded');
  t.regex((await placeholder.getAttribute('src')) ?? '', new RegExp(`^/tiles/${slideId}_files/${overviewLevel}/0_0\\.jpeg\\?cap=v1\\.\\d+\\.${slideId}\\.`), 'the placeholder carries the tile capability');
  await shot(page, '1-placeholder');
  release();
  await page.waitForFunction((element) => Number(element?.getAttribute('data-tiles-loaded')) >= 2, await viewer.elementHandle());
  await page.waitForURL(/[?&]z=/);
  const fitZoom = Number(new URL(page.url()).searchParams.get('z'));
  t.true(requested.length > 0);
  t.deepEqual([...new Set(requested)], [Math.round(fitZoom) + 1], `HiDPI asks for the next finer level than the zoom ${fitZoom}`);

  // The inset leaves the slide uncovered at the fit zoom.
  const overview = page.getByTestId('overview');
  const overlaps = async () => {
    const a = (await overview.boundingBox())!;
    const b = (await placeholder.boundingBox())!;
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  };
  t.false(await overlaps(), 'the inset does not cover the slide at the fit zoom');
  await shot(page, '2-fit');
  // It folds away and comes back.
  await page.getByTestId('overview-toggle').click();
  t.is(await overview.count(), 0);
  t.is(await page.getByTestId('overview-toggle').getAttribute('aria-expanded'), 'false');
  await page.getByTestId('overview-toggle').click();
  await overview.waitFor();

  // Enter on the inset: the view stays on the slide.
  await page.goto(`${base}/slides/${slideId}?x=2800&y=1800&z=12`);
  await page.locator('.dz-tile img').first().waitFor();
  await page.locator('.overview-target').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL((url) => url.searchParams.get('x') !== '2800');
  const afterEnter = new URL(page.url()).searchParams;
  const [cx, cy] = [Number(afterEnter.get('x')), Number(afterEnter.get('y'))];
  t.true(cx >= 0 && cx <= 3000 && cy >= 0 && cy <= 2000, `the map's centre ${cx}, ${cy} is on the slide`);

  // Past full resolution the tiles are drawn scaled, one pixel larger.
  await page.goto(`${base}/slides/${slideId}?x=1500&y=1000&z=13`);
  await page.locator('.dz-tile img').first().waitFor();
  await page.locator('.leaflet-tile-pane > .slide-layer.dz-scaled').waitFor({ state: 'attached' });

  // --- Annotation layers: outlines, and one shared translucent fill.
  await page.goto(`${base}/slides/${slideId}`);
  const controls = page.getByTestId('annotation-controls');
  await controls.locator('.overlay-toggle').first().waitFor();
  t.true((await controls.locator('.overlay-toggle').count()) >= 2, 'the slide has two annotation layers');
  type Node = { parentElement: Node | null };
  const fills = await page.locator('.annotation-fill-pane path').evaluateAll((paths) => {
    const style = (globalThis as unknown as { getComputedStyle(node: Node): { fillOpacity: string; opacity: string } }).getComputedStyle;
    return paths.map((path) => {
      let opacity = Number(style(path as unknown as Node).fillOpacity);
      for (let node: Node | null = path as unknown as Node; node; node = node.parentElement) opacity *= Number(style(node).opacity);
      return opacity;
    });
  });
  t.true(fills.length >= 2);
  // Overlapping paths in one pane of opacity 0.25: where they overlap the colour is the top one's at 0.25, not 0.25 + 0.25·0.75.
  t.true(fills.every((opacity) => opacity <= 0.25), `each fill is translucent: ${fills.join(', ')}`);
  t.is(await page.locator('.annotation-fill-pane').count(), 1, 'every layer fills in one pane');
  const outlineFills = await page.locator('.leaflet-overlay-pane path').evaluateAll((paths) => [...new Set(paths.map((path) => path.getAttribute('fill')))]);
  t.deepEqual(outlineFills, ['none'], 'outlines are not filled');
  // The controls are beside the map, not below it.
  const mapBox = (await viewer.boundingBox())!;
  const controlsBox = (await controls.boundingBox())!;
  t.true(controlsBox.x >= mapBox.x + mapBox.width && controlsBox.y < mapBox.y + mapBox.height, 'the layer controls sit beside the map');
  await shot(page, '3-annotations');

  // --- GeoJSON export.
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-geojson').click()]);
  const exported = JSON.parse(await readFile((await download.path())!, 'utf8')) as { type: string; features: Feature[] };
  t.is(exported.type, 'FeatureCollection');
  t.true(exported.features.length > 0);

  // --- The region list zooms to a region.
  const layerId = Number(await controls.locator('.overlay-toggle').first().getAttribute('data-layer-id'));
  const region = exported.features.find((feature) => feature.properties.layerId === layerId)!;
  const ring = (region.geometry.type === 'Polygon' ? (region.geometry.coordinates as number[][][])[0]! : (region.geometry.coordinates as number[][]));
  const xs = ring.map((p) => p[0]!);
  const ys = ring.map((p) => p[1]!);
  const before = page.url();
  await controls.locator(`[data-regions-of="${layerId}"] summary`).click();
  await controls.locator(`[data-regions-of="${layerId}"]`).getByTestId('region').first().click();
  await page.waitForURL((url) => url.href !== before);
  await page.waitForTimeout(400);
  const zoomed = new URL(page.url()).searchParams;
  const [rx, ry] = [Number(zoomed.get('x')), Number(zoomed.get('y'))];
  t.true(rx >= Math.min(...xs) && rx <= Math.max(...xs) && ry >= Math.min(...ys) && ry <= Math.max(...ys), `centre ${rx}, ${ry} is in the region's box`);
  t.true(Number(zoomed.get('z')) > fitZoom, 'and zoomed in');

  // --- Brightness, contrast and gamma filter the slide's image.
  const slideLayer = page.locator('.leaflet-tile-pane > .slide-layer');
  const filter = () => slideLayer.evaluate((element) => (element as unknown as { style: { filter: string } }).style.filter);
  t.is(await filter(), '');
  await page.locator('input[name=brightness]').fill('1.5');
  t.regex(await filter(), /brightness\(1\.5\)/);
  await page.locator('input[name=gamma]').fill('2');
  t.regex(await filter(), /url\("?#viewer-gamma-/);
  const exponent = await page.locator('filter feFuncR').getAttribute('exponent');
  t.is(Number(exponent), 0.5);
  await shot(page, '4-filters');

  // --- Measuring: at zoom 12 (full resolution) a CSS pixel is a level-0 pixel.
  const slide = (await (await page.request.get(`${base}/api/slides/${slideId}`)).json()) as { mpp: { x: number } };
  const mpp = slide.mpp.x;
  t.true(mpp > 0);
  await page.goto(`${base}/slides/${slideId}?x=1500&y=1000&z=12`);
  await page.locator('.dz-tile img').first().waitFor();
  const box = (await viewer.boundingBox())!;
  const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  await page.getByTestId('measure-distance').click();
  await page.mouse.click(centre.x - 100, centre.y);
  await page.mouse.click(centre.x + 200, centre.y + 50);
  const distance = (await page.getByTestId('measure-result').textContent()) ?? '';
  const microns = Number(/([\d.]+) µm/.exec(distance)?.[1]);
  t.true(Math.abs(microns - Math.hypot(300, 50) * mpp) < 0.6, `${distance} against ${(Math.hypot(300, 50) * mpp).toFixed(1)} µm`);
  await page.getByTestId('measure-area').click();
  await page.mouse.click(centre.x - 100, centre.y - 50);
  await page.mouse.click(centre.x + 100, centre.y - 50);
  await page.mouse.click(centre.x + 100, centre.y + 50);
  await page.mouse.click(centre.x - 100, centre.y + 50);
  await page.getByRole('button', { name: 'Finish' }).click();
  const area = (await page.getByTestId('measure-result').textContent()) ?? '';
  const squareMicrons = Number(/([\d,]+) µm²/.exec(area)?.[1]?.replace(/,/g, ''));
  const expected = 200 * 100 * mpp * mpp;
  t.true(Math.abs(squareMicrons - expected) / expected < 0.02, `${area} against ${expected.toFixed(0)} µm²`);
  await shot(page, '5-measure');
  await page.keyboard.press('Escape');
  t.is(await page.getByTestId('measure-result').count(), 0);

  // --- Rotation by 90°: the slide's top turns to the right; the cursor and drags follow the turn.
  await page.goto(`${base}/slides/${slideId}?x=1500&y=1000&z=12`);
  await page.locator('.dz-tile img').first().waitFor();
  await page.getByTestId('rotate-right').click();
  t.is(await page.getByTestId('rotation').textContent(), '90°');
  t.regex((await viewer.getAttribute('style')) ?? '', /rotate\(90deg\)/);
  const turned = (await page.getByTestId('viewer-stage').boundingBox())!;
  const middle = { x: turned.x + turned.width / 2, y: turned.y + turned.height / 2 };
  const cursorAt = async (dx: number, dy: number) => {
    await page.mouse.move(middle.x + dx, middle.y + dy);
    const match = /^x ([\d,]+), y ([\d,]+) px$/.exec((await page.getByTestId('cursor').textContent()) ?? '');
    return { x: Number(match![1]!.replace(/,/g, '')), y: Number(match![2]!.replace(/,/g, '')) };
  };
  const atMiddle = await cursorAt(0, 0);
  const right = await cursorAt(100, 0);
  t.true(Math.abs(right.x - atMiddle.x) <= 1 && Math.abs(atMiddle.y - right.y - 100) <= 1, `right of the centre is up the slide: ${JSON.stringify([atMiddle, right])}`);
  // The zoom buttons stay upright in the top-left corner, and work.
  const zoomIn = (await page.locator('.leaflet-control-zoom-in').boundingBox())!;
  t.true(zoomIn.x - turned.x < 40 && zoomIn.y - turned.y < 40, `zoom control at ${zoomIn.x - turned.x}, ${zoomIn.y - turned.y}`);
  await shot(page, '6-rotated');
  await page.mouse.move(middle.x, middle.y);
  await page.mouse.down();
  await page.mouse.move(middle.x, middle.y - 50, { steps: 5 });
  await page.mouse.move(middle.x, middle.y - 100, { steps: 5 });
  await page.waitForTimeout(200);
  await page.mouse.up();
  await page.waitForTimeout(800);
  const dragged = new URL(page.url()).searchParams;
  const [gx, gy] = [Number(dragged.get('x')), Number(dragged.get('y'))];
  t.true(gx > 1500 + 60 && Math.abs(gy - 1000) < 30, `dragging up moves the view along the slide's x: ${gx}, ${gy}`);
  // The turn is in the deep link, and the link opens turned.
  t.is(new URL(page.url()).searchParams.get('r'), '90');
  await page.goto(page.url());
  await page.locator('.dz-tile img').first().waitFor();
  t.is(await page.getByTestId('rotation').textContent(), '90°');
  t.regex((await viewer.getAttribute('style')) ?? '', /rotate\(90deg\)/);
  await page.getByTestId('rotate-left').click();
  t.is(await page.getByTestId('rotation').textContent(), '0°');
  await page.waitForURL((url) => !url.searchParams.has('r'));

  // --- Two slides side by side: the second starts at the first's view and follows it.
  await page.goto(`${base}/slides/${slideId}?x=1000&y=700&z=11`);
  await page.locator('.dz-tile img').first().waitFor();
  // Chosen by its name, as the catalog suggests it.
  const { name: otherName } = (await (await page.request.get(`${base}/api/slides/${otherId}`)).json()) as { name: string };
  await page.locator('input[name=compare]').fill(otherName.slice(0, -2));
  await page.locator(`#compare-suggestions option[value="${otherName}"]`).waitFor({ state: 'attached' });
  await page.locator('input[name=compare]').fill(otherName);
  await page.getByRole('button', { name: 'Show', exact: true }).click();
  const pane = page.getByTestId('compare-pane');
  const second = pane.getByTestId('viewer');
  await page.waitForFunction((element) => Number(element?.getAttribute('data-tiles-loaded')) >= 1, await second.elementHandle());
  t.is(await page.getByTestId('viewer').count(), 2);
  const first = page.getByTestId('viewer').first();
  const view = async (element: typeof first) => ((await element.getAttribute('data-view')) ?? '').split(',').map(Number);
  const near = (a: number[], b: number[]) => a.length === 3 && Math.abs(a[0]! - b[0]!) <= 2 && Math.abs(a[1]! - b[1]!) <= 2 && Math.abs(a[2]! - b[2]!) < 0.01;
  await page.waitForFunction((element) => element?.getAttribute('data-view') !== null, await second.elementHandle());
  t.true(near(await view(second), [1000, 700, 11]), `the second viewer starts at the first's view: ${await second.getAttribute('data-view')}`);
  const firstBox = (await first.boundingBox())!;
  await page.mouse.move(firstBox.x + firstBox.width / 2, firstBox.y + firstBox.height / 2);
  await page.mouse.down();
  await page.mouse.move(firstBox.x + firstBox.width / 2 - 80, firstBox.y + firstBox.height / 2 - 40, { steps: 8 });
  await page.waitForTimeout(200);
  await page.mouse.up();
  await page.waitForTimeout(1000);
  const moved = await view(first);
  t.false(near(moved, [1000, 700, 11]), 'the first view moved');
  t.true(near(await view(second), moved), `the second follows: ${String(moved)} and ${await second.getAttribute('data-view')}`);
  await shot(page, '7-compare');
  // The second slide is in the address: the link opens both.
  await page.waitForURL((url) => url.searchParams.get('compare') === String(otherId));
  await page.goto(page.url());
  await page.waitForFunction((element) => Number(element?.getAttribute('data-tiles-loaded')) >= 1, await page.getByTestId('compare-pane').getByTestId('viewer').elementHandle());
  t.is(await page.locator('input[name=compare]').inputValue(), otherName);
  await page.getByTestId('compare-pane').getByRole('button', { name: 'Close' }).click();
  await page.waitForURL((url) => !url.searchParams.has('compare'));
  t.is(await page.getByTestId('viewer').count(), 1);

  // --- A screen of ratio 1 asks for the zoom's own level.
  const plain = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const other = await plain.newPage();
  watch(other);
  const levels: number[] = [];
  other.on('request', (request) => {
    const level = tileLevel(request.url());
    if (level !== null && !new URL(request.url()).pathname.endsWith(`_files/${overviewLevel}/0_0.jpeg`)) levels.push(level);
  });
  await logInThroughPortal(other, base, 'rita@lab.example', TEST_PASSWORD, `/slides/${slideId}?x=1500&y=1000&z=10`);
  await other.waitForFunction((element) => Number(element?.getAttribute('data-tiles-loaded')) >= 2, await other.getByTestId('viewer').elementHandle());
  t.deepEqual([...new Set(levels)], [10]);
  await plain.close();

  // Both viewers asked for their tiles with their own slide's capability, and were answered by it.
  t.true(tileRequests.some((r) => r.slide === slideId) && tileRequests.some((r) => r.slide === otherId), 'tiles of both slides were seen');
  const withoutCapability = tileRequests.filter((r) => !r.cap || !new RegExp(`^v1\\.\\d+\\.${r.slide}\\.\\d+\\.[\\w-]{43}$`).test(r.cap) || (r.status !== 200 && r.status !== 304));
  t.deepEqual(withoutCapability, [], `${tileRequests.length} tile requests, each with its slide's capability and answered by it`);

  t.deepEqual(pageErrors, []);
});
