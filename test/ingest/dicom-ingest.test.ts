// Reads ../shared/fixtures/dicom: DICOM whole-slide series ingested with the guarantees of SVS — only the
// pyramid published (a series folder of one instance per level), attributes by the PS3.15 Basic Profile,
// frames byte for byte, every instance clean under dciodvfy and read back by pydicom, no identifying value
// of the original anywhere in the published bytes, tiles served; damaged copies quarantined with the reason.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import dicomParser from 'dicom-parser';
import { createIngestService } from '../../server/ingest/create.js';
import { tissueMask } from '../../server/toolbox/tissue-mask.js';
import type { DicomReport } from '../../server/ingest/deidentify/dicom.js';
import { discoverFolder } from '../../server/ingest/discover.js';
import type { IngestResult } from '../../server/ingest/ingest-slide.js';
import { encodeElement, type Element } from '../../server/wsi/dicom-writer/elements.js';
import { readInstanceHeader } from '../../server/wsi/formats/dicom/dataset.js';
import { elementHeader, skipElement } from '../../server/wsi/formats/dicom/elements.js';
import { openDicomSeries } from '../../server/wsi/formats/dicom/index.js';
import { Slide } from '../../server/wsi/index.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { bearerHeaders, viewerFetch } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { dciodvfy, dciodvfyProblem } from '../support/dciodvfy.js';
import { fixture, fixturesDir, fixturesProblem, type FixtureName } from '../support/fixtures.js';
import { ingestBench, type IngestBench } from '../support/ingest.js';
import { memoryLogger } from '../support/logs.js';
import { askPydicom, pydicomProblem } from '../support/pydicom.js';
import { testNeeding } from '../support/requirements.js';

const WG26 = path.join(fixturesDir, 'dicom/wg26-bpaec');
const ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

async function ingestAll(bench: IngestBench, names: string[]): Promise<IngestResult[]> {
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify(names.map((file) => ({ file, ...ROW })), { header: true }));
  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  return results;
}

async function ingestOne(bench: IngestBench, name: string): Promise<IngestResult> {
  const results = await ingestAll(bench, [name]);
  if (results.length !== 1) throw new Error(`${results.length} results: ${results.map((r) => `${r.file} ${r.outcome} ${r.reason}`).join('; ')}`);
  return results[0]!;
}

/** A series folder `name` in the inbox with copies of the 3DHISTECH series' files (or some of them). */
async function wg26Folder(bench: IngestBench, name: string, keep: (file: string) => boolean = () => true): Promise<string> {
  const dir = path.join(bench.inbox, name);
  await mkdir(dir);
  for (const file of await readdir(WG26)) if (keep(file)) await copyFile(path.join(WG26, file), path.join(dir, file));
  return dir;
}

/** The Basic Profile's dummy date-time, written where a type 1 date-time was. */
const PUBLISHED_DUMMY_DATETIME = '19000101000000';

/** Every text value of an original that names a patient, study, specimen, device, site or time, and every UID outside the standard's: found here, not by the product. */
async function identifyingValues(file: string): Promise<string[]> {
  const ds = dicomParser.parseDicom(new Uint8Array(await headerBytes(file)));
  const values = new Set<string>();
  const kept = new Set<string>();
  const walk = (set: dicomParser.DataSet) => {
    for (const [key, element] of Object.entries(set.elements)) {
      if (element.items) {
        for (const item of element.items) if (item.dataSet) walk(item.dataSet);
        continue;
      }
      if (key.startsWith('x0002')) continue;
      const vr = element.vr ?? '';
      const text = ['PN', 'LO', 'SH', 'DA', 'DT', 'TM', 'UI', 'ST', 'LT', 'UT'].includes(vr) ? (set.string(key) ?? '') : '';
      for (const value of text.split('\\').map((v) => v.trim())) {
        if (value.length < 6) continue;
        if (vr === 'UI' && value.startsWith('1.2.840.10008.')) continue;
        // A date or time the published dummy date-time spells out says nothing about the original.
        if (['DA', 'TM', 'DT'].includes(vr) && PUBLISHED_DUMMY_DATETIME.includes(value)) continue;
        // Kept on purpose: device and optics descriptions, codes (a private attribute repeating one of them is no leak).
        if (['x00080070', 'x00081090', 'x00181020', 'x00480107', 'x00080104', 'x00080100', 'x00080102', 'x00480106', 'x00209421', 'x00280303'].includes(key)) kept.add(value);
        else values.add(value);
      }
    }
  };
  walk(ds);
  return [...values].filter((v) => !kept.has(v));
}

