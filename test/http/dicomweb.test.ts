// DICOMweb of the published catalog: QIDO-RS, WADO-RS metadata, frames, rendered images, CORS and access,
// checked against what the DICOM export writes for the same slide.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { createDicomExportService } from '../../server/dicom/export/index.js';
import { toDicomJson, type JsonDataset } from '../../server/dicom/web/index.js';
import { describeSlide, instanceAttributes, levelInstance, openDicomSource, planLevel, seriesUids } from '../../server/wsi/dicom-writer/index.js';
import { version } from '../../server/package-info.js';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { parseMultipart } from '../support/multipart.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const VIEWER_ORIGIN = 'https://viewer.hospital.example';
const PIXEL_DATA = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);

/** The frames of an exported file: after Pixel Data, the Basic Offset Table item, then one item per frame (padded to even length). */
function fileFrames(file: Buffer): Buffer[] {
  let at = file.lastIndexOf(PIXEL_DATA) + PIXEL_DATA.length;
  at += 8 + file.readUInt32LE(at + 4);
  const frames: Buffer[] = [];
  while (file.readUInt16LE(at + 2) === 0xe000) {
    const length = file.readUInt32LE(at + 4);
    frames.push(file.subarray(at + 8, at + 8 + length));
    at += 8 + length;
  }
  return frames;
}

const value = (dataset: JsonDataset, tag: string) => dataset[tag]?.Value?.[0];

