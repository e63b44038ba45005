// The parts of the DICOM export: background frames made without an encoder, UIDs, Decimal Strings,
// missing tiles, and the attributes as pydicom reads them.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import sharp from 'sharp';
import { uniformJpeg } from '../../server/wsi/dicom-writer/codestreams.js';
import {
  decimalString,
  describeSlide,
  encodeDataset,
  exportSlideAsDicom,
  instanceAttributes,
  levelInstance,
  openDicomSource,
  planLevel,
  readFrame,
  seriesUids,
  uidRootProblem,
} from '../../server/wsi/dicom-writer/index.js';
import { Slide } from '../../server/wsi/index.js';
import { Compression, Photometric, TiffWriter } from '../../server/wsi/tiff/writer.js';
import { dciodvfy, dciodvfyProblem } from '../support/dciodvfy.js';
import { askPydicom, pydicomProblem } from '../support/pydicom.js';
import { testNeeding } from '../support/requirements.js';
import { makeSlide } from '../support/slides.js';

const root = mkdtemp(path.join(os.tmpdir(), 'slidebank-dicom-export-parts-'));
test.after.always(async () => rm(await root, { recursive: true, force: true }));

async function colours(jpeg: Buffer): Promise<{ width: number; height: number; colours: Set<string> }> {
  const { data, info } = await sharp(jpeg, { failOn: 'error' }).raw().toBuffer({ resolveWithObject: true });
  const seen = new Set<string>();
  for (let i = 0; i < data.length; i += 3) seen.add(`${data[i]},${data[i + 1]},${data[i + 2]}`);
  return { width: info.width, height: info.height, colours: seen };
}

test('a background frame decodes to exactly its colour at any size, subsampled, not subsampled or RGB', async (t) => {
  for (const [sampling, rgb] of [[[2, 2], false], [[2, 1], false], [[1, 1], false], [[1, 1], true]] as const) {
    for (const colour of [[255, 255, 255], [0, 0, 0], [128, 128, 128]] as const) {
      const decoded = await colours(uniformJpeg(240, 250, colour, sampling, rgb));
      t.deepEqual(decoded, { width: 240, height: 250, colours: new Set([colour.join(',')]) }, `${sampling.join('×')} ${rgb ? 'RGB' : 'YCbCr'} ${colour.join(',')}`);
    }
  }
  t.deepEqual((await colours(uniformJpeg(17, 9, [12, 200, 99], [1, 1], true))).colours, new Set(['12,200,99']));
});

test('UIDs are the same for the same slide, different for another, and valid under a root or as 2.25 UIDs', (t) => {
  const a = seriesUids('12:abc');
  const again = seriesUids('12:abc');
  const other = seriesUids('13:abc');
  t.deepEqual([a.study, a.series, a.instance(1)], [again.study, again.series, again.instance(1)]);
  t.not(a.study, other.study);
  const all = [a.study, a.series, a.frameOfReference, a.dimensionOrganization, a.specimen, a.instance(1), a.instance(2)];
  t.is(new Set(all).size, all.length);
  const rooted = seriesUids('12:abc', '1.2.826.0.1.3680043.10.999');
  for (const uid of [...all, rooted.study, rooted.instance(7)]) {
    t.regex(uid, /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/);
    t.true(uid.length <= 64, uid);
  }
  t.true(a.study.startsWith('2.25.'));
  t.true(rooted.study.startsWith('1.2.826.0.1.3680043.10.999.'));
  t.truthy(uidRootProblem('1.02.3'));
  t.truthy(uidRootProblem('1.2.x'));
  t.truthy(uidRootProblem(`1.${'2'.repeat(45)}`));
  t.is(uidRootProblem('1.2.3'), undefined);
});

test('Decimal Strings keep to 16 characters', (t) => {
  t.is(decimalString(0.000499), '0.000499');
  t.is(decimalString(1 / 3), '0.33333333333333');
  t.is(decimalString(123456789.123456), '123456789.123456');
  t.true(decimalString(1e-9 / 3).length <= 16);
  t.is(Number(decimalString(0.000252)), 0.000252);
});