/** The bytes of a DICOM file before its Pixel Data (and offset tables). */
async function headerBytes(file: string): Promise<Buffer> {
  const handle = await RandomAccessFile.open(file);
  try {
    const h = await readInstanceHeader(handle);
    const end = Math.min(...[h.extendedOffsetTable, h.pixelData].filter((r) => r !== undefined).map((r) => r.offset - 12));
    return h.bytes.buffer.subarray(0, end);
  } finally {
    await handle.close();
  }
}

/** Which of `values` occur in `file`, in Latin-1 or UTF-16. */
async function occurrences(file: string, values: string[]): Promise<string[]> {
  const bytes = await readFile(file);
  return values.filter((v) => bytes.includes(Buffer.from(v, 'latin1')) || bytes.includes(Buffer.from(v, 'utf16le')));
}

/** The frames of every level of a series, as the slide engine reads them. */
async function framesOf(source: string): Promise<Buffer[][]> {
  const series = await openDicomSeries(source);
  try {
    return await Promise.all(series.levels.map(async (level) => Promise.all(Array.from({ length: level.frames.count }, (_, i) => level.frames.read(i)))));
  } finally {
    await series.close();
  }
}

/** The published series' checks that do not depend on the original's kind. */
async function checkPublished(t: ExecutionContext, bench: IngestBench, result: IngestResult, original: string, originals: string[]): Promise<string> {
  t.is(result.outcome, 'published', result.reason ?? '');
  const folder = path.join(bench.config.paths.slides, result.name!);
  const files = (await readdir(folder)).sort();
  t.true(files.every((f) => /^level-\d+\.dcm$/.test(f)), `only levels are published: ${files.join(', ')}`);
  t.deepEqual(await readdir(bench.config.paths.slides).then((all) => all.filter((f) => f.startsWith('.'))), [], 'no partial copy is left');

  const searched = [...new Set((await Promise.all(originals.map(identifyingValues))).flat())];
  t.true(searched.length > 0);
  for (const file of files) {
    const instance = path.join(folder, file);
    t.deepEqual(await occurrences(instance, searched), [], `${file} holds none of the original's identifying values`);
    const { errors, warnings } = await dciodvfy(instance);
    t.deepEqual(errors, [], `${file}: dciodvfy reports no error`);
    t.log(`${file}: dciodvfy warnings: ${[...new Set(warnings)].join(' | ') || 'none'}`);
  }

  // Frames byte for byte, and pydicom reads every instance back.
  const before = await framesOf(original);
  const after = await framesOf(folder);
  t.is(after.length, before.length, 'as many levels');
  before.forEach((frames, level) => {
    t.is(after[level]!.length, frames.length);
    t.true(
      frames.every((frame, i) => frame.equals(after[level]![i]!)),
      `level ${level}: every frame identical to the original's`,
    );
  });
  const read = await askPydicom(path.join(folder, files[files.length - 1]!), [0]);
  t.is(read.frames, after[after.length - 1]!.length, 'pydicom reads the smallest level back');

  const slide = await Slide.open(folder);
  try {
    t.false(slide.associatedImages.includes('label'), 'no label');
    t.false(slide.associatedImages.includes('macro'), 'no overview or localizer');
  } finally {
    await slide.close();
  }
  const report = result.report as { dicom?: DicomReport; checks?: { name: string; passed: boolean }[] };
  t.true(report.checks!.every((c) => c.passed));
  t.truthy(report.checks!.find((c) => c.name === 'no identifying value anywhere in the series'));
  t.truthy(report.checks!.find((c) => c.name === "frames identical to the original's"));
  return folder;
}

const needs = [fixturesProblem(), dciodvfyProblem, pydicomProblem];

