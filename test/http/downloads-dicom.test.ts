// POST /api/downloads?format=dicom: a ZIP of each selected slide's DICOM series.
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { createDicomExportService } from '../../server/dicom/export/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { Slide } from '../../server/wsi/index.js';
import { bearerHeaders } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { makeSlide } from '../support/slides.js';

const run = promisify(execFile);

async function eventually<T>(probe: () => T | undefined, what: string, ms = 5000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`${what} did not come within ${ms} ms`);
    await sleep(20);
  }
}

test(`POST /api/downloads?format=dicom: each slide as its DICOM series in dicom/<name>/, what dicom export writes, checked by sha256sum; a bad format is a 400 (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-downloads-dicom-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data, SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' } });
  const inbox = path.join(data, 'in');
  await makeSlide({ width: 1900, height: 1300, seed: 32, out: inbox, name: 'case-dicom', tileSize: 240 });
  await rm(path.join(inbox, 'case-dicom.truth.json'));
  const fallback = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'app' };
  const [published] = (await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback })).results;
  t.is(published?.outcome, 'published', published?.reason ?? '');
  const id = published!.slideId!;
  const name = (await app.database.db.knex('slides').where({ id }).first('name')).name as string;

  const headers = { ...(await bearerHeaders(app, { level: 'L3' })), 'content-type': 'application/json' };
  const response = await fetch(app.url('/api/downloads?format=dicom'), { method: 'POST', headers, body: JSON.stringify({ slides: [id] }) });
  t.is(response.status, 200, await response.clone().text().then((text) => text.slice(0, 300)));
  t.regex(response.headers.get('content-disposition') ?? '', /-1-slides-dicom\.zip"$/);
  const zip = path.join(data, 'bundle.zip');
  await writeFile(zip, Buffer.from(await response.arrayBuffer()));
  const names = (await run('unzip', ['-Z1', zip])).stdout.trim().split('\n');
  t.deepEqual(names.slice(4).sort(), [`annotations/${name}.xml`, `dicom/${name}/level-0.dcm`, `dicom/${name}/thumbnail.dcm`].sort());
  const out = path.join(data, 'unzipped');
  await run('unzip', ['-q', zip, '-d', out]);
  const checked = await run('sha256sum', ['-c', 'manifest-sha256.txt'], { cwd: out });
  t.true(checked.stdout.trim().split('\n').every((line) => line.endsWith(': OK')));
  t.regex(checked.stdout, new RegExp(`dicom/${name}/level-0\\.dcm: OK`));

  // The same files `slidebank dicom export` writes for the slide.
  const alone = path.join(data, 'alone');
  await createDicomExportService(app.config, app.database.db).exportSlide(id, alone);
  for (const file of await readdir(alone)) t.true((await readFile(path.join(out, 'dicom', name, file))).equals(await readFile(path.join(alone, file))), file);
  const series = await Slide.open(path.join(out, 'dicom', name));
  t.deepEqual([series.width, series.height], [1900, 1300]);
  await series.close();
  // The answer's end is recorded, and its scratch folder removed, once the server has sent the last byte.
  const event = await eventually(() => app.audit.of('download.bundle')[0], 'the bundle in the audit log');
  t.like(event.details, { format: 'dicom', slides: 1, complete: true });
  t.deepEqual((await readdir(app.config.paths.cache)).filter((f) => f.startsWith('dicomzip-')), [], 'the scratch folder is gone once the answer ends');

  const bad = await fetch(app.url('/api/downloads?format=png'), { method: 'POST', headers, body: JSON.stringify({ slides: [id] }) });
  t.is(bad.status, 400);
  t.like(((await bad.json()) as { error: { code: string } }).error, { code: 'invalid_query' });
});
