// Reads ../shared/fixtures: the IIIF Image API 3.0 (level 1) on a real slide.
import sharp from 'sharp';
import { Slide } from '../../server/wsi/index.js';
import { viewerFetch } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { fixture, fixtureTest } from '../support/fixtures.js';
import { registerSlide } from '../support/slides.js';

fixtureTest('info.json describes the slide as a level-1 ImageService3', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const redirect = await viewerFetch(app, `/iiif/${slide.id}`, { redirect: 'manual' });
  t.is(redirect.status, 303);
  t.is(redirect.headers.get('location'), `/iiif/${slide.id}/info.json`);
  const response = await viewerFetch(app, `/iiif/${slide.id}/info.json`);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/ld\+json/);
  t.like(await response.json(), {
    '@context': 'http://iiif.io/api/image/3/context.json',
    id: app.url(`/iiif/${slide.id}`),
    type: 'ImageService3',
    protocol: 'http://iiif.io/api/image',
    profile: 'level1',
    width: 2220,
    height: 2967,
    tiles: [{ width: 512, scaleFactors: [1, 2, 4, 8] }],
  });
});

fixtureTest('regions and sizes render what they name, with the slide’s own pixels at scale 1', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const size = async (url: string) => {
    const response = await viewerFetch(app, url);
    t.is(response.status, 200, url);
    const { info } = await sharp(Buffer.from(await response.arrayBuffer())).toBuffer({ resolveWithObject: true });
    return [info.width, info.height, info.format];
  };
  t.deepEqual(await size(`/iiif/${slide.id}/full/max/0/default.jpg`), [2220, 2967, 'jpeg']);
  t.deepEqual(await size(`/iiif/${slide.id}/full/500,/0/default.png`), [500, 668, 'png']);
  t.deepEqual(await size(`/iiif/${slide.id}/square/,300/0/default.webp`), [300, 300, 'webp']);
  t.deepEqual(await size(`/iiif/${slide.id}/1024,1024,1024,1024/512,512/0/default.jpg`), [512, 512, 'jpeg']);
  t.deepEqual(await size(`/iiif/${slide.id}/2000,2900,1000,1000/max/0/default.jpg`), [220, 67, 'jpeg'], 'cropped at the edge');
  t.deepEqual(await size(`/iiif/${slide.id}/0,0,100,100/^200,200/0/default.jpg`), [200, 200, 'jpeg']);

  const png = await viewerFetch(app, `/iiif/${slide.id}/300,400,128,96/max/0/default.png`);
  const served = await sharp(Buffer.from(await png.arrayBuffer())).raw().toBuffer();
  const reader = await Slide.open(fixture('CMU-1-Small-Region.svs'));
  t.teardown(() => reader.close());
  t.true(served.equals((await reader.readRegion(0, 300, 400, 128, 96)).data));
});

fixtureTest('requests beyond level 1 or outside the image are refused with 400', async (t) => {
  const app = await startTestApp(t);
  const slide = await registerSlide(app.database.db, fixture('CMU-1-Small-Region.svs'));
  const cases: [string, string][] = [
    ['full/max/90/default.jpg', 'unsupported_iiif_feature'],
    ['full/max/0/gray.jpg', 'unsupported_iiif_feature'],
    ['full/max/0/default.gif', 'unsupported_iiif_feature'],
    ['5000,0,10,10/max/0/default.jpg', 'invalid_iiif_request'],
    ['0,0,0,10/max/0/default.jpg', 'invalid_iiif_request'],
    ['pct:10,10,10,10/max/0/default.jpg', 'invalid_iiif_request'],
    ['0,0,100,100/200,/0/default.jpg', 'invalid_iiif_request'],
    ['full/99999,99999/0/default.jpg', 'invalid_iiif_request'],
    ['full/0,/0/default.jpg', 'invalid_iiif_request'],
  ];
  for (const [path, code] of cases) {
    const response = await viewerFetch(app, `/iiif/${slide.id}/${path}`);
    t.is(response.status, 400, path);
    t.like(await response.json(), { error: { code } }, path);
  }
  t.is((await viewerFetch(app, '/iiif/999/info.json')).status, 404);
  // Not {region}/{size}/{rotation}/{quality}.{format} at all: no such address.
  const shapeless = await viewerFetch(app, `/iiif/${slide.id}/full/max/0/default`);
  t.is(shapeless.status, 404);
  t.like(await shapeless.json(), { error: { code: 'not_found' } });
  const malformed = await viewerFetch(app, '/iiif/abc/full/max/0/default.jpg');
  t.is(malformed.status, 404);
  t.like(await malformed.json(), { error: { code: 'slide_not_found' } });
});
