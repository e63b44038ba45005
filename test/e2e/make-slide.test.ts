import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { SlideTruth } from '../../server/wsi/generate/index.js';
import { collect, runCli, runCliInProcess, spawnCli } from '../support/cli.js';

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-make-slide-'));
  tempDirs.push(dir);
  return dir;
};
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

test('make-slide --help documents the options', async (t) => {
  const result = await runCli(['make-slide', '--help']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^Usage: slidebank make-slide /m);
  for (const option of ['--width', '--height', '--tile', '--levels', '--seed', '--quality', '--bigtiff', '--out', '--name', '--stain']) {
    t.true(result.stdout.includes(option), option);
  }
  const top = await runCli(['--help']);
  t.regex(top.stdout, /^ {2}make-slide\b/m);
});

test('make-slide writes the SVS, the XML and the truth, prints their paths and reports progress', async (t) => {
  const out = path.join(await tempDir(), 'made', 'here');
  const result = await runCli(['make-slide', '--width', '1200', '--height', '900', '--tile', '256', '--seed', '5', '--quality', '80', '--out', out, '--name', 'demo']);
  t.is(result.code, 0, result.stderr);
  const expected = ['demo.svs', 'demo.xml', 'demo.truth.json'].map((f) => path.join(out, f));
  t.deepEqual(result.stdout.trim().split('\n'), expected);
  t.regex(result.stderr, /^make-slide: 100% \(\d+\/\d+ tiles and strips\)$/m);
  t.regex(result.stderr, /^make-slide: 1200x900, 1 level\(s\), [\d.]+ MB in [\d.]+ s$/m);
  t.deepEqual((await readdir(out)).sort(), ['demo.svs', 'demo.truth.json', 'demo.xml']);
  const truth = JSON.parse(await readFile(expected[2]!, 'utf8')) as SlideTruth;
  t.like(truth, { width: 1200, height: 900, seed: 5, tileSize: 256, quality: 80, tiff: 'classic', stain: 'he' });
  t.is((await readFile(expected[0]!)).readUInt16LE(2), 42);

  const big = await runCli(['make-slide', '--width', '600', '--height', '400', '--bigtiff', '--levels', '2', '--out', out]);
  t.is(big.code, 0, big.stderr);
  t.is((await readFile(path.join(out, 'synthetic-1.svs'))).readUInt16LE(2), 43, 'BigTIFF, default name from --seed');
  t.is((JSON.parse(await readFile(path.join(out, 'synthetic-1.truth.json'), 'utf8')) as SlideTruth).levels.length, 2);

  // Immunohistochemistry: the tumour brown with DAB, the rest blue with haematoxylin (mean colours of the truth, by hue).
  const ihc = await runCli(['make-slide', '--width', '1200', '--height', '900', '--seed', '5', '--stain', 'ihc', '--out', out, '--name', 'ki67']);
  t.is(ihc.code, 0, ihc.stderr);
  const ihcTruth = JSON.parse(await readFile(path.join(out, 'ki67.truth.json'), 'utf8')) as SlideTruth;
  t.is(ihcTruth.stain, 'ihc');
  const [tr, tg, tb] = ihcTruth.colours.tumour;
  t.true(tr > tg && tg > tb, `tumour mean ${ihcTruth.colours.tumour.join(',')} is brown`);
  const [sr, sg, sb] = ihcTruth.colours.tissue;
  t.true(sb > sr && sb > sg, `tissue mean ${ihcTruth.colours.tissue.join(',')} is blue`);
  const [hr, hg, hb] = truth.colours.tissue;
  t.true(hr > hg && hb > hg, `H&E tissue mean ${truth.colours.tissue.join(',')} is pink`);
});

test('make-slide refuses bad input with one line and exit code 2, and writes nothing', async (t) => {
  const dir = await tempDir();
  const out = path.join(dir, 'out');
  const file = path.join(dir, 'a-file');
  await writeFile(file, 'not a folder');
  const cases: [string[], RegExp][] = [
    [['--width', '-5', '--height', '500', '--out', out], /^slidebank: --width must be a whole number from 256 to 1000000, got -5$/],
    [['--width', 'wide', '--height', '500', '--out', out], /^slidebank: --width must be a whole number, got "wide"$/],
    [['--width', '500', '--out', out], /^slidebank: --height is required$/],
    [['--width', '500', '--height', '500', '--tile', '250', '--out', out], /^slidebank: --tile must be a multiple of 16 from 16 to 4096, got 250$/],
    [['--width', '500', '--height', '500'], /^slidebank: --out is required: the folder to write the slide into$/],
    [['--width', '500', '--height', '500', '--levels', '0', '--out', out], /^slidebank: --levels must be a whole number from 1 to \d+ for a 500x500 slide, got 0$/],
    [['--width', '500', '--height', '500', '--quality', '101', '--out', out], /^slidebank: --quality must be a whole number from 1 to 100, got 101$/],
    [['--width', '500', '--height', '500', '--seed', '1.5', '--out', out], /^slidebank: --seed must be a whole number, got "1\.5"$/],
    [['--width', '500', '--height', '500', '--name', '../escape', '--out', out], /^slidebank: --name must be /],
    [['--width', '500', '--height', '500', '--stain', 'dab', '--out', out], /^slidebank: --stain must be one of he, ihc, got dab$/],
    [['--width', '500', '--height', '500', '--out', file], /^slidebank: --out must be a folder, but .*a-file is a file$/],
  ];
  for (const [args, message] of cases) {
    const result = await runCliInProcess(['make-slide', ...args]);
    t.is(result.code, 2, args.join(' '));
    t.is(result.stdout, '', args.join(' '));
    const lines = result.stderr.trimEnd().split('\n');
    t.is(lines.length, 1, `one line for ${args.join(' ')}: ${result.stderr}`);
    t.regex(lines[0]!, message);
  }
  t.deepEqual(await readdir(dir), ['a-file'], 'nothing was written');
});

test('make-slide interrupted with SIGINT exits 130 and leaves nothing behind', async (t) => {
  const out = await tempDir();
  const child = spawnCli(['make-slide', '--width', '30000', '--height', '20000', '--out', out]);
  const finished = collect(child, 60_000);
  await new Promise<void>((resolve) => {
    let seen = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (/make-slide: 10%/.test(seen)) resolve();
    });
    child.once('close', () => resolve());
  });
  child.kill('SIGINT');
  const result = await finished;
  t.is(result.code, 130, result.stderr);
  t.regex(result.stderr, /^slidebank: make-slide interrupted; nothing was written$/m);
  t.deepEqual(await readdir(out), []);
  t.true((await stat(out)).isDirectory());
});