test(`DICOMweb: QIDO-RS lists a published slide as a study and series with its levels and thumbnail as instances; metadata, frames and rendered images are what the export writes (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data, SLIDEBANK_DICOM_CORS_ORIGINS: VIEWER_ORIGIN } });
  t.deepEqual(app.config.dicom.corsOrigins, [VIEWER_ORIGIN]);
  const made = await makeSlide({ width: 1531, height: 1023, tileSize: 256, levels: 2, seed: 3, out: path.join(data, 'made') });
  const slide = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-DICOMWEB');
  await app.database.db.knex('slides').where({ id: slide.id }).update({ sha256: createHash('sha256').update(await readFile(made.svs)).digest('hex') });

  // What the export writes for the slide.
  const exported = await createDicomExportService(app.config, app.database.db).exportSlide(slide.id, path.join(data, 'export'));
  const { result } = exported;
  const levels = result.instances.filter((i) => i.kind === 'volume');
  t.is(levels.length, 2);
  t.is(result.instances.length, 3);

  const { session, token } = await signedIn(app, { level: 'L1' });
  const root = '/dicomweb';
  const study = `${root}/studies/${result.studyInstanceUid}`;
  const series = `${study}/series/${result.seriesInstanceUid}`;

  // QIDO-RS: studies, series, instances.
  const studies = await session.get<JsonDataset[]>(`${root}/studies`);
  t.is(studies.status, 200);
  t.regex(studies.headers.get('content-type') ?? '', /^application\/dicom\+json/);
  t.is(studies.body.length, 1);
  t.is(value(studies.body[0]!, '0020000D'), result.studyInstanceUid);
  t.is(value(studies.body[0]!, '00080061'), 'SM');
  t.is(value(studies.body[0]!, '00201208'), 3);
  t.is(value(studies.body[0]!, '00081190'), app.url(study));
  t.is((await session.get<JsonDataset[]>(`${root}/studies?StudyInstanceUID=${result.studyInstanceUid}`)).body.length, 1);
  t.is((await session.get<JsonDataset[]>(`${root}/studies?0020000D=1.2.3`)).body.length, 0);
  t.is((await session.get<JsonDataset[]>(`${root}/studies?ModalitiesInStudy=SM&offset=1`)).body.length, 0);
  const unknown = await session.get<{ error: { code: string } }>(`${root}/studies?NotAnAttribute=1`);
  t.is(unknown.status, 400);
  t.is(unknown.body.error.code, 'invalid_query');

  const seriesList = await session.get<JsonDataset[]>(`${study}/series`);
  t.is(seriesList.status, 200);
  t.deepEqual(seriesList.body.map((s) => [value(s, '0020000E'), value(s, '00080060'), value(s, '00201209')]), [[result.seriesInstanceUid, 'SM', 3]]);
  t.is((await session.get<JsonDataset[]>(`${root}/series?Modality=SM`)).body.length, 1);
  t.is((await session.get(`${root}/studies/1.2.3/series`)).status, 404);

  const instances = await session.get<JsonDataset[]>(`${series}/instances`);
  t.is(instances.status, 200);
  t.deepEqual(
    instances.body.map((i) => value(i, '00080018')),
    result.instances.map((i) => i.sopInstanceUid),
  );
  for (const [n, instance] of instances.body.entries()) {
    const want = result.instances[n]!;
    t.is(value(instance, '00080016'), '1.2.840.10008.5.1.4.1.1.77.1.6');
    t.is(value(instance, '00280008'), want.frames);
    t.is(value(instance, '00083002'), want.transferSyntax);
    t.deepEqual(instance['00080008']!.Value!.slice(2, 3), [want.kind === 'volume' ? 'VOLUME' : 'THUMBNAIL']);
  }
  t.is(value(instances.body[0]!, '00480006'), 1531);
  t.is(value(instances.body[0]!, '00480007'), 1023);
  t.is(value(instances.body[0]!, '00280010'), 256);
  t.is(value(instances.body[0]!, '00280011'), 256);
  const second = await session.get<JsonDataset[]>(`${root}/instances?limit=1&offset=1&includefield=ContainerIdentifier`);
  t.deepEqual(second.body.map((i) => [value(i, '00080018'), value(i, '00400512')]), [[result.instances[1]!.sopInstanceUid, 'SB1-LV-HCC-HE-DICOMWEB']]);
  t.deepEqual((await session.get<JsonDataset[]>(`${root}/instances?SOPInstanceUID=${result.instances[2]!.sopInstanceUid}`)).body.map((i) => value(i, '00480006')), [
    value(instances.body[2]!, '00480006'),
  ]);

  // The UIDs are the export's, from one function: uidKey and seriesUids under dicom.uidRoot.
  t.is(app.services.dicomweb.uidsOf({ id: slide.id, sha256: exported.slide.sha256, fileSize: exported.slide.fileSize }).instance(2), result.instances[1]!.sopInstanceUid);

  // WADO-RS metadata: the export's attributes of each level, as DICOM JSON; the ICC profile through its BulkDataURI.
  const metadata = await token.get<JsonDataset[]>(`${series}/metadata`);
  t.is(metadata.status, 200);
  t.regex(metadata.headers.get('content-type') ?? '', /^application\/dicom\+json/);
  t.is(metadata.body.length, 3);
  const source = await openDicomSource(made.svs);
  let icc: Buffer;
  try {
    const description = await describeSlide(source, { name: exported.slide.name, published: exported.slide.publishedAt, softwareVersion: version });
    icc = description.iccProfile;
    const uids = seriesUids(`slidebank-slide:${slide.id}:${exported.slide.sha256}`);
    for (const [level, input] of source.levels.entries()) {
      const expected = toDicomJson(instanceAttributes(description, levelInstance(await planLevel(input), level), uids), () => 'bulk');
      const got = structuredClone(metadata.body[level]!);
      t.is(value(got, '00083002'), result.instances[level]!.transferSyntax);
      delete got['00083002'];
      const bulk = got['00480105']!.Value![0] as JsonDataset;
      t.regex(bulk['00282000']!.BulkDataURI!, /\/bulkdata\/00480105\.0\.00282000$/);
      bulk['00282000']!.BulkDataURI = 'bulk';
      t.deepEqual(got, expected, `level ${level}`);
    }
  } finally {
    await source.close();
  }
  const one = await session.get<JsonDataset[]>(`${series}/instances/${result.instances[1]!.sopInstanceUid}/metadata`);
  t.is(value(one.body[0]!, '00080018'), result.instances[1]!.sopInstanceUid);
  const iccUri = ((one.body[0]!['00480105']!.Value![0] as JsonDataset)['00282000']!.BulkDataURI)!;
  const iccAnswer = await session.get<Buffer>(new URL(iccUri).pathname);
  const iccParts = parseMultipart(iccAnswer.headers.get('content-type')!, iccAnswer.body);
  t.is(iccParts.length, 1);
  t.true(iccParts[0]!.body.equals(icc));

  // Frames: the bytes the exported file holds, frame by frame and several at once.
  for (const [level, instance] of levels.entries()) {
    const inFile = fileFrames(await readFile(instance.file));
    t.is(inFile.length, instance.frames);
    const base = `${series}/instances/${instance.sopInstanceUid}/frames`;
    for (const n of [1, 2, instance.frames]) {
      const answer = await session.get<Buffer>(`${base}/${n}`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } });
      t.is(answer.status, 200, `level ${level} frame ${n}`);
      const parts = parseMultipart(answer.headers.get('content-type')!, answer.body);
      t.is(parts.length, 1);
      // The file pads odd frames with one zero byte; the frame is the rest.
      const stored = inFile[n - 1]!;
      t.true(stored.subarray(0, parts[0]!.body.length).equals(parts[0]!.body) && stored.length - parts[0]!.body.length <= 1, `level ${level} frame ${n}`);
    }
    const several = [1, 3, 2, instance.frames].filter((n) => n <= instance.frames);
    const answer = await session.get<Buffer>(`${base}/${several.join(',')}`);
    const contentType = answer.headers.get('content-type')!;
    t.regex(contentType, /^multipart\/related; type="application\/octet-stream"; transfer-syntax=1\.2\.840\.10008\.1\.2\.4\.50; boundary=/);
    const parts = parseMultipart(contentType, answer.body);
    t.is(parts.length, several.length);
    for (const [i, n] of several.entries()) {
      t.is(parts[i]!.headers['content-type'], `application/octet-stream; transfer-syntax=${instance.transferSyntax}`);
      t.true(inFile[n - 1]!.subarray(0, parts[i]!.body.length).equals(parts[i]!.body), `level ${level}: part ${i} is frame ${n}`);
    }
  }
  const level0 = `${series}/instances/${levels[0]!.sopInstanceUid}`;
  const asJpeg = await session.get<Buffer>(`${level0}/frames/2`, { headers: { accept: 'multipart/related; type="image/jpeg"' } });
  t.regex(asJpeg.headers.get('content-type')!, /^multipart\/related; type="image\/jpeg"/);
  t.is(parseMultipart(asJpeg.headers.get('content-type')!, asJpeg.body)[0]!.headers['content-type'], 'image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50');
  const transcoded = await session.get<{ error: { code: string } }>(`${level0}/frames/2`, { headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1' } });
  t.is(transcoded.status, 406);
  t.is((await session.get(`${level0}/frames/${levels[0]!.frames + 1}`)).status, 404);
  t.is((await session.get(`${series}/instances/1.2.3/frames/1`)).status, 404);

  // Rendered: a JPEG of the tile's size; the series' thumbnail.
  const rendered = await session.get<Buffer>(`${level0}/frames/7/rendered`);
  t.is(rendered.status, 200);
  t.is(rendered.headers.get('content-type'), 'image/jpeg');
  t.like(await sharp(rendered.body).metadata(), { format: 'jpeg', width: 256, height: 256 });
  const thumbnail = await session.get<Buffer>(`${series}/rendered`);
  t.is(thumbnail.headers.get('content-type'), 'image/jpeg');
  const thumbnailFrames = fileFrames(await readFile(result.instances[2]!.file));
  t.true(thumbnailFrames[0]!.subarray(0, thumbnail.body.length).equals(thumbnail.body), 'the series rendered is the thumbnail instance');
  t.is((await session.get(`${series}/thumbnail`)).status, 200);
  t.is((await session.get(`${study}/thumbnail`)).status, 200);

  // The label is never an instance, nor in any answer.
  const all = await session.get<JsonDataset[]>(`${root}/instances?includefield=all`);
  t.false(JSON.stringify(all.body).includes('LABEL'));
  t.false(all.body.some((i) => (i['00080008']?.Value ?? []).includes('LABEL')));

  // CORS for the configured origin only; a preflight needs no credentials.
  const preflight = await fetch(app.url(`${series}/instances`), { method: 'OPTIONS', headers: { origin: VIEWER_ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' } });
  t.is(preflight.status, 204);
  t.is(preflight.headers.get('access-control-allow-origin'), VIEWER_ORIGIN);
  t.regex(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
  const cross = await token.get(`${root}/studies`, { headers: { origin: VIEWER_ORIGIN } });
  t.is(cross.headers.get('access-control-allow-origin'), VIEWER_ORIGIN);
  const refusedCross = await new Client(app).get(`${root}/studies`, { headers: { origin: VIEWER_ORIGIN } });
  t.is(refusedCross.status, 401);
  t.is(refusedCross.headers.get('access-control-allow-origin'), VIEWER_ORIGIN, 'a refusal is readable by the viewer');
  const other = await token.get(`${root}/studies`, { headers: { origin: 'https://elsewhere.example' } });
  t.is(other.headers.get('access-control-allow-origin'), null);
  t.is((await token.get('/api/slides', { headers: { origin: VIEWER_ORIGIN } })).headers.get('access-control-allow-origin'), null);
});

test(`DICOMweb access: anonymous 401, L0 403, L1 by session and token; a withdrawn slide is absent and its URLs 404 (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-access-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const made = await makeSlide({ width: 900, height: 700, tileSize: 240, levels: 2, seed: 8, out: path.join(data, 'made') });
  const kept = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-KEPT');
  const gone = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-GONE');
  const uids = (id: number) => app.services.dicomweb.uidsOf({ id, sha256: null, fileSize: kept.fileSize });
  const series = (id: number) => `/dicomweb/studies/${uids(id).study}/series/${uids(id).series}`;

  const anonymous = await new Client(app).get<{ error: { code: string } }>('/dicomweb/studies');
  t.is(anonymous.status, 401);
  const l0 = await signedIn(app, { level: 'L0' });
  t.is((await l0.session.get(`${series(kept.id)}/metadata`)).status, 403);
  t.is((await l0.token.get('/dicomweb/studies')).status, 403);
  const { session, token } = await signedIn(app, { level: 'L1' });
  for (const client of [session, token]) {
    const studies = await client.get<JsonDataset[]>('/dicomweb/studies');
    t.is(studies.status, 200);
    t.deepEqual(studies.body.map((s) => value(s, '0020000D')).sort(), [uids(kept.id).study, uids(gone.id).study].sort());
  }
  t.is((await session.get(`${series(gone.id)}/instances/${uids(gone.id).instance(1)}/frames/1`)).status, 200);

  await app.services.slideStatus.withdraw(gone.id, 'consent withdrawn', { actorId: null });
  const after = await session.get<JsonDataset[]>('/dicomweb/series');
  t.deepEqual(after.body.map((s) => value(s, '0020000E')), [uids(kept.id).series]);
  for (const url of [`${series(gone.id)}/metadata`, `${series(gone.id)}/instances/${uids(gone.id).instance(1)}/frames/1`, `${series(gone.id)}/rendered`, `/dicomweb/studies/${uids(gone.id).study}/series`]) {
    t.is((await session.get(url)).status, 404, url);
  }
  t.is((await session.get<JsonDataset[]>(`/dicomweb/instances?StudyInstanceUID=${uids(gone.id).study}`)).body.length, 0);
  t.is((await session.get(`${series(kept.id)}/metadata`)).status, 200);
});

