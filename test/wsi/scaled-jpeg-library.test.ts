import { spawnSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, realpathSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { scaledJpegCodec, scaledJpegStatus, scaledJpegUnavailable } from '../../server/wsi/decode/scaled-jpeg.js';
import { Slide } from '../../server/wsi/index.js';
import { makeSlide } from '../support/slides.js';
import { nativeTest } from '../support/native.js';
import { psnr } from '../support/openslide.js';

/**
 * The scaled-JPEG addon on a machine without the distribution's TurboJPEG
 * development package: native/build.mjs, with the system library's detection
 * forced off (SLIDEBANK_TURBOJPEG=npm), builds a copy of the addon in a
 * temporary folder against the libturbojpeg that @julusian/jpeg-turbo ships,
 * copied beside the addon. A separate process loads that copy (in this one
 * the library already loaded by the project's addon would be reused under the
 * same soname), shows from its memory map which libturbojpeg it runs on, and
 * decodes blocks of stored tiles at 1/2, 1/4 and 1/8; the pixels must equal
 * the project's own addon's within the rounding tolerance of the decode tests
 * (50 dB).
 */
const MIN_PSNR = 50;

const nodeGyp = [process.env.npm_config_node_gyp, path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')].find(
  (file): file is string => file !== undefined && existsSync(file),
);
const unavailable = scaledJpegUnavailable() ?? (nodeGyp ? undefined : 'node-gyp not found');

/** Run by the child process: load the addon, report the libturbojpeg in its memory map, decode each block at each denominator. */
const CHILD = `
const { readFileSync, writeFileSync } = require('node:fs');
const [addonFile, blocksFile, outFile] = process.argv.slice(2);
const addon = require(addonFile);
const library = /\\s(\\/\\S*\\/libturbojpeg\\.so[^\\s/]*)$/m.exec(readFileSync('/proc/self/maps', 'utf8'))?.[1] ?? null;
const { tileWidth, tileHeight, blocks } = JSON.parse(readFileSync(blocksFile, 'utf8'));
(async () => {
  const decoded = [];
  for (const block of blocks) {
    const tiles = block.map((b) => Buffer.from(b, 'base64'));
    for (const d of [2, 4, 8]) decoded.push((await addon.decode(tiles, 2, tileWidth, tileHeight, d, (2 * tileWidth) / d, (2 * tileHeight) / d)).toString('base64'));
  }
  writeFileSync(outFile, JSON.stringify({ library, decoded }));
})();
`;

nativeTest(unavailable, 'built without the system\'s TurboJPEG headers, the addon runs on the npm package\'s libturbojpeg and decodes the same pixels', async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-turbojpeg-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));

  // A copy of native/ (sources only) built by its own build script, as npm ci runs it.
  for (const part of ['build.mjs', 'scaled-jpeg/binding.gyp', 'scaled-jpeg/src', 'page-cache/binding.gyp', 'page-cache/src']) {
    await mkdir(path.dirname(path.join(work, 'native', part)), { recursive: true });
    await cp(path.join(packageRoot, 'native', part), path.join(work, 'native', part), { recursive: true });
  }
  const build = spawnSync(process.execPath, [path.join(work, 'native', 'build.mjs')], {
    cwd: packageRoot,
    env: { ...process.env, SLIDEBANK_TURBOJPEG: 'npm', SLIDEBANK_REQUIRE_NATIVE: '1', npm_config_node_gyp: nodeGyp },
    encoding: 'utf8',
  });
  t.is(build.status, 0, `${build.stdout}\n${build.stderr}`);
  t.regex(build.stdout, /native\/scaled-jpeg built \(libturbojpeg of @julusian\/jpeg-turbo@\d+\.\d+\.\d+\)/);
  const release = path.join(work, 'native', 'scaled-jpeg', 'build', 'Release');
  t.deepEqual(JSON.parse(await readFile(path.join(release, 'slidebank-build.json'), 'utf8')).library.source, 'npm');

  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-turbojpeg-slide-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const slide = await Slide.open((await makeSlide({ width: 3000, height: 2000, levels: 2, seed: 5, out })).svs);
  t.teardown(() => slide.close());
  const { tileWidth, tileHeight } = slide.levels[0]!;
  const blocks: Buffer[][] = [];
  for (const [col, row] of [[0, 0], [2, 0], [4, 2], [6, 4]] as const) {
    blocks.push(await Promise.all([[col, row], [col + 1, row], [col, row + 1], [col + 1, row + 1]].map(([c, r]) => slide.readStoredJpeg(0, c!, r!))));
  }
  await writeFile(path.join(work, 'blocks.json'), JSON.stringify({ tileWidth, tileHeight, blocks: blocks.map((b) => b.map((tile) => tile.toString('base64'))) }));
  await writeFile(path.join(work, 'child.cjs'), CHILD);
  const child = spawnSync(process.execPath, [path.join(work, 'child.cjs'), path.join(release, 'scaled_jpeg.node'), path.join(work, 'blocks.json'), path.join(work, 'out.json')], { encoding: 'utf8' });
  t.is(child.status, 0, child.stderr);
  const result = JSON.parse(await readFile(path.join(work, 'out.json'), 'utf8')) as { library: string; decoded: string[] };
  t.is(result.library && realpathSync(result.library), realpathSync(path.join(release, 'libturbojpeg.so.0')), 'the copy beside the addon, not the system\'s library');

  const codec = scaledJpegCodec()!;
  let i = 0;
  for (const block of blocks) {
    for (const d of [2, 4, 8] as const) {
      const ours = await codec.decode(block, 2, tileWidth, tileHeight, d, (2 * tileWidth) / d, (2 * tileHeight) / d);
      const theirs = Buffer.from(result.decoded[i++]!, 'base64');
      t.is(theirs.length, ours.length);
      t.true(psnr(ours, theirs) >= MIN_PSNR, `1/${d}: ${psnr(ours, theirs).toFixed(1)} dB against ${scaledJpegStatus().library ?? 'the project\'s addon'}`);
    }
  }
});

nativeTest(unavailable, 'the status names the libturbojpeg the project\'s addon runs on, and the setting that turns the path off', (t) => {
  const status = scaledJpegStatus();
  t.true(status.active);
  if (process.platform === 'linux') {
    t.regex(status.library ?? '', /\/libturbojpeg\.so/);
    const beside = path.join(packageRoot, 'native', 'scaled-jpeg', 'build', 'Release', 'libturbojpeg.so.0');
    t.is(status.source, existsSync(beside) && realpathSync(status.library!) === realpathSync(beside) ? 'npm' : 'system');
  }
  t.deepEqual(scaledJpegStatus(false), { active: false, reason: 'tiles.scaledDecode is false' });
});

test('native/build.mjs refuses an unknown SLIDEBANK_TURBOJPEG with the accepted values', (t) => {
  const build = spawnSync(process.execPath, [path.join(packageRoot, 'native', 'build.mjs')], {
    cwd: packageRoot,
    env: { ...process.env, SLIDEBANK_TURBOJPEG: 'vendored', SLIDEBANK_REQUIRE_NATIVE: '1' },
    encoding: 'utf8',
  });
  t.is(build.status, 1);
  t.regex(build.stderr, /native\/scaled-jpeg not built: SLIDEBANK_TURBOJPEG must be auto, system or npm, not vendored/);
});
