// Reads ../shared/fixtures/dicom: slides that ingest published as DICOM series are served by DICOMweb
// from the published instances themselves — their UIDs, their attributes (compared with pydicom's own
// DICOM JSON of the same files) and their frames as stored (compared with pydicom's reading of the
// encapsulated Pixel Data) — beside a slide file served as the export writes it; the label never served.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import sharp from 'sharp';
import type { JsonDataset } from '../../server/dicom/web/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { packageRoot } from '../../server/package-info.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { fixture, fixturesDir, fixturesProblem } from '../support/fixtures.js';
import { memoryLogger } from '../support/logs.js';
import { parseMultipart } from '../support/multipart.js';
import { pydicomTest } from '../support/pydicom.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };
const OCTETS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';

interface Oracle {
  transferSyntax: string;
  frames: number;
  json: JsonDataset;
  icc: string[];
  stored: string[];
  /** The frames (0-based) `stored` holds, in order. */
  askedFrames: number[];
}

/** A published instance as pydicom reads it (test/support/dicom_json_oracle.py), with frames (0-based) as stored. */
async function pydicomRead(file: string, frames: number[]): Promise<Oracle> {
  const script = path.join(packageRoot, 'test', 'support', 'dicom_json_oracle.py');
  const { stdout } = await promisify(execFile)('/usr/bin/python3', [script, file, JSON.stringify(frames)], { maxBuffer: 64 * 1024 * 1024 });
  return { ...(JSON.parse(stdout) as Omit<Oracle, 'askedFrames'>), askedFrames: frames };
}

/** Every BulkDataURI replaced by the word pydicom's oracle writes, so that the data sets compare. */
function bulkAsWord(dataset: JsonDataset): JsonDataset {
  return Object.fromEntries(
    Object.entries(dataset).map(([key, a]) => [
      key,
      a.BulkDataURI !== undefined ? { vr: a.vr, BulkDataURI: 'bulk' } : a.vr === 'SQ' && a.Value ? { vr: 'SQ', Value: (a.Value as JsonDataset[]).map(bulkAsWord) } : a,
    ]),
  );
}

/** pydicom writes an empty sequence as `"Value": []`; PS3.18 F.2.5 leaves Value out of an attribute without one, as the server does. */
function withoutEmptyValues(dataset: JsonDataset): JsonDataset {
  return Object.fromEntries(
    Object.entries(dataset).map(([key, a]) => [
      key,
      a.Value?.length === 0 ? { vr: a.vr } : a.vr === 'SQ' && a.Value ? { vr: 'SQ', Value: (a.Value as JsonDataset[]).map(withoutEmptyValues) } : a,
    ]),
  );
}

const value = (dataset: JsonDataset, tag: string) => dataset[tag]?.Value?.[0];

/** Every published instance of a series folder, in level order. */
async function levelFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).map((f) => path.join(folder, f));
}

