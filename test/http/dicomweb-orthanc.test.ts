// Slidebank's DICOMweb cross-checked against an independent implementation: a local Orthanc (Debian's
// orthanc with the orthanc-dicomweb plugin, started by the test) stores the same instances — the
// export's of a slide file, and a series ingest published from DICOM (read from ../shared/fixtures) —
// and its QIDO-RS and WADO-RS answers must agree with Slidebank's /dicomweb answers: the attributes,
// the transfer syntax and the frames' bytes. OrthancWSIDicomizer (orthanc-wsi), converting the same
// SVS, is the reference for the geometry: level sizes, tile size, frames, pixel spacing, photometric
// interpretation and transfer syntax of the JPEG levels.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import { createDicomExportService } from '../../server/dicom/export/index.js';
import type { JsonDataset } from '../../server/dicom/web/index.js';
import { MPP } from '../../server/wsi/generate/make-slide.js';
import { createIngestService } from '../../server/ingest/create.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { fixture, fixturesProblem } from '../support/fixtures.js';
import { memoryLogger } from '../support/logs.js';
import { parseMultipart } from '../support/multipart.js';
import { dicomize, dicomizerProblem, orthancProblem, startOrthanc, type Orthanc } from '../support/orthanc.js';
import { testNeeding } from '../support/requirements.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const OCTETS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*';
const WSM_SOP_CLASS = '1.2.840.10008.5.1.4.1.1.77.1.6';
/** Attributes of each instance that the two servers must answer alike. */
const INSTANCE_ATTRIBUTES = ['00080016', '00080018', '00080008', '00200013', '00280002', '00280004', '00280008', '00280010', '00280011', '00280100', '00480006', '00480007', '00209311'];

const value = (dataset: JsonDataset | undefined, tag: string) => dataset?.[tag]?.Value?.[0];
/** Pixel Spacing (row, column; mm) from the Shared Functional Groups' Pixel Measures. */
const pixelSpacing = (dataset: JsonDataset) => ((value(value(dataset, '52009229') as JsonDataset, '00289110') as JsonDataset | undefined)?.['00280030']?.Value ?? []) as number[];

async function json<T>(answer: Response, what: string): Promise<T> {
  if (!answer.ok) throw new Error(`${what}: ${answer.status} ${await answer.text()}`);
  return (await answer.json()) as T;
}

async function frameParts(answer: Response | { status: number; headers: Headers; body: Buffer }, what: string) {
  const body = answer instanceof Response ? Buffer.from(await answer.arrayBuffer()) : answer.body;
  if (answer.status !== 200) throw new Error(`${what}: ${answer.status} ${body.toString().slice(0, 300)}`);
  return parseMultipart(answer.headers.get('content-type')!, body);
}

/** The transfer syntax a part's Content-Type names. */
const partSyntax = (part: { headers: Record<string, string> }) => /transfer-syntax=([\d.]+)/.exec(part.headers['content-type'] ?? '')?.[1];

/**
 * The same series in Orthanc and in Slidebank: QIDO-RS at each level, the
 * WADO-RS metadata of every instance, and frames (the first, second and last
 * of each instance, several per request) byte for byte.
 */
