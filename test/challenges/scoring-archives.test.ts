import { readdirSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { ARCHIVE_LIMITS, extractArchive, scoreSubmission, validateSubmission, type ChallengeSlide, type ScoringSpec } from '../../server/challenges/submissions/index.js';
import { pngOf, rectangleMask, rectanglePolygon, scratch, writeTar, writeZip } from './scoring-helpers.js';

const S1: ChallengeSlide = { name: 'S1', width: 800, height: 600 };
const spec: ScoringSpec = { task: 'segmentation', slides: [S1], maskDownsample: 16, threshold: 0.65 };
const truthOf = () => Promise.resolve({ tumour: [rectanglePolygon(160, 160, 480, 400)], viable: [], label: null });
const truthMask = () => pngOf(rectangleMask(50, 38, [{ x0: 10, y0: 10, x1: 30, y1: 25, value: 1 }]), 50, 38);

test('a ZIP entry named ../x is refused (the slide it would be is not also said to be missing) and nothing is written outside the scratch folder', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'climb.zip'), [
    { name: '../S1.png', data: await truthMask() },
    { name: 'ok/../../x', data: Buffer.from('x') },
  ]);
  const before = await readdir(dir);
  // Unpacked in a folder made inside `dir`: an entry that climbed out would land in `dir` itself.
  const report = await validateSubmission(archive, spec, { scratch: dir });
  t.deepEqual(report.problems.map((p) => [p.file, p.code]), [
    ['../S1.png', 'unsafe_path'],
    ['ok/../../x', 'unsafe_path'],
  ]);
  t.is(report.problems[0]!.message, 'The archive entry "../S1.png" climbs out of the archive with ".."; entries must be plain relative paths.');
  t.deepEqual(await readdir(dir), before);
});

test('absolute names and symbolic links in a ZIP are refused', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'odd.zip'), [
    { name: '/etc/S1.png', data: await truthMask() },
    { name: 'C:/S1.png', data: await truthMask() },
    { name: 'S1.png', data: Buffer.from('/etc/passwd'), store: true, mode: 0o120777 },
  ]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.file, p.code]), [
    ['/etc/S1.png', 'absolute_path'],
    ['C:/S1.png', 'absolute_path'],
    ['S1.png', 'link'],
  ]);
  t.is(report.problems[2]!.message, 'The archive entry "S1.png" is a symbolic link; links are not accepted, put the file itself in the archive.');
});

test('a ZIP bomb (an entry unpacking to over 100 times its size) is refused before it is unpacked', async (t) => {
  const dir = await scratch(t);
  const archive = await writeZip(path.join(dir, 'bomb.zip'), [{ name: 'S1.png', data: Buffer.alloc(20 * 2 ** 20) }]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.file, p.code]), [['S1.png', 'compression_ratio']]);
  t.regex(report.problems[0]!.message, /^The archive entry "S1\.png" unpacks to 20\.0 MiB from [\d.]+ KiB, more than 100 times its packed size, as a ZIP bomb does;/);
});

test('a gzipped tar that unpacks to over 100 times its size is stopped while unpacking', async (t) => {
  const dir = await scratch(t);
  const archive = await writeTar(path.join(dir, 'bomb.tar.gz'), [{ name: 'S1.png', data: Buffer.alloc(20 * 2 ** 20) }]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.file, p.code]), [[null, 'compression_ratio']]);
  t.regex(report.problems[0]!.message, /^The compressed archive unpacks to [\d.]+ MiB from [\d.]+ KiB, more than 100 times its packed size/);
});

test('links in a tar are refused, folders are passed over', async (t) => {
  const dir = await scratch(t);
  const archive = await writeTar(path.join(dir, 'links.tar'), [
    { name: 'masks/', type: 'directory' },
    { name: 'masks/S1.png', type: 'symlink', linkname: '/etc/passwd' },
    { name: 'masks/S2.png', type: 'link', linkname: 'masks/S1.png' },
  ]);
  const report = await validateSubmission(archive, spec);
  t.deepEqual(report.problems.map((p) => [p.file, p.code]), [
    ['masks/S1.png', 'link'],
    ['masks/S2.png', 'link'],
  ]);
  t.is(report.problems[1]!.message, 'The archive entry "masks/S2.png" is a hard link; links are not accepted, put the file itself in the archive.');
});

test('more entries than the limit, or more bytes, stop the reading with a sentence', async (t) => {
  const dir = await scratch(t);
  const entries = Array.from({ length: 5 }, (_, i) => ({ name: `f${i}.txt`, data: Buffer.from('x') }));
  const zip = await writeZip(path.join(dir, 'many.zip'), entries);
  const tar = await writeTar(path.join(dir, 'many.tar'), entries);
  for (const archive of [zip, tar]) {
    const few = await extractArchive(archive, dir, () => false, { ...ARCHIVE_LIMITS, maxEntries: 4 });
    t.deepEqual(few.problems.map((p) => p.message), ['The archive has more than 4 entries; a submission holds one file per slide.'], archive);
    const small = await extractArchive(archive, dir, () => false, { ...ARCHIVE_LIMITS, maxTotalBytes: 3 });
    t.deepEqual(small.problems.map((p) => p.code), ['too_large'], archive);
  }
});

test('a file that is no archive is said to be none', async (t) => {
  const dir = await scratch(t);
  const file = path.join(dir, 'S1.png');
  await sharp(await truthMask()).toFile(file);
  const report = await validateSubmission(file, spec);
  t.deepEqual(report.problems, [{ file: null, slide: null, code: 'not_an_archive', message: 'The submission is neither a ZIP archive nor a tar archive (.tar or .tar.gz).' }]);
});

test('the scratch folder is removed after validating and after scoring, also when scoring refuses', async (t) => {
  const dir = await scratch(t);
  const work = path.join(dir, 'work');
  await mkdir(work);
  const good = await writeZip(path.join(dir, 'good.zip'), [{ name: 'S1.png', data: await truthMask() }]);
  const bad = await writeZip(path.join(dir, 'bad.zip'), [{ name: 'S2.png', data: await truthMask() }]);
  let during: string[] = [];
  const result = await scoreSubmission(good, spec, truthOf, () => (during = readdirSync(work)), { scratch: work });
  t.is(result.score, 1);
  t.is(during.length, 1, 'the submission is unpacked into the scratch folder given');
  await t.throwsAsync(scoreSubmission(bad, spec, truthOf, undefined, { scratch: work }));
  await validateSubmission(good, spec, { scratch: work });
  t.deepEqual(await readdir(work), []);
});