async function checkSeries(t: ExecutionContext, client: Client, app: { url(p: string): string }, folder: string, name: string): Promise<void> {
  const files = await levelFiles(folder);
  const first = await pydicomRead(files[0]!, []);
  const study = value(first.json, '0020000D') as string;
  const seriesUid = value(first.json, '0020000E') as string;
  const series = `/dicomweb/studies/${study}/series/${seriesUid}`;

  // QIDO-RS: the published series' own UIDs, its instances the levels, largest first.
  const studies = await client.get<JsonDataset[]>(`/dicomweb/studies?StudyInstanceUID=${study}`);
  t.is(studies.status, 200);
  t.is(studies.body.length, 1, `${name}: the study is found by its published UID`);
  t.like(studies.body[0], { '00080061': { vr: 'CS', Value: ['SM'] }, '00201208': { vr: 'IS', Value: [files.length] }, '00081190': { vr: 'UR', Value: [app.url(`/dicomweb/studies/${study}`)] } });
  t.deepEqual(studies.body[0]!['00100010'], first.json['00100010'] ?? { vr: 'PN' }, "the Patient's Name the instance holds (the slide's name)");
  const seriesList = await client.get<JsonDataset[]>(`/dicomweb/studies/${study}/series`);
  t.deepEqual(seriesList.body.map((s) => [value(s, '0020000E'), value(s, '00080060'), value(s, '00201209')]), [[seriesUid, 'SM', files.length]]);
  const instances = await client.get<JsonDataset[]>(`${series}/instances`);
  t.is(instances.status, 200);

  const oracles: Oracle[] = [];
  for (const file of files) {
    const frames = (await pydicomRead(file, [])).frames;
    oracles.push(await pydicomRead(file, [...new Set([0, 1, 2, frames - 1].filter((f) => f < frames))]));
  }
  t.deepEqual(
    instances.body.map((i) => value(i, '00080018')),
    oracles.map((o) => value(o.json, '00080018')),
    `${name}: one instance per published file, in level order, named by its own SOP Instance UID`,
  );
  for (const [n, instance] of instances.body.entries()) {
    const o = oracles[n]!;
    for (const tag of ['00080016', '00280008', '00280010', '00280011', '00480006', '00480007', '00200013']) t.deepEqual(instance[tag], o.json[tag], `${name} instance ${n + 1}: ${tag}`);
    t.deepEqual(instance['00080008'], o.json['00080008']);
    t.is(value(instance, '00083002'), o.transferSyntax);
    t.is(value(instance, '00080056'), 'ONLINE');
  }
  const bySop = await client.get<JsonDataset[]>(`/dicomweb/instances?SOPInstanceUID=${value(oracles.at(-1)!.json, '00080018') as string}&includefield=TotalPixelMatrixColumns`);
  t.deepEqual(bySop.body.map((i) => value(i, '00480006')), [value(oracles.at(-1)!.json, '00480006')]);

  // WADO-RS metadata: every attribute the file holds, as pydicom's own DICOM JSON of it, and the transfer syntax.
  const metadata = await client.get<JsonDataset[]>(`${series}/metadata`);
  t.is(metadata.status, 200);
  t.regex(metadata.headers.get('content-type') ?? '', /^application\/dicom\+json/);
  t.is(metadata.body.length, files.length);
  for (const [n, dataset] of metadata.body.entries()) {
    const got = structuredClone(dataset);
    t.deepEqual(got['00083002'], { vr: 'UI', Value: [oracles[n]!.transferSyntax] });
    delete got['00083002'];
    t.deepEqual(bulkAsWord(got), withoutEmptyValues(oracles[n]!.json), `${name} instance ${n + 1}: the metadata is the file's data set`);
  }
  // The ICC profile through its BulkDataURI: the bytes the file holds.
  const iccUri = ((metadata.body[0]!['00480105']?.Value?.[0] as JsonDataset | undefined)?.['00282000'])?.BulkDataURI;
  if (oracles[0]!.icc.length > 0) {
    t.truthy(iccUri);
    const icc = await client.get<Buffer>(new URL(iccUri!).pathname);
    t.is(icc.status, 200);
    t.true(parseMultipart(icc.headers.get('content-type')!, icc.body)[0]!.body.equals(Buffer.from(oracles[0]!.icc[0]!, 'base64')), `${name}: the ICC profile's bytes`);
  }

  // Frames: the bytes stored in the published instance (pydicom's reading), one and several per request, with the stored transfer syntax.
  for (const [n, o] of oracles.entries()) {
    const sop = value(o.json, '00080018') as string;
    const stored = new Map(o.askedFrames.map((f, i) => [f + 1, Buffer.from(o.stored[i]!, 'base64')]));
    const asked = [...stored.keys()].reverse();
    const answer = await client.get<Buffer>(`${series}/instances/${sop}/frames/${asked.join(',')}`, { headers: { accept: OCTETS } });
    t.is(answer.status, 200, `${name} instance ${n + 1}`);
    const contentType = answer.headers.get('content-type')!;
    t.true(contentType.startsWith(`multipart/related; type="application/octet-stream"; transfer-syntax=${o.transferSyntax}; boundary=`), contentType);
    const parts = parseMultipart(contentType, answer.body);
    t.is(parts.length, asked.length);
    for (const [i, frame] of asked.entries()) {
      t.is(parts[i]!.headers['content-type'], `application/octet-stream; transfer-syntax=${o.transferSyntax}`);
      t.true(parts[i]!.body.equals(stored.get(frame)!), `${name} instance ${n + 1}: part ${i + 1} is frame ${frame} as stored`);
    }
    t.is((await client.get(`${series}/instances/${sop}/frames/${o.frames + 1}`, { headers: { accept: OCTETS } })).status, 404);
  }
  const level0 = `${series}/instances/${value(oracles[0]!.json, '00080018') as string}`;
  const own = oracles[0]!.transferSyntax.startsWith('1.2.840.10008.1.2.4.9') ? 'image/jp2' : 'image/jpeg';
  const typed = await client.get<Buffer>(`${level0}/frames/1`, { headers: { accept: `multipart/related; type="${own}"` } });
  t.is(typed.status, 200);
  t.is(parseMultipart(typed.headers.get('content-type')!, typed.body)[0]!.headers['content-type'], `${own}; transfer-syntax=${oracles[0]!.transferSyntax}`);
  t.is((await client.get(`${level0}/frames/1`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1' } })).status, 406, 'not transcoded');

  // Rendered: a frame decoded, of the tile size; the series' thumbnail has the slide's shape (never the label's).
  const rendered = await client.get<Buffer>(`${level0}/frames/1/rendered`);
  t.is(rendered.status, 200);
  t.like(await sharp(rendered.body).metadata(), { format: 'jpeg', width: value(oracles[0]!.json, '00280011'), height: value(oracles[0]!.json, '00280010') });
  for (const url of [`${series}/rendered`, `${series}/thumbnail`, `/dicomweb/studies/${study}/thumbnail`]) {
    const thumbnail = await client.get<Buffer>(url);
    t.is(thumbnail.status, 200, url);
    const { width = 0, height = 0, format } = await sharp(thumbnail.body).metadata();
    t.is(format, 'jpeg');
    const aspect = (value(oracles[0]!.json, '00480006') as number) / (value(oracles[0]!.json, '00480007') as number);
    t.true(Math.abs(width / height - aspect) < 0.05, `${url}: ${width}×${height}, the slide's aspect ${aspect.toFixed(3)}`);
  }
}

pydicomTest(
  [fixturesProblem()],
  `DICOMweb serves slides published as DICOM series from their instances: own UIDs, the files' attributes and stored frames, thumbnails, no label; beside a slide file (${testDialect})`,
  async (t) => {
    const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-series-'));
    t.teardown(() => rm(data, { recursive: true, force: true }));
    const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
    const inbox = path.join(data, 'in');
    // The 3DHISTECH series with its label and localizer (not published), and wsi2dcm's JPEG 2000 multi-frame file.
    await mkdir(path.join(inbox, 'bpaec'), { recursive: true });
    const wg26 = path.join(fixturesDir, 'dicom/wg26-bpaec');
    for (const file of await readdir(wg26)) await copyFile(path.join(wg26, file), path.join(inbox, 'bpaec', file));
    await copyFile(fixture('dicom/wsi2dcm/jpeg2000.dicom'), path.join(inbox, 'j2k.dcm'));
    await writeFile(path.join(inbox, 'metadata.csv'), stringify(['bpaec', 'j2k.dcm'].map((file) => ({ file, ...ROW })), { header: true }));
    const { results } = await createIngestService(app.config, app.database.db, memoryLogger().log).ingestFolder(inbox, { source: 'cli' });
    t.deepEqual(results.map((r) => [path.basename(r.file), r.outcome, r.reason ?? '']).sort(), [
      ['bpaec', 'published', ''],
      ['j2k.dcm', 'published', ''],
    ]);
    // A slide file beside them, served as the export writes it.
    const made = await makeSlide({ width: 900, height: 700, tileSize: 240, levels: 2, seed: 5, out: path.join(data, 'made') });
    const file = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-FILE');

    const { session, token } = await signedIn(app, { level: 'L1' });
    const all = await session.get<JsonDataset[]>('/dicomweb/studies');
    t.is(all.status, 200);
    t.is(all.body.length, 3, 'two published series and a slide file');
    t.true(all.body.some((s) => value(s, '0020000D') === app.services.dicomweb.uidsOf({ id: file.id, sha256: null, fileSize: file.fileSize }).study));

    const [bpaec, j2k] = ['bpaec', 'j2k.dcm'].map((name) => results.find((r) => path.basename(r.file) === name)!);
    await checkSeries(t, session, app, path.join(app.config.paths.slides, bpaec!.name!), bpaec!.name!);
    await checkSeries(t, token, app, path.join(app.config.paths.slides, j2k!.name!), j2k!.name!);

    // The UIDs the slide is served under, for links to it: the published series' own.
    const bpaecFirst = await pydicomRead((await levelFiles(path.join(app.config.paths.slides, bpaec!.name!)))[0]!, []);
    t.deepEqual(await app.services.dicomweb.servedUids(bpaec!.slideId!), { study: value(bpaecFirst.json, '0020000D'), series: value(bpaecFirst.json, '0020000E') });
    const fileUids = app.services.dicomweb.uidsOf({ id: file.id, sha256: null, fileSize: file.fileSize });
    t.deepEqual(await app.services.dicomweb.servedUids(file.id), { study: fileUids.study, series: fileUids.series });

    // The label is in no answer: no instance of another Image Type, no label text.
    const everything = await session.get<JsonDataset[]>('/dicomweb/instances?includefield=all');
    t.is(everything.status, 200);
    t.is(everything.body.length, (await levelFiles(path.join(app.config.paths.slides, bpaec!.name!))).length + 1 + 3);
    t.deepEqual([...new Set(everything.body.map((i) => (i['00080008']?.Value ?? [])[2]))].sort(), ['THUMBNAIL', 'VOLUME']);
    t.false(JSON.stringify(everything.body).includes('LABEL'));

    // A withdrawn series leaves every answer.
    const gone = j2k!;
    const goneStudy = value((await pydicomRead((await levelFiles(path.join(app.config.paths.slides, gone.name!)))[0]!, [])).json, '0020000D') as string;
    await app.services.slideStatus.withdraw(gone.slideId!, 'consent withdrawn', { actorId: null });
    t.deepEqual((await session.get<JsonDataset[]>(`/dicomweb/studies?StudyInstanceUID=${goneStudy}`)).body, []);
    t.is((await session.get(`/dicomweb/studies/${goneStudy}/series`)).status, 404);
  },
);

/** A copy of a published series folder named anew (its study and series UIDs' last digit moved on by `shift`, same length), level 0 as `damage` leaves it. */
async function damagedCopy(from: string, to: string, study: string, series: string, shift: number, damage: (bytes: Buffer) => Buffer): Promise<{ study: string; series: string }> {
  const renamed = (uid: string) => uid.slice(0, -1) + String((Number(uid.at(-1)) + shift) % 10);
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) {
    let bytes: Buffer = await readFile(path.join(from, name));
    for (const uid of [study, series]) {
      const [old, anew] = [Buffer.from(uid, 'latin1'), Buffer.from(renamed(uid), 'latin1')];
      for (let at = bytes.indexOf(old); at >= 0; at = bytes.indexOf(old, at + 1)) anew.copy(bytes, at);
    }
    if (name === 'level-0.dcm') bytes = damage(bytes);
    await writeFile(path.join(to, name), bytes);
  }
  return { study: renamed(study), series: renamed(series) };
}

pydicomTest(
  [fixturesProblem()],
  `DICOMweb passes over a damaged published series in searches across the catalog, and its own URLs say so without naming a server path (${testDialect})`,
  async (t) => {
    const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-series-damaged-'));
    t.teardown(() => rm(data, { recursive: true, force: true }));
    const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
    const inbox = path.join(data, 'in');
    await mkdir(inbox, { recursive: true });
    await copyFile(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'), path.join(inbox, 'camelyon.dcm'));
    await writeFile(path.join(inbox, 'metadata.csv'), stringify([{ file: 'camelyon.dcm', ...ROW }], { header: true }));
    const { results } = await createIngestService(app.config, app.database.db, memoryLogger().log).ingestFolder(inbox, { source: 'cli' });
    t.is(results[0]?.outcome, 'published', results[0]?.reason ?? '');
    const good = path.join(app.config.paths.slides, results[0]!.name!);
    const first = (await pydicomRead(path.join(good, 'level-0.dcm'), [])).json;
    const [study, series] = [value(first, '0020000D') as string, value(first, '0020000E') as string];

    // Frames cut off half way (the offset table points past the end), and a level that is not DICOM at all.
    const truncated = await damagedCopy(good, path.join(data, 'truncated'), study, series, 1, (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)));
    const garbage = await damagedCopy(good, path.join(data, 'garbage'), study, series, 2, (bytes) => Buffer.alloc(bytes.length, 0x41));
    await registerSlide(app.database.db, path.join(data, 'truncated'), 'SB1-LV-HCC-HE-TRUNCATED');
    await registerSlide(app.database.db, path.join(data, 'garbage'), 'SB1-LV-HCC-HE-GARBAGE');

    const { session } = await signedIn(app, { level: 'L1' });
    const studies = await session.get<JsonDataset[]>('/dicomweb/studies');
    t.is(studies.status, 200);
    t.deepEqual(studies.body.map((s) => value(s, '0020000D')).sort(), [study, truncated.study].sort(), 'a series whose headers cannot be read is not listed');
    const instances = await session.get<JsonDataset[]>('/dicomweb/instances');
    t.is(instances.status, 200);
    t.deepEqual([...new Set(instances.body.map((i) => value(i, '0020000D')))], [study], 'the truncated series is passed over');
    const own = await session.get<{ error: { code: string; message: string } }>(`/dicomweb/studies/${truncated.study}/series/${truncated.series}/metadata`);
    t.is(own.status, 500);
    t.is(own.body.error.code, 'slide_unreadable');
    t.regex(own.body.error.message, /^Slide \d+ is damaged and cannot be served$/);
    t.is((await session.get(`/dicomweb/studies/${garbage.study}/series/${garbage.series}/metadata`)).status, 404);
    t.true(app.logs.some((line) => /published series not served/.test(String(line.msg))), 'the unreadable series is logged');
    t.is((await session.get(`/dicomweb/studies/${study}/series/${series}/metadata`)).status, 200);
  },
);
