import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import pLimit from 'p-limit';
import type { Sharp } from 'sharp';
import { makeSlide } from '../support/slides.js';
import { largestRender, planLevel0Region, renderLevel0Region, Slide, WsiError } from '../../server/wsi/index.js';

/** 4001×3000: its second level is stored as 1000×750, a downsample a hair above 4 (4.0005). */
const out = mkdtemp(path.join(os.tmpdir(), 'slidebank-render-'));
const slideFile = out.then(async (dir) => (await makeSlide({ width: 4001, height: 3000, levels: 2, seed: 3, out: dir, tileSize: 256 })).svs);
test.after.always(async () => rm(await out, { recursive: true, force: true }));

const CAP = 4000 * 3000;

test('the level is chosen from the requested scale, and a stored size rounded down still serves an image of that size', async (t) => {
  const slide = await Slide.open(await slideFile);
  t.teardown(() => slide.close());
  const whole = { x: 0, y: 0, width: 4001, height: 3000 };
  t.is(slide.levels[1]!.width, 1000);
  t.true(slide.levels[1]!.downsample > 4);
  t.like(planLevel0Region(slide, whole, 1000, 750), { level: 1, sourcePixels: 1000 * 750 });
  t.like(planLevel0Region(slide, whole, 100, 75), { level: 1 });
  t.like(planLevel0Region(slide, whole, 1001, 750), { level: 0, sourcePixels: 4001 * 3000 });
  // A distorted size needs the finer level along its finer axis.
  t.like(planLevel0Region(slide, whole, 1, 3000), { level: 0 });
});

test('a render that would decode more source pixels than the slide allows fails with too_large before it reads; the largest render stays within', async (t) => {
  const slide = await Slide.open(await slideFile, { maxRenderSourcePixels: CAP });
  t.teardown(() => slide.close());
  const whole = { x: 0, y: 0, width: 4001, height: 3000 };
  const error = await t.throwsAsync(renderLevel0Region(slide, whole, 1, 3000, (image) => image.raw().toBuffer()), { instanceOf: WsiError });
  t.is(error.code, 'too_large');
  t.regex(error.message, /needs 12003000 of its pixels, more than the 12000000 one render may decode/);
  t.like(await t.throwsAsync(slide.renderRegion(0, 0, 0, 4001, 3000, (image) => image.raw().toBuffer())), { code: 'too_large' });
  // The largest image of the whole slide is the stored 1000×750 level; of a region that fits, the region itself.
  t.deepEqual(largestRender(slide, whole, 16 * 1024 * 1024), { width: 1000, height: 750 });
  t.deepEqual(largestRender(slide, { x: 0, y: 0, width: 4000, height: 3000 }, 16 * 1024 * 1024), { width: 4000, height: 3000 });
  // The slide is not marked damaged by a refusal.
  const pixels = await renderLevel0Region(slide, whole, 1000, 750, (image) => image.raw().toBuffer());
  t.is(pixels.length, 1000 * 750 * 3);
});

test('a render whose signal has fired stops, whether it has not started or waits for its turn, and the slide stays usable', async (t) => {
  const limit = pLimit(1);
  const slide = await Slide.open(await slideFile, { renderLimit: limit });
  t.teardown(() => slide.close());
  const whole = { x: 0, y: 0, width: 4001, height: 3000 };

  const gone = new AbortController();
  gone.abort();
  t.like(await t.throwsAsync(renderLevel0Region(slide, whole, 400, 300, (image) => image.raw().toBuffer(), { signal: gone.signal })), { code: 'aborted' });

  // The first render holds the only slot until it is let go; the second waits for it, and its client leaves meanwhile.
  let letGo!: () => void;
  const held = new Promise<void>((resolve) => (letGo = resolve));
  const first = slide.renderRegion(0, 0, 0, 512, 512, async (image: Sharp) => {
    await held;
    return image.raw().toBuffer();
  });
  const leaving = new AbortController();
  let secondFinished = false;
  const second = slide.renderRegion(0, 1024, 1024, 512, 512, (image) => ((secondFinished = true), image.raw().toBuffer()), { signal: leaving.signal });
  for (let i = 0; i < 50 && limit.pendingCount === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(limit.pendingCount, 1, 'the second render waits for the slot');
  leaving.abort();
  letGo();
  t.is((await first).length, 512 * 512 * 3);
  t.like(await t.throwsAsync(second), { code: 'aborted' });
  t.false(secondFinished);
  t.is((await slide.renderRegion(0, 1024, 1024, 512, 512, (image) => image.raw().toBuffer())).length, 512 * 512 * 3);
});
