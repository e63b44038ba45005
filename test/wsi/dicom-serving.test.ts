// Reads ../shared/fixtures/dicom: DICOM slides served by the unchanged tile engine (Deep Zoom, IIIF,
// thumbnails and associated images), through the real application's routes.
import path from 'node:path';
import sharp from 'sharp';
import { tissueMask } from '../../server/toolbox/tissue-mask.js';
import { DeepZoom, OPENSLIDE_GRID, renderLevel0Region, Slide } from '../../server/wsi/index.js';
import { bearerHeaders, viewerFetch } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { fixture, fixturesDir, fixtureTest } from '../support/fixtures.js';
import { psnr } from '../support/openslide.js';
import { registerSlide } from '../support/slides.js';

const decode = async (body: ArrayBuffer) => sharp(Buffer.from(body)).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });

fixtureTest('a DICOM series folder is served through the tile routes: descriptor, stored and rendered tiles, IIIF, thumbnail, label', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, path.join(fixturesDir, 'dicom/wg26-bpaec'));
  t.like(slide, { vendor: 'dicom', width: 3072, height: 2304, levelCount: 8, mppX: 1.29, mppY: 1.29 });

  const dzi = await viewerFetch(app, `/tiles/${slide.id}.dzi`);
  t.is(dzi.status, 200);
  const xml = await dzi.text();
  t.regex(xml, /<Size Height="2304" Width="3072"\/>/);
  // Greyscale frames are decoded by the DICOM driver, not passed through: OpenSlide's grid.
  t.regex(xml, /Overlap="1" TileSize="254"/);

  // Deep Zoom level 12 is full resolution (ceil(log2(3072)) = 12); the greyscale frames are decoded and rendered.
  const tile = await viewerFetch(app, `/tiles/${slide.id}_files/12/1_1.png`);
  t.is(tile.status, 200);
  t.is(tile.headers.get('x-tile-source'), 'rendered');
  const served = await decode(await tile.arrayBuffer());
  const reader = await Slide.open(path.join(fixturesDir, 'dicom/wg26-bpaec'));
  t.teardown(() => reader.close());
  const grid = new DeepZoom(reader, DeepZoom.nativeGrid(reader) ?? OPENSLIDE_GRID);
  const level = grid.levels[12]!;
  t.is(level.width, 3072);
  const expected = await grid.tile({ level: 12, col: 1, row: 1 }, 'png', 90);
  t.true(served.data.equals((await decode(new Uint8Array(expected.body).buffer)).data), 'the route serves what the engine renders');

  const info = await viewerFetch(app, `/iiif/${slide.id}/info.json`);
  t.is(info.status, 200);
  t.like(await info.json(), { width: 3072, height: 2304 });
  const region = await viewerFetch(app, `/iiif/${slide.id}/1024,1024,256,256/max/0/default.png`);
  t.is(region.status, 200);
  const regionPixels = await decode(await region.arrayBuffer());
  t.true(regionPixels.data.equals((await reader.readRegion(0, 1024, 1024, 256, 256)).data), 'IIIF at scale 1 gives the level-0 pixels');

  const thumbnail = await viewerFetch(app, `/tiles/${slide.id}/thumbnail`);
  t.is(thumbnail.status, 200);
  t.true((await decode(await thumbnail.arrayBuffer())).info.width > 0);
  const staff = await bearerHeaders(app, { level: 'L1', roles: ['curator'] });
  const label = await fetch(app.url(`/tiles/${slide.id}/label`), { headers: staff });
  t.is(label.status, 200);
  const labelPixels = await decode(await label.arrayBuffer());
  t.deepEqual([labelPixels.info.width, labelPixels.info.height], [579, 441]);
});

fixtureTest('JPEG frames of a DICOM level pass through as stored; tiles between levels and renders agree with the decoded level', async (t) => {
  const slide = await Slide.open(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'));
  t.teardown(() => slide.close());
  const grid = DeepZoom.nativeGrid(slide);
  t.deepEqual(grid, { tileSize: 256, overlap: 0 }, 'every level is JPEG-tiled alike: the native grid');
  const dz = new DeepZoom(slide, grid!);
  const top = dz.levels.length - 1;
  const stored = await dz.tile({ level: top, col: 1, row: 1 }, 'jpeg', 90);
  t.is(stored.made, 'stored');
  const { data } = await decode(new Uint8Array(stored.body).buffer);
  t.true(data.equals((await slide.readTile(0, 1, 1)).data), 'the stored frame, decoded, is the tile');

  // A tile a level down is a 2×2 block of frames at half size (scaled or rendered): close to the level's pixels halved.
  const half = await dz.tile({ level: top - 1, col: 0, row: 0 }, 'png', 90);
  const halfPixels = await decode(new Uint8Array(half.body).buffer);
  const reference = await sharp((await slide.readRegion(0, 0, 0, 512, 512)).data, { raw: { width: 512, height: 512, channels: 3 } }).resize(256, 256).raw().toBuffer();
  t.true(psnr(halfPixels.data, reference) >= 30);

  const region = await renderLevel0Region(slide, { x: 100, y: 50, width: 400, height: 300 }, 200, 150, (image) => image.raw().toBuffer());
  t.is(region.length, 200 * 150 * 3);
});

fixtureTest('the toolbox reads a DICOM slide as any other: a tissue mask of the CAMELYON sample finds tissue and background', async (t) => {
  const slide = await Slide.open(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'));
  t.teardown(() => slide.close());
  const mask = await tissueMask(slide, { downsample: 4, minObjectArea: 0, minHoleArea: 0 });
  t.like(mask, { width: 288, height: 175, level0: { width: 1152, height: 700 } });
  t.true(mask.tissuePixels > 0.05 * mask.width * mask.height && mask.tissuePixels < 0.5 * mask.width * mask.height, `${mask.tissuePixels} tissue pixels`);
});