testNeeding([dciodvfyProblem, pydicomProblem], 'a missing tile becomes a white frame; the other frames are the stored tiles', async (t) => {
  const dir = await mkdtemp(path.join(await root, 'missing-'));
  const file = path.join(dir, 'holes.tiff');
  const writer = await TiffWriter.create(file);
  const image = writer.beginImage({
    width: 700,
    height: 500,
    tile: { width: 256, height: 256 },
    compression: Compression.JPEG,
    photometric: Photometric.YCbCr,
    ycbcrSubsampling: [2, 2],
    jpegTables: Buffer.from([0xff, 0xd8, 0xff, 0xd9]),
    pixelsPerCm: { x: 40000, y: 40000 },
  });
  for (let i = 0; i < 6; i++) {
    if (i === 4) await image.write(Buffer.alloc(0));
    else await image.write(await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 40 * i, g: 100, b: 200 - 30 * i } } }).jpeg({ quality: 90 }).toBuffer());
  }
  image.end();
  // A complete smaller level, which the thumbnail is made from (the engine reads no level with a missing tile whole).
  const small = writer.beginImage({ width: 350, height: 250, tile: { width: 256, height: 256 }, compression: Compression.JPEG, photometric: Photometric.YCbCr, ycbcrSubsampling: [2, 2], jpegTables: Buffer.from([0xff, 0xd8, 0xff, 0xd9]) });
  for (let i = 0; i < 2; i++) await small.write(await sharp({ create: { width: 256, height: 256, channels: 3, background: { r: 90, g: 90, b: 90 } } }).jpeg({ quality: 90 }).toBuffer());
  small.end();
  await writer.close();

  const out = path.join(dir, 'series');
  const result = await exportSlideAsDicom(file, out, { name: 'HOLES', published: new Date('2026-01-01T00:00:00Z'), softwareVersion: '0', uidKey: 'holes' });
  for (const instance of result.instances) t.deepEqual((await dciodvfy(instance.file)).errors, [], path.basename(instance.file));
  const level0 = result.instances[0]!;
  const decoded = await askPydicom(level0.file, [0, 1, 2, 3, 4, 5]);
  t.true(decoded.pixels[4]!.every((v) => v === 255), 'the missing tile is white');
  const source = await Slide.open(file);
  const copy = await Slide.open(out);
  try {
    for (const n of [0, 1, 2, 3, 5]) {
      const tile = await source.readTile(0, n % 3, Math.floor(n / 3));
      t.true(decoded.pixels[n]!.equals(tile.data), `frame ${n}`);
    }
    t.true((await copy.readTile(0, 1, 1)).data.every((v) => v === 255));
  } finally {
    await source.close();
    await copy.close();
  }
});