testNeeding(needs, `the 3DHISTECH series folder is published without its label and localizer, attributes by the Basic Profile, frames identical, dciodvfy clean, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const original = await wg26Folder(bench, 'case-wg26');
  await writeFile(path.join(bench.inbox, 'case-wg26.xml'), '<Annotations><Annotation Id="1"><Regions/></Annotation></Annotations>');
  const result = await ingestOne(bench, 'case-wg26');
  const originals = (await readdir(original)).map((f) => path.join(original, f));
  const folder = await checkPublished(t, bench, result, original, originals);
  t.is((await readdir(folder)).length, 8, 'eight levels, no label, no localizer');
  const report = (result.report as { dicom: DicomReport }).dicom;
  t.like(
    report.instances.filter((i) => i.action === 'removed').map((i) => i.role).sort(),
    ['label', 'macro'],
  );
  t.true(report.attributes.uidsReplaced > 0);
  t.true(report.attributes.renamed.includes('PatientName'));
  t.is(result.report.originalFormat, 'dicom');

  const ds = dicomParser.parseDicom(new Uint8Array(await headerBytes(path.join(folder, 'level-0.dcm'))));
  t.is(ds.string('x00100010'), result.name!);
  t.is(ds.string('x00100020'), result.name!);
  t.is(ds.string('x00400512'), result.name!);
  t.is(ds.string('x00120062'), 'YES');
  t.is(ds.elements.x00120064!.items![0]!.dataSet!.string('x00080100'), '113100');
  t.truthy(ds.string('x0020000d')?.startsWith('2.25.'));
  // Every UID replaced consistently: the levels share one new study, series and frame of reference, as the original's did.
  const uidsOf = async (files: string[], tag: string) =>
    new Set(await Promise.all(files.map(async (f) => dicomParser.parseDicom(new Uint8Array(await headerBytes(f))).string(tag)?.trim() ?? '')));
  const levelFiles = (await readdir(folder)).map((f) => path.join(folder, f));
  const originalLevels = originals.filter((f) => !/\/(2|1_Map)$/.test(f));
  for (const tag of ['x0020000d', 'x0020000e', 'x00200052']) {
    const before = await uidsOf(originalLevels, tag);
    const after = await uidsOf(levelFiles, tag);
    t.is(after.size, before.size, `${tag}: as many distinct values as in the original`);
    t.true([...after].every((uid) => uid.startsWith('2.25.') && !before.has(uid)), `${tag}: new UIDs`);
  }
  t.is((await uidsOf(levelFiles, 'x00080018')).size, 8, 'a SOP Instance UID of its own for each level');
  const row = await bench.database.db.knex('slides').where({ name: result.name! }).first();
  t.like(row, { file_path: result.name, vendor: 'dicom', width: 3072, height: 2304 });
  t.truthy(row.annotation_path, 'the annotation named after the folder is published beside it');
});

for (const name of [
  'dicom/wsi2dcm/jpeg.dicom',
  'dicom/wsi2dcm/jpeg2000.dicom',
  'dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm',
  'dicom/google-pipeline/multi_frame_jpeg2000_camelyon_challenge_image.dcm',
] as FixtureName[]) {
  testNeeding(needs, `${name} (one multi-frame file) is published as a series folder: frames identical, dciodvfy clean, nothing identifying left, on ${testDialect}`, async (t) => {
    const bench = await ingestBench(t);
    const file = path.join(bench.inbox, path.basename(name));
    await copyFile(fixture(name), file);
    const result = await ingestOne(bench, path.basename(name));
    await checkPublished(t, bench, result, file, [file]);
  });
}

// Synthetic series with planted identifying values ------------------------------------------------

const PLANT = '1.2.826.0.1.3680043.9.7777';
const text = (tag: number, vr: Element['vr'], value: string): Element => ({ tag, vr, value: [value] });

/** Identifying values planted in standard attributes, in private ones and in UIDs. */
const PLANTED = {
  patientName: 'Doe^Plantedname^Jane',
  patientId: 'PLANTED-PID-4711',
  birthDate: '19471103',
  accession: 'ACC-PLANT-99',
  studyDate: '20190412',
  studyTime: '101112.123',
  contentDate: '20190413',
  acquisition: '20190412101113.000',
  institution: 'Planted General Hospital',
  serial: 'SN-PLANT-31337',
  station: 'PLANTSTATION',
  operator: 'Operator^Plantedop',
  studyDescription: 'Planted study of Jane',
  seriesDescription: 'planted series about Doe',
  container: 'CONT-PLANT-55',
  studyId: 'STUDYPLANT9',
  otherIds: 'OTHER-PID-PLANT',
  specimen: 'SPEC-PLANT-77',
  specimenDescription: 'planted specimen text',
  privateText: 'private-secret-plant',
  privateRaw: 'private raw plant bytes',
  barcode: 'BARCODE-PLANT-123',
  labelText: 'LABEL-TEXT-PLANT',
  study: `${PLANT}.1`,
  series: `${PLANT}.2`,
  frameOfReference: `${PLANT}.4`,
  specimenUid: `${PLANT}.9`,
  instance: (n: number) => `${PLANT}.3.${n}`,
};

/**
 * A copy of a fixture instance with its top-level attributes changed: `set` replaces or adds elements
 * (the File Meta's SOP Instance UID follows), `drop` removes tags. The Pixel Data is copied as it is.
 */
async function plantedCopy(source: string, target: string, set: Element[], drop: number[] = []): Promise<void> {
  const bytes = await readFile(source);
  const handle = await RandomAccessFile.open(source);
  let pixelStart: number;
  try {
    const h = await readInstanceHeader(handle);
    pixelStart = Math.min(...[h.extendedOffsetTable, h.pixelData].filter((r) => r !== undefined).map((r) => r.offset - 12));
  } finally {
    await handle.close();
  }
  const b = { buffer: bytes, base: 0 };
  const meta: Buffer[] = [];
  let at = 132;
  for (;;) {
    const h = elementHeader(b, at, true);
    if (h.tag >>> 16 !== 0x0002) break;
    if (h.tag === 0x0002_0003) {
      const sop = set.find((e) => e.tag === 0x0008_0018);
      meta.push(sop ? encodeElement({ ...sop, tag: 0x0002_0003 }) : bytes.subarray(at, h.value + h.length));
    } else if (h.tag !== 0x0002_0000) {
      meta.push(bytes.subarray(at, h.value + h.length));
    }
    at = h.value + h.length;
  }
  const elements: { tag: number; bytes: Buffer }[] = [];
  while (at < pixelStart) {
    const h = elementHeader(b, at, true);
    const end = skipElement(b, h, true);
    if (!drop.includes(h.tag) && !set.some((e) => e.tag === h.tag)) elements.push({ tag: h.tag, bytes: bytes.subarray(at, end) });
    at = end;
  }
  for (const e of set) elements.push({ tag: e.tag, bytes: encodeElement(e) });
  elements.sort((x, y) => x.tag - y.tag);
  const metaBody = Buffer.concat(meta);
  const groupLength = encodeElement({ tag: 0x0002_0000, vr: 'UL', value: [metaBody.length] });
  await writeFile(target, Buffer.concat([bytes.subarray(0, 132), groupLength, metaBody, ...elements.map((e) => e.bytes), bytes.subarray(pixelStart)]));
}

/** The planted standard and private attributes of an instance of the planted series. */
function plantedAttributes(n: number, imageType: string): Element[] {
  return [
    text(0x0008_0008, 'CS', imageType),
    text(0x0008_0018, 'UI', PLANTED.instance(n)),
    text(0x0008_0020, 'DA', PLANTED.studyDate),
    text(0x0008_0023, 'DA', PLANTED.contentDate),
    text(0x0008_002a, 'DT', PLANTED.acquisition),
    text(0x0008_0030, 'TM', PLANTED.studyTime),
    text(0x0008_0050, 'SH', PLANTED.accession),
    text(0x0008_0080, 'LO', PLANTED.institution),
    text(0x0008_1010, 'SH', PLANTED.station),
    text(0x0008_1030, 'LO', PLANTED.studyDescription),
    text(0x0008_103e, 'LO', PLANTED.seriesDescription),
    text(0x0008_1070, 'PN', PLANTED.operator),
    text(0x0009_0010, 'LO', 'PLANTCORP'),
    text(0x0009_1001, 'LO', PLANTED.privateText),
    { tag: 0x0009_1002, vr: 'UN', value: Buffer.from(PLANTED.privateRaw, 'latin1') },
    text(0x0010_0010, 'PN', PLANTED.patientName),
    text(0x0010_0020, 'LO', PLANTED.patientId),
    text(0x0010_0030, 'DA', PLANTED.birthDate),
    text(0x0010_1000, 'LO', PLANTED.otherIds),
    text(0x0018_1000, 'LO', PLANTED.serial),
    text(0x0020_000d, 'UI', PLANTED.study),
    text(0x0020_000e, 'UI', PLANTED.series),
    text(0x0020_0010, 'SH', PLANTED.studyId),
    text(0x0020_0052, 'UI', PLANTED.frameOfReference),
    text(0x0040_0512, 'LO', PLANTED.container),
    {
      tag: 0x0040_0560,
      vr: 'SQ',
      value: [[text(0x0040_0551, 'LO', PLANTED.specimen), text(0x0040_0554, 'UI', PLANTED.specimenUid), text(0x0040_0600, 'LO', PLANTED.specimenDescription)]],
    },
    {
      tag: 0x0048_0200,
      vr: 'SQ',
      // A reference to the label, which is not published.
      value: [[text(0x0008_1150, 'UI', '1.2.840.10008.5.1.4.1.1.77.1.6'), text(0x0008_1155, 'UI', PLANTED.instance(2))]],
    },
    {
      tag: 0x0008_1140,
      vr: 'SQ',
      // A reference to the level, which is published: it must follow the level's new UID.
      value: [[text(0x0008_1150, 'UI', '1.2.840.10008.5.1.4.1.1.77.1.6'), text(0x0008_1155, 'UI', PLANTED.instance(1))]],
    },
  ];
}

/** A series folder of three instances made from one fixture level: the level, a LABEL with a barcode, and a localizer. */
async function plantedSeries(bench: IngestBench, name: string): Promise<string> {
  const dir = path.join(bench.inbox, name);
  await mkdir(dir);
  const source = fixture('dicom/wsi2dcm/jpeg.dicom');
  await plantedCopy(source, path.join(dir, 'a-level.dcm'), plantedAttributes(1, 'ORIGINAL\\PRIMARY\\VOLUME\\NONE'));
  await plantedCopy(source, path.join(dir, 'b-label.dcm'), [
    ...plantedAttributes(2, 'ORIGINAL\\PRIMARY\\LABEL\\NONE'),
    text(0x2200_0002, 'UT', PLANTED.labelText),
    text(0x2200_0005, 'LT', PLANTED.barcode),
  ]);
  await plantedCopy(source, path.join(dir, 'c-localizer.dcm'), plantedAttributes(3, 'ORIGINAL\\PRIMARY\\LOCALIZER\\NONE'));
  return dir;
}

const plantedValues = () =>
  Object.entries(PLANTED).flatMap(([key, value]) => (typeof value === 'function' ? [1, 2, 3].map((n) => value(n)) : key === 'studyTime' ? ['101112'] : [value]));

testNeeding(needs, `planted identifying values (standard and private attributes, UIDs, a label's barcode) appear nowhere in the published series, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const original = await plantedSeries(bench, 'planted-series');
  const result = await ingestOne(bench, 'planted-series');
  const folder = await checkPublished(t, bench, result, original, [path.join(original, 'a-level.dcm'), path.join(original, 'b-label.dcm')]);
  const files = await readdir(folder);
  t.deepEqual(files, ['level-0.dcm'], 'the label and the localizer are not copied');
  // An independent scan for every planted value, in Latin-1 and UTF-16.
  for (const file of files) t.deepEqual(await occurrences(path.join(folder, file), plantedValues()), [], `${file} holds no planted value`);
  const report = (result.report as { dicom: DicomReport }).dicom;
  t.true(report.attributes.privateAttributesRemoved >= 3);
  t.true(report.attributes.removed.includes('InstitutionName'));
  t.true(report.attributes.removed.includes('OtherPatientIDs'));
  t.true(report.attributes.dummies.some((d) => d.startsWith('DeviceSerialNumber')));
  t.is(report.attributes.referencesDropped, 1, 'the reference to the label is dropped');
  const scan = result.report.checks!.find((c) => c.name === 'no identifying value anywhere in the series')!;
  t.regex(scan.detail, /searched \d+ bytes of 1 instances for \d+ values/);
  const ds = dicomParser.parseDicom(new Uint8Array(await headerBytes(path.join(folder, 'level-0.dcm'))));
  t.is(ds.string('x00080020') ?? '', '', 'Study Date emptied');
  t.is(ds.string('x00080023'), '19000101', 'Content Date replaced by the dummy');
  t.is(ds.elements.x00400560!.items![0]!.dataSet!.string('x00400551'), result.name!);
  t.falsy(ds.elements.x00091001, 'no private attribute');
  t.falsy(ds.elements.x00480200, 'the navigation sequence that only referred to the label is gone');
  t.is(ds.elements.x00081140!.items![0]!.dataSet!.string('x00081155'), ds.string('x00080018'), "the reference to the level follows the level's new SOP Instance UID");
});

