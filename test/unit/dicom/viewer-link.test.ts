import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../../server/config/index.js';
import { fillViewerUrl, slideDicomwebOf, viewerUrlProblem } from '../../../server/dicom/viewer-link.js';
import { FatalError } from '../../../server/errors.js';
import { packageRoot } from '../../../server/package-info.js';

const UIDS = { study: '2.25.1234', series: '2.25.5678' };

test('Slim: the study and series go into the path', (t) => {
  t.is(fillViewerUrl('https://slim.hospital.example/studies/{study}/series/{series}', { dicomweb: 'https://sb.example/dicomweb', ...UIDS }), 'https://slim.hospital.example/studies/2.25.1234/series/2.25.5678');
});

test('the DICOMweb root is URL-encoded, as a query parameter needs', (t) => {
  t.is(
    fillViewerUrl('https://viewer.example/?url={dicomweb}&StudyInstanceUIDs={study}', { dicomweb: 'https://sb.example:8443/dicomweb', ...UIDS }),
    'https://viewer.example/?url=https%3A%2F%2Fsb.example%3A8443%2Fdicomweb&StudyInstanceUIDs=2.25.1234',
  );
});

test('no viewer configured: the UIDs and no link', (t) => {
  t.deepEqual(slideDicomwebOf('', 'https://sb.example/dicomweb', UIDS), { studyInstanceUid: '2.25.1234', seriesInstanceUid: '2.25.5678', viewerUrl: null });
  t.is(slideDicomwebOf('https://ohif.example/viewer?StudyInstanceUIDs={study}', 'https://sb.example/dicomweb', UIDS).viewerUrl, 'https://ohif.example/viewer?StudyInstanceUIDs=2.25.1234');
});

test('templates that cannot name a slide are refused with the reason', (t) => {
  t.is(viewerUrlProblem(''), undefined);
  t.is(viewerUrlProblem('https://slim.hospital.example/studies/{study}/series/{series}'), undefined);
  t.is(viewerUrlProblem('https://ohif.example/viewer?StudyInstanceUIDs={study}&url={dicomweb}'), undefined);
  t.regex(viewerUrlProblem('https://slim.hospital.example/')!, /must hold \{study\}/);
  t.regex(viewerUrlProblem('https://slim.hospital.example/studies/{study}/series/{seriesUid}')!, /\{seriesUid\} is not a placeholder/);
  t.regex(viewerUrlProblem('slim.hospital.example/studies/{study}')!, /http:\/\/ or https:\/\/ URL/);
  t.regex(viewerUrlProblem('javascript:alert({study})')!, /http:\/\/ or https:\/\//);
});

test('a bad dicom.viewerUrl stops the configuration, naming the key and the variable it came from', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-config-'));
  await writeFile(path.join(dir, 'default.json'), await readFile(path.join(packageRoot, 'config', 'default.json')));
  const error = t.throws(() => loadConfig({ configDir: dir, cwd: dir, env: { SLIDEBANK_DICOM_VIEWER_URL: 'https://slim.hospital.example/studies/' } }));
  t.true(error instanceof FatalError);
  t.regex(error!.message, /dicom\.viewerUrl/);
  t.regex(error!.message, /SLIDEBANK_DICOM_VIEWER_URL/);
  t.regex(error!.message, /must hold \{study\}/);
  const { config } = loadConfig({ configDir: dir, cwd: dir, env: { SLIDEBANK_DICOM_VIEWER_URL: 'https://slim.hospital.example/studies/{study}/series/{series}' } });
  t.is(config.dicom.viewerUrl, 'https://slim.hospital.example/studies/{study}/series/{series}');
});
