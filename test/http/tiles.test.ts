// Reads ../shared/fixtures: the tile routes on real slides.
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { SlidesRepository } from '../../server/catalog/slides.repository.js';
import { readSlideFacts } from '../../server/catalog/slide-facts.js';
import { scaledJpegUnavailable, Slide } from '../../server/wsi/index.js';
import { bearerHeaders, viewerFetch } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { fixture, fixtureTest } from '../support/fixtures.js';
import { registerSlide } from '../support/slides.js';

async function pixels(body: ArrayBuffer | Buffer) {
  return sharp(Buffer.from(body as ArrayBuffer)).removeAlpha().raw().toBuffer({ resolveWithObject: true });
}

fixtureTest('the descriptor uses the native grid, and interior tiles pass through with the decoded pixels', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));

  const dzi = await viewerFetch(app, `/tiles/${slide.id}.dzi`);
  t.is(dzi.status, 200);
  t.regex(dzi.headers.get('content-type') ?? '', /^application\/xml/);
  const xml = await dzi.text();
  t.regex(xml, /<Image xmlns="http:\/\/schemas\.microsoft\.com\/deepzoom\/2008" Format="jpeg" Overlap="0" TileSize="240">/);
  t.regex(xml, /<Size Height="2967" Width="2220"\/>/);

  // Deep Zoom level 12 is full resolution (ceil(log2(2967)) = 12).
  const tile = await viewerFetch(app, `/tiles/${slide.id}_files/12/3_4.jpeg`);
  t.is(tile.status, 200);
  t.is(tile.headers.get('content-type'), 'image/jpeg');
  t.is(tile.headers.get('x-tile-source'), 'stored');
  t.is(tile.headers.get('cache-control'), 'private, max-age=31536000, immutable');
  const served = await pixels(await tile.arrayBuffer());
  t.deepEqual([served.info.width, served.info.height], [240, 240]);

  const reader = await Slide.open(fixture('CMU-1-Small-Region.svs'));
  t.teardown(() => reader.close());
  const decoded = await reader.readRegion(0, 3 * 240, 4 * 240, 240, 240);
  t.true(served.data.equals(decoded.data), 'the passed-through JPEG decodes to the decoded path’s pixels');

  const edge = await viewerFetch(app, `/tiles/${slide.id}_files/12/9_12.jpeg`);
  t.is(edge.status, 200);
  t.is(edge.headers.get('x-tile-source'), scaledJpegUnavailable() ? 'rendered' : 'cropped', 'an edge tile is cut from its stored tile');
  const edgePixels = await pixels(await edge.arrayBuffer());
  t.deepEqual([edgePixels.info.width, edgePixels.info.height], [2220 - 9 * 240, 2967 - 12 * 240]);

  // One level down, an interior tile is 2×2 stored tiles: decoded at half size where the addon is built.
  const below = await viewerFetch(app, `/tiles/${slide.id}_files/11/1_1.jpeg`);
  t.is(below.status, 200);
  t.is(below.headers.get('x-tile-source'), scaledJpegUnavailable() ? 'rendered' : 'scaled');
  const belowPixels = await pixels(await below.arrayBuffer());
  t.deepEqual([belowPixels.info.width, belowPixels.info.height], [240, 240]);
});

fixtureTest('conditional requests get 304 with the same ETag', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const url = `/tiles/${slide.id}_files/10/1_1.png`;
  const first = await viewerFetch(app, url);
  t.is(first.status, 200);
  t.is(first.headers.get('content-type'), 'image/png');
  const etag = first.headers.get('etag');
  t.regex(etag ?? '', /^"[\w-]{27}"$/);
  const second = await viewerFetch(app, url, { headers: { 'If-None-Match': etag! } });
  t.is(second.status, 304);
  t.is(second.headers.get('etag'), etag);
  t.is((await second.arrayBuffer()).byteLength, 0);
  const other = await viewerFetch(app, url, { headers: { 'If-None-Match': '"something-else"' } });
  t.is(other.status, 200);
});

fixtureTest('the OpenSlide grid is available by configuration', async (t) => {
  const app = await startTestApp(t, { env: { SLIDEBANK_TILES_GRID: 'openslide', SLIDEBANK_TILES_FORMAT: 'webp' } });
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const xml = await (await viewerFetch(app, `/tiles/${slide.id}.dzi`)).text();
  t.regex(xml, /Format="webp" Overlap="1" TileSize="254"/);
  const tile = await viewerFetch(app, `/tiles/${slide.id}_files/12/1_1.webp`);
  t.is(tile.headers.get('content-type'), 'image/webp');
  const { info } = await pixels(await tile.arrayBuffer());
  t.deepEqual([info.width, info.height], [256, 256], 'interior tiles carry one pixel of overlap on each side');
});