test(`DICOMweb: a slide that cannot be served is passed over by a search across the catalog, and its own URLs say why (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-unserved-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const made = await makeSlide({ width: 900, height: 700, tileSize: 240, levels: 2, seed: 9, out: path.join(data, 'made') });
  const good = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-GOOD');
  // A published slide whose file is not a slide at all (damaged on disk).
  const damagedFile = path.join(data, 'damaged.svs');
  await writeFile(damagedFile, 'not a slide');
  const damaged = await registerSlide(app.database.db, damagedFile, 'SB1-LV-HCC-HE-DAMAGED');
  const uids = (id: number, fileSize: number) => app.services.dicomweb.uidsOf({ id, sha256: null, fileSize });
  const { session } = await signedIn(app, { level: 'L1' });

  const instances = await session.get<JsonDataset[]>('/dicomweb/instances');
  t.is(instances.status, 200);
  t.true(instances.body.length > 0);
  t.deepEqual([...new Set(instances.body.map((i) => value(i, '0020000D')))], [uids(good.id, good.fileSize).study], 'only the slide that can be served');
  const bad = uids(damaged.id, damaged.fileSize);
  const own = await session.get<{ error: { code: string; message: string } }>(`/dicomweb/studies/${bad.study}/series/${bad.series}/metadata`);
  t.is(own.status, 501);
  t.is(own.body.error.code, 'slide_unsupported');
  t.regex(own.body.error.message, /cannot be served as DICOM/);
  t.notRegex(own.body.error.message, /damaged\.svs|\/tmp|slidebank-dicomweb/, 'no server path in the answer');
  t.regex(own.body.error.message, /SB1-LV-HCC-HE-DAMAGED: not a TIFF file/);
});