// Damaged copies ------------------------------------------------------------------------------------

/** Ingest one damaged candidate: quarantined with a reason matching `reason`, nothing in the slide store. */
async function quarantined(t: ExecutionContext, bench: IngestBench, name: string, reason: RegExp): Promise<void> {
  const result = await ingestOne(bench, name);
  t.is(result.outcome, 'quarantined', result.reason ?? '');
  t.regex(result.reason ?? '', reason);
  t.deepEqual(await readdir(bench.config.paths.slides).catch(() => []), [], 'nothing is written to the slide store');
  t.is(await bench.repository.slideCount(), 0);
  t.true((await readdir(result.quarantinePath!)).includes(name), 'the original waits in quarantine');
  t.is((await readFile(path.join(result.quarantinePath!, 'reason.txt'), 'utf8')).trim(), result.reason!);
}

/** Replace every occurrence of `from` by `to` (the same length) in a file. */
async function rewriteBytes(file: string, from: string, to: string): Promise<void> {
  const bytes = await readFile(file);
  let at = bytes.indexOf(from, 0, 'latin1');
  if (at < 0) throw new Error(`${from} is not in ${file}`);
  while (at >= 0) {
    bytes.write(to, at, 'latin1');
    at = bytes.indexOf(from, at + 1, 'latin1');
  }
  await writeFile(file, bytes);
}

