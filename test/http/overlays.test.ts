// Heat-map overlays of a slide under /tiles/<id>/overlays.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { heatmap } from '../../server/toolbox/index.js';
import { DeepZoom, Slide } from '../../server/wsi/index.js';
import { bearerHeaders } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const tempDirs: string[] = [];
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

test('an overlay published into <paths.cache>/overlays/<id>/<name> is listed and served to L1, on the slide\'s grid', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-overlays-'));
  tempDirs.push(dir);
  const cache = path.join(dir, 'cache');
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_CACHE: cache } });
  const { svs } = await makeSlide({ width: 1200, height: 900, levels: 2, seed: 6, out: dir });
  const slide = await registerSlide(app.database.db, svs);
  const reader = await Slide.open(svs);
  t.teardown(() => reader.close());
  const grid = DeepZoom.nativeGrid(reader)!;
  const map = { width: 12, height: 9, data: new Uint16Array(108).fill(65535), level0: { width: 1200, height: 900 } };
  await heatmap(map, { out: path.join(cache, 'overlays', String(slide.id), 'tumour'), name: 'tumour', grid });
  // A folder without its .dzi (being written, or broken) is no overlay.
  await heatmap(map, { out: path.join(cache, 'overlays', String(slide.id), 'partial'), name: 'other', grid });

  const headers = await bearerHeaders(app);
  const get = (p: string, extra: Record<string, string> = {}) => fetch(app.url(p), { headers: { ...headers, ...extra } });

  const list = await get(`/tiles/${slide.id}/overlays`);
  t.is(list.status, 200);
  t.like(await list.json(), { overlays: [{ name: 'tumour', dzi: `/tiles/${slide.id}/overlays/tumour.dzi`, colormap: 'jet', cutoff: 0 }] });

  const dzi = await get(`/tiles/${slide.id}/overlays/tumour.dzi`);
  t.is(dzi.status, 200);
  t.regex(dzi.headers.get('content-type') ?? '', /^application\/xml/);
  const slideDzi = await (await get(`/tiles/${slide.id}.dzi`)).text();
  t.is(await dzi.text(), slideDzi.replace('Format="jpeg"', 'Format="png"'), 'the same geometry as the slide\'s own descriptor');

  const top = new DeepZoom(reader, grid).levels.length - 1;
  const url = `/tiles/${slide.id}/overlays/tumour_files/${top}/1_1.png`;
  const tile = await get(url);
  t.is(tile.status, 200);
  t.is(tile.headers.get('content-type'), 'image/png');
  t.is(tile.headers.get('cache-control'), 'private, max-age=300');
  const etag = tile.headers.get('etag');
  t.regex(etag ?? '', /^"[\w-]{27}"$/);
  const { data, info } = await sharp(Buffer.from(await tile.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
  t.deepEqual([info.width, info.height, info.channels], [grid.tileSize, grid.tileSize, 4]);
  t.deepEqual([...data.subarray(0, 4)], [128, 0, 0, 255]);
  const again = await get(url, { 'If-None-Match': etag! });
  t.is(again.status, 304);
  t.is(again.headers.get('etag'), etag);

  // Unknown overlays and tiles, and the overlay without its descriptor: 404.
  for (const p of [`/tiles/${slide.id}/overlays/nope.dzi`, `/tiles/${slide.id}/overlays/tumour_files/${top}/99_0.png`, `/tiles/${slide.id}/overlays/partial.dzi`, `/tiles/${slide.id}/overlays/partial_files/0/0_0.png`, `/tiles/99999/overlays`]) {
    t.is((await get(p)).status, 404, p);
  }
  // Strict paths: names [a-z0-9-]{1,64}, plain integers; nothing else reaches the disk.
  for (const p of [
    `/tiles/${slide.id}/overlays/Tumour.dzi`,
    `/tiles/${slide.id}/overlays/..%2F..%2Fsecret.dzi`,
    `/tiles/${slide.id}/overlays/tumour_files/01/0_0.png`,
    `/tiles/${slide.id}/overlays/tumour_files/${top}/0_0.jpeg`,
    `/tiles/${slide.id}/overlays/tumour_files/-1/0_0.png`,
    `/tiles/${slide.id}/overlays/${'a'.repeat(65)}.dzi`,
  ]) {
    t.is((await get(p)).status, 404, p);
  }
  const malformed = await get('/tiles/abc/overlays');
  t.is(malformed.status, 404);
  t.like(await malformed.json(), { error: { code: 'slide_not_found' } });
  // L1 as for the slide's tiles: no token, no overlay.
  t.is((await fetch(app.url(url))).status, 401);
});