async function crossCheck(t: ExecutionContext, orthanc: Orthanc, client: Client, study: string, series: string, what: string): Promise<JsonDataset[]> {
  const studyQuery = `StudyInstanceUID=${study}&includefield=00201206&includefield=00201208`;
  const [theirStudies, ourStudies] = [await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies?${studyQuery}`), 'Orthanc studies'), (await client.get<JsonDataset[]>(`/dicomweb/studies?${studyQuery}`)).body];
  t.is(theirStudies.length, 1, `${what}: Orthanc holds the study`);
  t.is(ourStudies.length, 1);
  for (const tag of ['0020000D', '00080061', '00201206', '00201208', '00100010', '00100020']) t.deepEqual(ourStudies[0]![tag], theirStudies[0]![tag], `${what}: study attribute ${tag}`);

  const seriesQuery = `includefield=00201209`;
  const theirSeries = await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${study}/series?${seriesQuery}`), 'Orthanc series');
  const ourSeries = (await client.get<JsonDataset[]>(`/dicomweb/studies/${study}/series?${seriesQuery}`)).body;
  t.deepEqual(ourSeries.map((s) => ['0020000E', '00080060', '00201209'].map((tag) => s[tag])), theirSeries.map((s) => ['0020000E', '00080060', '00201209'].map((tag) => s[tag])), `${what}: series`);

  const instanceQuery = INSTANCE_ATTRIBUTES.map((tag) => `includefield=${tag}`).join('&');
  const byNumber = (a: JsonDataset, b: JsonDataset) => Number(value(a, '00200013')) - Number(value(b, '00200013'));
  const theirInstances = (await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${study}/series/${series}/instances?${instanceQuery}`), 'Orthanc instances')).sort(byNumber);
  const ourInstances = (await client.get<JsonDataset[]>(`/dicomweb/studies/${study}/series/${series}/instances?${instanceQuery}`)).body.sort(byNumber);
  t.is(ourInstances.length, theirInstances.length, `${what}: as many instances`);
  for (const [i, ours] of ourInstances.entries()) {
    for (const tag of INSTANCE_ATTRIBUTES) t.deepEqual(ours[tag], theirInstances[i]![tag], `${what}: QIDO instance ${i + 1}, ${tag}`);
  }

  // WADO-RS metadata, instance by instance.
  const theirMetadata = await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${study}/series/${series}/metadata`), 'Orthanc metadata');
  const ourMetadata = (await client.get<JsonDataset[]>(`/dicomweb/studies/${study}/series/${series}/metadata`)).body;
  t.is(ourMetadata.length, theirMetadata.length);
  const theirs = new Map(theirMetadata.map((d) => [value(d, '00080018') as string, d]));
  for (const ours of ourMetadata) {
    const sop = value(ours, '00080018') as string;
    const their = theirs.get(sop);
    t.truthy(their, `${what}: Orthanc has instance ${sop}`);
    for (const tag of [...INSTANCE_ATTRIBUTES, '00480001', '00480002', '00480003', '00480302', '00480303']) t.deepEqual(ours[tag], their?.[tag], `${what}: metadata of ${sop}, ${tag}`);
    t.deepEqual(pixelSpacing(ours), pixelSpacing(their!), `${what}: pixel spacing of ${sop}`);
    t.true(pixelSpacing(ours).length === 2);
    t.is(value(ours, '00080016'), WSM_SOP_CLASS);

    // Frames: the first, second and last, in one request, as each server holds them.
    const count = Number(value(ours, '00280008') ?? 1);
    const asked = [...new Set([count, 1, 2].filter((f) => f <= count))];
    const theirParts = await frameParts(await orthanc.get(`/dicom-web/studies/${study}/series/${series}/instances/${sop}/frames/${asked.join(',')}`, OCTETS), 'Orthanc frames');
    const ourParts = await frameParts(await client.get<Buffer>(`/dicomweb/studies/${study}/series/${series}/instances/${sop}/frames/${asked.join(',')}`, { headers: { accept: OCTETS } }), 'Slidebank frames');
    t.is(ourParts.length, asked.length);
    t.is(theirParts.length, asked.length);
    for (const [i, frame] of asked.entries()) {
      t.is(partSyntax(ourParts[i]!), value(ours, '00083002') as string, `${what}: our part's transfer syntax is the instance's`);
      t.is(partSyntax(ourParts[i]!), partSyntax(theirParts[i]!), `${what}: ${sop} frame ${frame}: the same transfer syntax`);
      const [a, b] = [ourParts[i]!.body, theirParts[i]!.body];
      // A frame item is padded to an even length with one zero byte after EOI (PS3.5 A.4); a server may answer it with or without.
      const [short, long] = a.length <= b.length ? [a, b] : [b, a];
      t.true(long.subarray(0, short.length).equals(short) && (long.length === short.length || (long.length === short.length + 1 && long.at(-1) === 0)), `${what}: ${sop} frame ${frame}: the same bytes (${a.length} and ${b.length})`);
    }
  }
  return ourMetadata;
}