const damaged = (title: string, work: (t: ExecutionContext, bench: IngestBench) => Promise<void>) =>
  testNeeding([fixturesProblem()], `${title}, on ${testDialect}`, async (t) => work(t, await ingestBench(t)));

damaged('a series without its VOLUME instances (only the label and the localizer) is quarantined', async (t, bench) => {
  await wg26Folder(bench, 'no-volume', (f) => f === '2' || f === '1_Map');
  await quarantined(t, bench, 'no-volume', /no VOLUME instance/);
});

damaged('a file whose frames run past its end is quarantined', async (t, bench) => {
  const file = path.join(bench.inbox, 'cut.dcm');
  await copyFile(fixture('dicom/wsi2dcm/jpeg.dicom'), file);
  await truncate(file, 90_000);
  await quarantined(t, bench, 'cut.dcm', /runs past the end of the file|truncated/);
});

damaged('a level whose Basic Offset Table lies is quarantined, nothing partial left', async (t, bench) => {
  const dir = await wg26Folder(bench, 'lying-table');
  const file = path.join(dir, '6_0');
  const handle = await RandomAccessFile.open(file);
  const { pixelData } = await readInstanceHeader(handle);
  await handle.close();
  const fd = await open(file, 'r+');
  const entry = Buffer.alloc(4);
  await fd.read(entry, 0, 4, pixelData!.offset + 8 + 4 * 3);
  entry.writeUInt32LE(entry.readUInt32LE(0) + 6);
  await fd.write(entry, 0, 4, pixelData!.offset + 8 + 4 * 3);
  await fd.close();
  await quarantined(t, bench, 'lying-table', /offset table is wrong/);
});