testNeeding([pydicomProblem], 'the attributes as pydicom reads them: one study and series, image types, pixel spacing per level, the specimen and the optical path', async (t) => {
  const made = await makeSlide({ width: 2999, height: 1501, tileSize: 240, levels: 2, seed: 9, out: path.join(await root, 'made-attributes') });
  const out = path.join(await root, 'attributes');
  const result = await exportSlideAsDicom(made.svs, out, { name: 'SB-0042', published: new Date('2026-03-04T05:06:07Z'), softwareVersion: '1.2.3', uidKey: 'slide-42' });
  const script = `
import json, sys, pydicom
out = []
for f in sys.argv[1:]:
    ds = pydicom.dcmread(f, stop_before_pixels=True)
    sfg = ds.SharedFunctionalGroupsSequence[0]
    op = ds.OpticalPathSequence[0]
    out.append({
        "study": ds.StudyInstanceUID, "series": ds.SeriesInstanceUID, "sop": ds.SOPInstanceUID,
        "imageType": list(ds.ImageType), "frameType": list(sfg.WholeSlideMicroscopyImageFrameTypeSequence[0].FrameType),
        "spacing": [float(v) for v in sfg.PixelMeasuresSequence[0].PixelSpacing],
        "total": [ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows], "tile": [ds.Columns, ds.Rows], "frames": int(ds.NumberOfFrames),
        "organisation": ds.DimensionOrganizationType, "container": ds.ContainerIdentifier,
        "specimen": ds.SpecimenDescriptionSequence[0].SpecimenIdentifier, "icc": len(op.ICCProfile), "colourSpace": op.get("ColorSpace"),
        "volume": [round(float(ds.ImagedVolumeWidth), 4), round(float(ds.ImagedVolumeHeight), 4)],
        "date": ds.AcquisitionDateTime, "perFrame": "PerFrameFunctionalGroupsSequence" in ds,
    })
print(json.dumps(out))
`;
  const { stdout } = await promisify(execFile)('/usr/bin/python3', ['-c', script, ...result.instances.map((i) => i.file)]);
  const read = JSON.parse(stdout) as Record<string, unknown>[];
  t.is(new Set(read.map((r) => r.study)).size, 1);
  t.is(new Set(read.map((r) => r.series)).size, 1);
  t.is(new Set(read.map((r) => r.sop)).size, 3);
  t.deepEqual(read.map((r) => r.imageType), [
    ['ORIGINAL', 'PRIMARY', 'VOLUME', 'NONE'],
    ['DERIVED', 'PRIMARY', 'VOLUME', 'RESAMPLED'],
    ['DERIVED', 'PRIMARY', 'THUMBNAIL', 'RESAMPLED'],
  ]);
  t.deepEqual(read.map((r) => r.frameType), read.map((r) => r.imageType));
  const source = await Slide.open(made.svs);
  const mpp = source.mpp;
  await source.close();
  const [l0, l1, thumb] = read as { spacing: number[]; total: number[] }[];
  t.deepEqual(l0!.spacing, [mpp!.y / 1000, mpp!.x / 1000]);
  t.deepEqual(l0!.total, [2999, 1501]);
  t.deepEqual(l1!.total, [made.levels[1]!.width, made.levels[1]!.height]);
  t.true(Math.abs(l1!.spacing[1]! - ((mpp!.x / 1000) * 2999) / made.levels[1]!.width) < 1e-12);
  t.true(Math.abs(thumb!.spacing[1]! - ((mpp!.x / 1000) * 2999) / thumb!.total[0]!) < 1e-12);
  for (const r of read) {
    t.like(r, { organisation: 'TILED_FULL', container: 'SB-0042', specimen: 'SB-0042', colourSpace: 'SRGB', date: '20260304050607', perFrame: false });
    t.true((r.icc as number) > 128);
    t.deepEqual(r.volume, [Number(((mpp!.x * 2999) / 1000).toFixed(4)), Number(((mpp!.y * 1501) / 1000).toFixed(4))]);
  }
  t.deepEqual(read.slice(0, 2).map((r) => [r.tile, r.frames]), [
    [[240, 240], 13 * 7],
    [[240, 240], Math.ceil(made.levels[1]!.width / 240) * Math.ceil(made.levels[1]!.height / 240)],
  ]);
});

test('what a DICOMweb server would make on the fly is what the file holds: the attributes, and frame N from the frame index', async (t) => {
  const made = await makeSlide({ width: 1531, height: 1023, tileSize: 256, levels: 2, seed: 3, out: path.join(await root, 'made-on-the-fly') });
  const out = path.join(await root, 'on-the-fly');
  const options = { name: 'SB-0007', published: new Date('2026-05-06T07:08:09Z'), softwareVersion: '1.0.0', uidKey: 'slide-7' };
  const result = await exportSlideAsDicom(made.svs, out, options);
  const source = await openDicomSource(made.svs);
  try {
    const description = await describeSlide(source, options);
    const uids = seriesUids(options.uidKey);
    for (const [level, input] of source.levels.entries()) {
      const plan = await planLevel(input);
      const file = await readFile(result.instances[level]!.file);
      // The data set sits between the file meta information and the Pixel Data element.
      const dataset = encodeDataset(instanceAttributes(description, levelInstance(plan, level), uids));
      const metaLength = file.readUInt32LE(128 + 4 + 8);
      const start = 128 + 4 + 12 + metaLength;
      t.true(file.subarray(start, start + dataset.length).equals(dataset), `level ${level}: the attributes`);
      t.is(file.readUInt32LE(start + dataset.length), 0x0010_7fe0, `level ${level}: Pixel Data follows them`);
      // Frames: after the Basic Offset Table item, one item per frame.
      let at = start + dataset.length + 12;
      const tableLength = file.readUInt32LE(at + 4);
      at += 8 + tableLength;
      for (let n = 0; n < plan.count; n++) {
        const length = file.readUInt32LE(at + 4);
        const frame = await readFrame(input, plan, n);
        t.true(file.subarray(at + 8, at + 8 + frame.length).equals(frame), `level ${level}, frame ${n}`);
        at += 8 + length;
      }
    }
  } finally {
    await source.close();
  }
});