testNeeding(
  [orthancProblem, dicomizerProblem],
  `DICOMweb of a slide file agrees with Orthanc's answers for its exported instances, and its geometry with OrthancWSIDicomizer's conversion of the same SVS (${testDialect})`,
  async (t) => {
    const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-orthanc-'));
    t.teardown(() => rm(data, { recursive: true, force: true }));
    const [app, orthanc] = await Promise.all([startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } }), startOrthanc(t)]);
    const size = { width: 2300, height: 1500 };
    const made = await makeSlide({ ...size, tileSize: 256, levels: 2, seed: 12, out: path.join(data, 'made') });
    const slide = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-ORTHANC');
    await app.database.db.knex('slides').where({ id: slide.id }).update({ sha256: createHash('sha256').update(await readFile(made.svs)).digest('hex') });
    const { result } = await createDicomExportService(app.config, app.database.db).exportSlide(slide.id, path.join(data, 'export'));
    for (const instance of result.instances) await orthanc.store(instance.file);
    const { session } = await signedIn(app, { level: 'L1' });

    const ours = await crossCheck(t, orthanc, session, result.studyInstanceUid, result.seriesInstanceUid, 'exported slide file');
    t.is(ours.length, result.instances.length);

    // OrthancWSIDicomizer's conversion of the same SVS (one instance per level). It does not read the slide's MPP but takes the
    // physical size from its options, measured along the slide's axes, which Image Orientation (Slide) 0\-1\0\-1\0\0 turns
    // by 90° against the image's: the imaged width is divided by the rows, the height by the columns.
    const mm = (pixels: number) => String((pixels * MPP) / 1000);
    const files = await dicomize(made.svs, path.join(data, 'dicomizer'), [`--imaged-width=${mm(size.height)}`, `--imaged-height=${mm(size.width)}`, '--max-size=0']);
    const ids = await Promise.all(files.map((f) => orthanc.store(f)));
    t.true(ids.length > 0);
    const studies = await json<JsonDataset[]>(await orthanc.get('/dicom-web/studies'), 'Orthanc studies');
    const reference = studies.map((s) => value(s, '0020000D') as string).find((uid) => uid !== result.studyInstanceUid)!;
    const referenceSeries = await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${reference}/series`), 'Orthanc series');
    const converted = await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${reference}/series/${value(referenceSeries[0], '0020000E') as string}/metadata`), 'Orthanc metadata');
    const bySize = (a: JsonDataset, b: JsonDataset) => Number(value(b, '00480006')) - Number(value(a, '00480006'));
    const levels = ours.filter((d) => (d['00080008']?.Value ?? [])[2] === 'VOLUME').sort(bySize);
    // The dicomizer writes the pyramid's levels only, without Image Type.
    const theirLevels = [...converted].sort(bySize);
    const geometry = (d: JsonDataset) => ['00480006', '00480007', '00280011', '00280010', '00280008', '00280004', '00280002', '00280100'].map((tag) => value(d, tag));
    t.deepEqual(levels.map(geometry), theirLevels.map(geometry), 'level sizes, tile size, frames, photometric interpretation, samples and bits');
    t.deepEqual(levels.map((d) => value(d, '00083002')), Array.from({ length: levels.length }, () => '1.2.840.10008.1.2.4.50'), 'JPEG Baseline, stored tiles');
    const theirSyntaxes = await Promise.all(
      theirLevels.map(async (d) => {
        const [id] = await json<{ ID: string }[]>(await fetch(`${orthanc.url}/tools/lookup`, { method: 'POST', body: value(d, '00080018') as string }), 'Orthanc lookup');
        return (await orthanc.get(`/instances/${id!.ID}/metadata/TransferSyntax`)).text();
      }),
    );
    t.deepEqual(theirSyntaxes, levels.map((d) => value(d, '00083002')), "the dicomizer's transfer syntax");
    const [row, column] = pixelSpacing(levels[0]!);
    const [theirRow, theirColumn] = pixelSpacing(theirLevels[0]!);
    t.true(Math.abs(row! - theirRow!) < 1e-6 && Math.abs(column! - theirColumn!) < 1e-6, `base level pixel spacing ${row}\\${column} mm, the dicomizer's ${theirRow}\\${theirColumn}`);
    t.is(row, MPP / 1000);
  },
);

testNeeding(
  [orthancProblem, fixturesProblem()],
  `DICOMweb of a slide published as a DICOM series agrees with Orthanc's answers for the published instances (${testDialect})`,
  async (t) => {
    const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dicomweb-orthanc-series-'));
    t.teardown(() => rm(data, { recursive: true, force: true }));
    const [app, orthanc] = await Promise.all([startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } }), startOrthanc(t)]);
    const inbox = path.join(data, 'in');
    await mkdir(inbox, { recursive: true });
    await copyFile(fixture('dicom/google-pipeline/multi_frame_jpeg_camelyon_challenge_image.dcm'), path.join(inbox, 'camelyon.dcm'));
    const row = { file: 'camelyon.dcm', organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };
    await writeFile(path.join(inbox, 'metadata.csv'), stringify([row], { header: true }));
    const { results } = await createIngestService(app.config, app.database.db, memoryLogger().log).ingestFolder(inbox, { source: 'cli' });
    t.is(results[0]?.outcome, 'published', results[0]?.reason ?? '');
    const folder = path.join(app.config.paths.slides, results[0]!.name!);
    for (const name of await readdir(folder)) await orthanc.store(path.join(folder, name));
    const { token } = await signedIn(app, { level: 'L1' });
    const [study] = await json<JsonDataset[]>(await orthanc.get('/dicom-web/studies'), 'Orthanc studies');
    const studyUid = value(study, '0020000D') as string;
    const [series] = await json<JsonDataset[]>(await orthanc.get(`/dicom-web/studies/${studyUid}/series`), 'Orthanc series');
    await crossCheck(t, orthanc, token, studyUid, value(series, '0020000E') as string, 'published series');
  },
);