damaged('a transfer syntax ingest does not publish is quarantined', async (t, bench) => {
  const file = path.join(bench.inbox, 'lossless.dcm');
  await copyFile(fixture('dicom/wsi2dcm/jpeg.dicom'), file);
  await rewriteBytes(file, '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.57');
  await quarantined(t, bench, 'lossless.dcm', /transfer syntax 1\.2\.840\.10008\.1\.2\.4\.57 \(JPEG Lossless/);
});

for (const [name, photometric, sampleBytes, vr] of [
  ['sm_image.dcm', 'RGB', 3, 'OB'],
  ['sm_image_grayscale.dcm', 'MONOCHROME2', 2, 'OW'],
] as const) {
  testNeeding(needs, `uncompressed ${photometric} frames (highdicom ${name}) are published as they are, on ${testDialect}`, async (t) => {
    const bench = await ingestBench(t);
    const original = fixture(`dicom/highdicom/${name}`);
    await copyFile(original, path.join(bench.inbox, name));
    const result = await ingestOne(bench, name);
    const folder = await checkPublished(t, bench, result, original, [original]);
    const published = dicomParser.parseDicom(new Uint8Array(await readFile(path.join(folder, 'level-0.dcm'))));
    t.is(published.string('x00020010'), '1.2.840.10008.1.2.1', 'still Explicit VR Little Endian');
    t.is(published.string('x00280004'), photometric);
    t.is(published.elements.x7fe00010!.length, 25 * 10 * 10 * sampleBytes, 'the Pixel Data holds the 25 frames and nothing else');
    t.is(published.elements.x7fe00010!.vr, vr);
  });
}

damaged('a folder mixing two series is quarantined', async (t, bench) => {
  const dir = path.join(bench.inbox, 'mixed');
  await mkdir(dir);
  await copyFile(fixture('dicom/wsi2dcm/jpeg.dicom'), path.join(dir, 'one.dcm'));
  await copyFile(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'), path.join(dir, 'two.dcm'));
  await quarantined(t, bench, 'mixed', /mixes instances of 2 series/);
});

damaged('a DICOM object that is not a whole-slide image is quarantined', async (t, bench) => {
  const file = path.join(bench.inbox, 'other.dcm');
  await copyFile(fixture('dicom/wsi2dcm/jpeg.dicom'), file);
  await rewriteBytes(file, '1.2.840.10008.5.1.4.1.1.77.1.6', '1.2.840.10008.5.1.4.1.1.77.1.2');
  await quarantined(t, bench, 'other.dcm', /not a whole-slide image/);
});

damaged('a .dcm file that is not DICOM is quarantined', async (t, bench) => {
  await writeFile(path.join(bench.inbox, 'garbage.dcm'), Buffer.alloc(4096, 0x41));
  await quarantined(t, bench, 'garbage.dcm', /cannot be read as a slide/);
});

// Served ----------------------------------------------------------------------------------------------

testNeeding([fixturesProblem()], `an ingested DICOM series is served by the tile routes, its thumbnails are made, and it downloads as its instances in a ZIP, stored or DICOM form, on ${testDialect}`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-ingest-dicom-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const inbox = path.join(data, 'in');
  await mkdir(inbox, { recursive: true });
  await copyFile(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'), path.join(inbox, 'camelyon.dcm'));
  await writeFile(path.join(inbox, 'metadata.csv'), stringify([{ file: 'camelyon.dcm', ...ROW }], { header: true }));
  const service = createIngestService(app.config, app.database.db, memoryLogger().log);
  const { results } = await service.ingestFolder(inbox, { source: 'cli' });
  t.is(results[0]!.outcome, 'published', results[0]!.reason ?? '');
  t.falsy(results[0]!.report.error, 'thumbnails were made');
  const id = results[0]!.slideId!;
  const dzi = await viewerFetch(app, `/tiles/${id}.dzi`);
  t.is(dzi.status, 200);
  t.regex(await dzi.text(), /<Size Height="700" Width="1152"\/>/);
  const tile = await viewerFetch(app, `/tiles/${id}_files/11/0_0.jpeg`);
  t.is(tile.status, 200);
  const thumbnail = await viewerFetch(app, `/tiles/${id}/thumbnail`);
  t.is(thumbnail.status, 200);

  // The toolbox reads the published series as any slide (its tissue mask, as the same file gives it unpublished).
  const publishedSlide = await Slide.open(path.join(app.config.paths.slides, results[0]!.name!));
  const mask = await tissueMask(publishedSlide, { downsample: 4, minObjectArea: 0, minHoleArea: 0 });
  await publishedSlide.close();
  const originalSlide = await Slide.open(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'));
  const originalMask = await tissueMask(originalSlide, { downsample: 4, minObjectArea: 0, minHoleArea: 0 });
  await originalSlide.close();
  t.like(mask, { width: 288, height: 175, tissuePixels: originalMask.tissuePixels });
  t.true(mask.tissuePixels > 0);

  // The de-identification report, as the administration's ingest records show it.
  const staff = await bearerHeaders(app, { level: 'L1', roles: ['curator'] });
  const response = await fetch(app.url(`/api/ingest/slides/${id}/report`), { headers: staff });
  t.is(response.status, 200);
  const record = (await response.json()) as { report: { originalFormat: string; dicom: DicomReport } };
  t.is(record.report.originalFormat, 'dicom');
  t.like(record.report.dicom.instances[0], { role: 'level', action: 'copied', file: 'level-0.dcm' });
  const { attributes } = record.report.dicom;
  // This file has no Patient Name of its own: it is written, named after the slide.
  t.true(attributes.renamed.includes('PatientName') || attributes.completed.includes("PatientName (the slide's name)"));
  t.true(attributes.uidsReplaced > 0);

  // Downloads: the single-file route says to use a bundle; a bundle holds every instance, as published.
  const published = path.join(app.config.paths.slides, results[0]!.name!, 'level-0.dcm');
  const downloader = { ...(await bearerHeaders(app, { level: 'L3' })), 'content-type': 'application/json' };
  const single = await fetch(app.url(`/api/slides/${id}/files/slide`), { headers: downloader });
  t.is(single.status, 409);
  t.like(((await single.json()) as { error: { code: string } }).error, { code: 'slide_is_series' });
  for (const [format, entry] of [
    ['', `slides/${results[0]!.name!}/level-0.dcm`],
    ['?format=dicom', `dicom/${results[0]!.name!}/level-0.dcm`],
  ] as const) {
    const response = await fetch(app.url(`/api/downloads${format}`), { method: 'POST', headers: downloader, body: JSON.stringify({ slides: [id] }) });
    t.is(response.status, 200, await response.clone().text().then((body) => body.slice(0, 300)));
    const zip = path.join(inbox, `bundle${format ? '-dicom' : ''}.zip`);
    await writeFile(zip, Buffer.from(await response.arrayBuffer()));
    const out = path.join(inbox, `unzipped${format ? '-dicom' : ''}`);
    const names = (await promisify(execFile)('unzip', ['-Z1', zip])).stdout.trim().split('\n');
    t.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), [], 'no entry twice');
    t.true(names.includes(entry), names.join(', '));
    await promisify(execFile)('unzip', ['-qo', zip, '-d', out]);
    t.true((await readFile(path.join(out, entry))).equals(await readFile(published)), `${entry} is the published instance`);
    const checked = await promisify(execFile)('sha256sum', ['-c', 'manifest-sha256.txt'], { cwd: out });
    t.regex(checked.stdout, new RegExp(`${entry.replace(/[.]/g, '\\.')}: OK`));
  }
  t.true((await stat(path.join(app.config.paths.slides, results[0]!.name!, 'level-0.dcm'))).size > 0);
});

test('a series folder whose instance changed within the settling time is left for a later run, though the folder itself is older', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-discover-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'growing'));
  const dicm = Buffer.alloc(200);
  dicm.write('DICM', 128, 'latin1');
  await writeFile(path.join(dir, 'growing', 'level'), dicm);
  const old = new Date(Date.now() - 3_600_000);
  await utimes(path.join(dir, 'growing'), old, old);
  const fresh = await discoverFolder(dir, { minAgeMs: 60_000 });
  t.deepEqual(fresh.unsettled, ['growing']);
  t.deepEqual(fresh.candidates, []);
  await utimes(path.join(dir, 'growing', 'level'), old, old);
  t.deepEqual((await discoverFolder(dir, { minAgeMs: 60_000 })).candidates.map((c) => c.fileName), ['growing']);
});

test('a sub-folder holding DICOM files is offered as one slide named after it; a .dcm file by its base name; other folders are not slides', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-discover-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'notes'));
  await writeFile(path.join(dir, 'notes', 'readme.txt'), 'not a slide');
  await mkdir(path.join(dir, 'Case-7'));
  const dicm = Buffer.alloc(200);
  dicm.write('DICM', 128, 'latin1');
  await writeFile(path.join(dir, 'Case-7', 'anything'), dicm);
  await writeFile(path.join(dir, 'Case-7.xml'), '<Annotations/>');
  await writeFile(path.join(dir, 'single.dicom'), dicm);
  const folder = await discoverFolder(dir);
  t.deepEqual(
    folder.candidates.map((c) => [c.fileName, c.key, c.xml && path.basename(c.xml)]),
    [
      ['Case-7', 'case-7', 'Case-7.xml'],
      ['single.dicom', 'single', null],
    ],
  );
});
