// The slide's own answer names the study and series DICOMweb serves it under, and links to the configured DICOMweb viewer.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { JsonDataset } from '../../server/dicom/web/index.js';
import { signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const VIEWER = 'https://slim.hospital.example/studies/{study}/series/{series}?server={dicomweb}';

interface SlideDetail {
  id: number;
  dicomweb: { studyInstanceUid: string; seriesInstanceUid: string; viewerUrl: string | null } | null;
}

async function appWithSlide(t: ExecutionContext, env: Record<string, string>) {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-slide-dicomweb-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data, ...env } });
  const made = await makeSlide({ width: 1000, height: 700, tileSize: 256, levels: 2, seed: 5, out: path.join(data, 'made') });
  const slide = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-VIEWER');
  return { app, slide };
}

test(`GET /api/slides/{id}: the study and series DICOMweb serves, and the viewer link filled in with them and the DICOMweb root (${testDialect})`, async (t) => {
  const { app, slide } = await appWithSlide(t, { SLIDEBANK_DICOM_VIEWER_URL: VIEWER });
  const { session } = await signedIn(app, { level: 'L1' });
  const answer = await session.get<SlideDetail>(`/api/slides/${slide.id}`);
  t.is(answer.status, 200);
  const series = (await session.get<JsonDataset[]>('/dicomweb/series')).body;
  t.is(series.length, 1);
  const study = series[0]!['0020000D']!.Value![0] as string;
  const seriesUid = series[0]!['0020000E']!.Value![0] as string;
  t.deepEqual(answer.body.dicomweb, {
    studyInstanceUid: study,
    seriesInstanceUid: seriesUid,
    viewerUrl: `https://slim.hospital.example/studies/${study}/series/${seriesUid}?server=${encodeURIComponent(app.url('/dicomweb'))}`,
  });
  // The study the link names is there to be opened.
  t.is((await session.get(`/dicomweb/studies/${study}/series/${seriesUid}/metadata`)).status, 200);
  // The search lists slides without it.
  const page = await session.get<{ items: Record<string, unknown>[] }>('/api/slides');
  t.false('dicomweb' in page.body.items[0]!);
});

test(`GET /api/slides/{id}: no viewer configured, no link; nobody below L1 gets the slide at all (${testDialect})`, async (t) => {
  const { app, slide } = await appWithSlide(t, {});
  t.is(app.config.dicom.viewerUrl, '');
  const { session } = await signedIn(app, { level: 'L1' });
  const answer = await session.get<SlideDetail>(`/api/slides/${slide.id}`);
  t.is(answer.status, 200);
  t.is(answer.body.dicomweb?.viewerUrl, null);
  t.regex(answer.body.dicomweb!.studyInstanceUid, /^2\.25\.\d+$/);
  const { session: unconfirmed } = await signedIn(app, { level: 'L0' });
  t.is((await unconfirmed.get(`/api/slides/${slide.id}`)).status, 403);
});
