// Reads ../shared/fixtures, rewritten here with libtiff's tiffcp (Debian's libtiff-tools) into
// big-endian, BigTIFF and big-endian BigTIFF variants: each must read like libvips reads it.
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { Slide } from '../../server/wsi/index.js';
import { fixture, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { psnr } from '../support/openslide.js';
import { testNeeding } from '../support/requirements.js';

const tiffcpProblem = (() => {
  try {
    execFileSync('tiffcp', [], { stdio: 'ignore' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'tiffcp is missing (apt-get install libtiff-tools)';
  }
  return undefined;
})();

const variants: [FixtureName, string[], string][] = [
  ['boxes.tiff', ['-B'], 'big-endian TIFF'],
  ['boxes.tiff', ['-8'], 'little-endian BigTIFF'],
  ['CropBreastSlide.tiff', ['-8', '-B'], 'big-endian BigTIFF with YCbCr JPEG tiles'],
];

for (const [name, flags, what] of variants) {
  testNeeding([fixturesProblem(), tiffcpProblem], `${name} as a ${what} reads the same pixels as libvips`, async (t) => {
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'slidebank-order-')), `variant-${flags.join('')}.tiff`);
    execFileSync('tiffcp', [...flags, fixture(name), file]);
    const slide = await Slide.open(file);
    t.teardown(() => slide.close());
    const original = await Slide.open(fixture(name));
    t.teardown(() => original.close());
    t.deepEqual(slide.levels.map((l) => [l.width, l.height]), original.levels.map((l) => [l.width, l.height]));
    for (const [page, level] of slide.levels.entries()) {
      const mine = await slide.readRegion(page, 0, 0, level.width, level.height);
      const reference = await sharp(file, { page, limitInputPixels: false }).removeAlpha().raw().toBuffer();
      const quality = psnr(mine.data, reference);
      t.true(quality >= 40, `level ${page}: PSNR ${quality.toFixed(1)} dB against libvips`);
    }
  });
}
