import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { makeSlide } from '../support/slides.js';
import { DecodedTileCache, SlidePool, WsiError, type RgbImage } from '../../server/wsi/index.js';

const image = (fill: number): RgbImage => ({ width: 2, height: 2, data: Buffer.alloc(12, fill) });

test('concurrent requests for the same tiles decode them once, in one batch', async (t) => {
  const cache = new DecodedTileCache(1 << 20);
  const batches: number[][] = [];
  const decode = async (missing: number[]) => {
    batches.push(missing);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return missing.map((i) => image(i));
  };
  const [a, b] = await Promise.all([cache.getMany(['x', 'y'], decode), cache.getMany(['y', 'x', 'z'], decode)]);
  t.deepEqual(batches, [[0, 1], [2]], 'the second call decoded only z');
  t.is(a[1], b[0]);
  t.is(a[0], b[1]);
  t.deepEqual(cache.size, { entries: 3, bytes: 36 });
});

test('a failed decode is not cached: the next request tries again', async (t) => {
  const cache = new DecodedTileCache(1 << 20);
  await t.throwsAsync(cache.getMany(['k'], async () => Promise.reject(new WsiError('decode_failed', 'broken'))), { message: 'broken' });
  const [tile] = await cache.getMany(['k'], async () => [image(7)]);
  t.is(tile?.data[0], 7);
});

test('the cache stays within its byte bound', async (t) => {
  const cache = new DecodedTileCache(30);
  for (let i = 0; i < 10; i++) await cache.getMany([`t${i}`], async () => [image(i)]);
  t.true(cache.size.bytes <= 30, `${cache.size.bytes} bytes`);
  t.is(cache.size.entries, 2);
});

test('the slide pool keeps at most maxOpen slides open, closes the others, and forgets failed opens', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = await Promise.all(
    [1, 2, 3].map(async (seed) => (await makeSlide({ width: 512, height: 512, seed, out: dir, name: `s${seed}` })).svs),
  );
  const pool = new SlidePool({ maxOpen: 2, decodedCacheBytes: 1 << 20 });
  t.teardown(() => pool.close());
  const opened = [];
  for (const file of files) opened.push(await pool.use(file, async (slide) => slide));
  t.is(pool.openCount, 2);
  // Stored bytes come from the file itself (decoded tiles may still be cached).
  const closed = await t.throwsAsync(opened[0]!.readStoredJpeg(0, 0, 0), undefined, 'the evicted slide was closed');
  t.regex(String((closed as NodeJS.ErrnoException | undefined)?.code), /EBADF|ERR_INVALID_STATE/);
  t.is((await opened[2]!.readStoredJpeg(0, 0, 0))[0], 0xff);

  const bad = path.join(dir, 'bad.svs');
  await writeFile(bad, 'not a slide');
  await t.throwsAsync(pool.use(bad, async () => undefined), { instanceOf: WsiError });
  await writeFile(bad, 'still not a slide, but a new attempt');
  await t.throwsAsync(pool.use(bad, async () => undefined), { instanceOf: WsiError });
  t.is(pool.openCount, 2, 'failed opens are not kept');
});

test('opening a slide through the pool decodes its smallest level ahead of the first overview tile', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-warm-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const { svs } = await makeSlide({ width: 3000, height: 2000, levels: 2, seed: 4, out: dir });
  const pool = new SlidePool({ maxOpen: 2, decodedCacheBytes: 64 << 20 });
  t.teardown(() => pool.close());
  t.is(pool.tileCache.size.entries, 0);
  await pool.use(svs, async () => undefined);
  for (let i = 0; i < 200 && pool.tileCache.size.entries === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  // The smallest level here is 750×500: kept whole, as one entry of 750 × 500 × 3 bytes.
  t.deepEqual(pool.tileCache.size, { entries: 1, bytes: 750 * 500 * 3 });
});