fixtureTest('a tile path that names no slide, tile or image is a 404 that says which', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const cases: [string, number, string][] = [
    [`/tiles/${slide.id}_files/13/0_0.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/12/10_0.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/12/0_13.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/-1/0_0.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/12/a_0.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/012/0_0.jpeg`, 404, 'tile_not_found'],
    [`/tiles/${slide.id}_files/12/0_1.5.jpeg`, 404, 'not_found'],
    [`/tiles/${slide.id}_files/12/0_0.gif`, 404, 'tile_not_found'],
    ['/tiles/abc.dzi', 404, 'slide_not_found'],
    ['/tiles/0.dzi', 404, 'slide_not_found'],
    ['/tiles/99999999999.dzi', 404, 'slide_not_found'],
    ['/tiles/999.dzi', 404, 'slide_not_found'],
    ['/tiles/999_files/0/0_0.jpeg', 404, 'slide_not_found'],
    ['/tiles/abc_files/0/0_0.jpeg', 404, 'slide_not_found'],
    [`/tiles/${slide.id}/overview`, 404, 'image_not_found'],
    ['/tiles/abc/thumbnail', 404, 'slide_not_found'],
  ];
  for (const [url, status, code] of cases) {
    const response = await viewerFetch(app, url);
    t.is(response.status, status, url);
    t.like(await response.json(), { error: { code } }, url);
  }
});

fixtureTest('the thumbnail is for viewers; label and macro are for staff only', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const thumbnail = await viewerFetch(app, `/tiles/${slide.id}/thumbnail`);
  t.is(thumbnail.status, 200);
  t.deepEqual((await pixels(await thumbnail.arrayBuffer())).info.width, 574);
  const staff = await bearerHeaders(app, { level: 'L1', roles: ['curator'] });
  for (const name of ['label', 'macro']) {
    const response = await viewerFetch(app, `/tiles/${slide.id}/${name}`);
    t.is(response.status, 403);
    t.like(await response.json(), { error: { code: 'staff_only' } });
    const forStaff = await fetch(app.url(`/tiles/${slide.id}/${name}`), { headers: staff });
    t.is(forStaff.status, 200, `${name}: staff see it`);
    t.is(forStaff.headers.get('content-type'), 'image/jpeg');
  }
  const tcga = await registerSlide(app.database.db, fixture('tcga-cr-7395-01a-01-ts1.svs'));
  t.is((await viewerFetch(app, `/tiles/${tcga.id}/thumbnail`)).status, 200);
});

fixtureTest('a damaged slide answers 500 with a reason, every time, and other slides keep working', async (t) => {
  const app = await startTestApp(t);
  const bad = await registerSlide(app.database.db, fixture('unreadable.svs'));
  const good = await registerSlide(app.database.db, fixture('small.svs'));
  for (let i = 0; i < 2; i++) {
    const response = await viewerFetch(app, `/tiles/${bad.id}_files/4/0_0.jpeg`);
    t.is(response.status, 500);
    const { error } = (await response.json()) as { error: { code: string; message: string } };
    t.is(error.code, 'slide_unreadable');
    t.is(error.message, `Slide ${bad.id} is damaged and cannot be displayed`);
  }
  t.is((await viewerFetch(app, `/tiles/${good.id}_files/4/0_0.jpeg`)).status, 200);
  t.true(app.logs.some((l) => l.msg === 'slide unreadable' && /Bogus marker length/.test(JSON.stringify(l.err))));
});

fixtureTest('a slide whose file vanished answers 500 slide_file_missing without the server path', async (t) => {
  const app = await startTestApp(t);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-vanish-'));
  const file = path.join(dir, 'soon-gone.svs');
  await copyFile(fixture('small.svs'), file);
  const slide = await registerSlide(app.database.db, file);
  await rm(dir, { recursive: true });
  const response = await viewerFetch(app, `/tiles/${slide.id}.dzi`);
  t.is(response.status, 500);
  const text = await response.text();
  t.false(text.includes(dir));
  t.like(JSON.parse(text), { error: { code: 'slide_file_missing' } });
});

fixtureTest('an unsupported slide answers 500 slide_unsupported', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('unopenable.tiff'));
  const response = await viewerFetch(app, `/tiles/${slide.id}.dzi`);
  t.is(response.status, 500);
  t.like(await response.json(), { error: { code: 'slide_unsupported' } });
});

fixtureTest('a slide that is in the catalog but not published is not served', async (t) => {
  const app = await startTestApp(t);
  const file = fixture('small.svs');
  const withdrawn = await new SlidesRepository(app.database.db.knex).create({
    name: 'withdrawn.svs',
    filePath: file,
    sha256: null,
    status: 'withdrawn',
    ...(await readSlideFacts(file)),
  });
  for (const url of [`/tiles/${withdrawn.id}.dzi`, `/tiles/${withdrawn.id}_files/4/0_0.jpeg`, `/iiif/${withdrawn.id}/info.json`]) {
    const response = await viewerFetch(app, url);
    t.is(response.status, 404, url);
    t.like(await response.json(), { error: { code: 'slide_not_found' } }, url);
  }
});
