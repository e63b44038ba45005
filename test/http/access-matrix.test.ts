import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { thumbnailPath } from '../../server/catalog/thumbnails.js';
import { Client, signedIn, type UserSpec } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';
import type { Requester } from '../../server/access/levels.js';
import { createDatasetsService } from '../../server/datasets/index.js';

/**
 * Who may call what: every protected route against every kind of requester,
 * each with a session and with a personal access token, and the status
 * expected in each cell (docs/domain.md, "Access levels").
 */

const DAY = 86_400_000;

/** The kinds of requester. Curator and pathologist are stored at L0, so that only their role lets them view. */
const PRINCIPALS: Record<string, UserSpec> = {
  L0: { level: 'L0' },
  L1: { level: 'L1' },
  L2: { level: 'L2', levelExpiresAt: new Date(Date.now() + 300 * DAY) },
  L3: { level: 'L3' },
  'expired L2': { level: 'L2', levelExpiresAt: new Date(Date.now() - DAY) },
  admin: { level: 'L1', roles: ['admin'] },
  curator: { level: 'L0', roles: ['curator'] },
  pathologist: { level: 'L0', roles: ['pathologist'] },
};
type Principal = 'anonymous' | keyof typeof PRINCIPALS;

/** A cell: the status, and for refusals the error code. */
type Cell = number | [number, string];

const ok = 200;
const anonymous: Cell = [401, 'unauthenticated'];

/** L1 and up, or any staff role: the catalog, the viewer's tiles, IIIF. */
function viewer(who: Principal): Cell {
  if (who === 'anonymous') return anonymous;
  return who === 'L0' ? [403, 'level_required'] : ok;
}
/** Staff only: label and macro images. */
function staff(who: Principal): Cell {
  if (who === 'anonymous') return anonymous;
  if (who === 'L0') return [403, 'level_required'];
  return ['admin', 'curator', 'pathologist'].includes(who) ? ok : [403, 'staff_only'];
}
/** Administrators only. */
function admin(who: Principal): Cell {
  if (who === 'anonymous') return anonymous;
  return who === 'admin' ? ok : [403, 'role_required'];
}
/** Anybody logged in, whatever the level. */
function signedInOnly(who: Principal): Cell {
  return who === 'anonymous' ? anonymous : ok;
}
/** Any staff role, whatever the level: curators' ingest records. */
function staffRole(who: Principal): Cell {
  if (who === 'anonymous') return anonymous;
  return ['admin', 'curator', 'pathologist'].includes(who) ? ok : [403, 'staff_only'];
}
/** L2 or L3 in force: downloads. Staff roles do not stand in for it, and an expired L2 counts as L1. */
function download(who: Principal): Cell {
  if (who === 'anonymous') return anonymous;
  return who === 'L2' || who === 'L3' ? ok : [403, 'level_required'];
}

interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  body?: unknown;
  expect(who: Principal, via: 'session' | 'token'): Cell;
}

test(`the access matrix: every protected route × every level and role × session and token (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-matrix-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });

  const made = await makeSlide({ width: 1200, height: 900, seed: 5, out: path.join(data, 'made'), tileSize: 240 });
  const slide = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-MATRIX');
  await app.database.db.knex('slides').where({ id: slide.id }).update({ sha256: createHash('sha256').update(await readFile(made.svs)).digest('hex'), annotation_path: made.xml });
  await app.services.agreements.publishVersion({ actorId: null }, { version: '1', title: 'Data use agreement', body: 'Research use only.', requiresReacceptance: false });
  const thumbnail = thumbnailPath(app.config.paths.thumbnails, slide.id, 'small');
  await mkdir(path.dirname(thumbnail), { recursive: true });
  await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 100, b: 150 } } }).jpeg().toFile(thumbnail);

  const clients: { who: Principal; via: 'session' | 'token' | 'none'; client: Client; userId?: number }[] = [
    { who: 'anonymous', via: 'none', client: new Client(app) },
  ];
  for (const [who, spec] of Object.entries(PRINCIPALS)) {
    const { user, session, token } = await signedIn(app, spec);
    clients.push({ who, via: 'session', client: session, userId: user.id }, { who, via: 'token', client: token, userId: user.id });
  }
  const target = clients.find((c) => c.who === 'L1')!.userId!;

  // A challenge on two releases of one slide each (the test release's slide made here), with an open phase (test/http/challenges.test.ts covers what they do).
  const testMade = await makeSlide({ width: 1200, height: 900, seed: 6, out: path.join(data, 'made-test'), tileSize: 240 });
  const testSlide = await registerSlide(app.database.db, testMade.svs, 'SB1-LV-HCC-HE-MATRIXTEST');
  await app.database.db.knex('slides').where({ id: testSlide.id }).update({ sha256: createHash('sha256').update(await readFile(testMade.svs)).digest('hex'), annotation_path: testMade.xml });
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('matrix-train');
  await datasets.add('matrix-train', { slides: [slide.id] });
  await datasets.release('matrix-train', '1', 'matrix');
  await datasets.create('matrix-test');
  await datasets.add('matrix-test', { slides: [testSlide.id] });
  await datasets.release('matrix-test', '1', 'matrix');
  const operator = { requester: { user: null, level: 'L0', roles: ['admin'], via: 'anonymous' } as unknown as Requester, ip: null };
  await app.services.challenges.create({ name: 'matrix', task: 'segmentation', train: 'matrix-train@1', test: 'matrix-test@1', dailyLimit: 1000 }, operator);
  await app.services.challenges.savePhase('matrix', 'test', { opensAt: new Date(Date.now() - DAY), closesAt: new Date(Date.now() + DAY), slides: null, dailyLimit: null, leaderboard: 'public' }, operator);
  const founder = await signedIn(app, { level: 'L1' });
  const founderActor = { requester: { user: founder.user, level: 'L1', roles: [], via: 'session' } as unknown as Requester, ip: null };
  await app.services.challenges.join('matrix', 1, founderActor);
  await app.services.challenges.createTeam('matrix', 'matrix team', founderActor);
  /** L1 and up or staff, after joining the challenge (each client joins before its row is tried). */
  const participant = viewer;

  // DICOMweb names the slide by the UIDs the export gives it.
  const dicom = app.services.dicomweb.uidsOf((await app.database.db.knex('slides').where({ id: slide.id }).first<{ id: number; sha256: string; file_size: number }>('id', 'sha256', 'file_size').then((row) => ({ id: Number(row!.id), sha256: row!.sha256, fileSize: Number(row!.file_size) }))));
  const dicomSeries = `/dicomweb/studies/${dicom.study}/series/${dicom.series}`;

  const routes: Route[] = [
    { method: 'GET', path: `/tiles/${slide.id}.dzi`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}_files/0/0_0.jpeg`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}_files/11/1_1.jpeg`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}/thumbnail`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}/label`, expect: staff },
    { method: 'GET', path: `/tiles/${slide.id}/macro`, expect: staff },
    { method: 'GET', path: `/iiif/${slide.id}/info.json`, expect: viewer },
    { method: 'GET', path: `/iiif/${slide.id}/full/64,/0/default.jpg`, expect: viewer },
    { method: 'GET', path: `/api/slides/${slide.id}/tile-capability`, expect: viewer },
    { method: 'GET', path: '/dicomweb/studies', expect: viewer },
    { method: 'GET', path: '/dicomweb/series', expect: viewer },
    { method: 'GET', path: `/dicomweb/instances?SOPInstanceUID=${dicom.instance(1)}`, expect: viewer },
    { method: 'GET', path: `/dicomweb/studies/${dicom.study}/series`, expect: viewer },
    { method: 'GET', path: `/dicomweb/studies/${dicom.study}/instances?SOPInstanceUID=${dicom.instance(1)}`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/instances?SOPInstanceUID=${dicom.instance(1)}`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/metadata`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/instances/${dicom.instance(1)}/metadata`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/instances/${dicom.instance(1)}/frames/1,2`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/instances/${dicom.instance(1)}/frames/1/rendered`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/instances/${dicom.instance(1)}/bulkdata/00480105.0.00282000`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/rendered`, expect: viewer },
    { method: 'GET', path: `${dicomSeries}/thumbnail`, expect: viewer },
    { method: 'GET', path: `/dicomweb/studies/${dicom.study}/thumbnail`, expect: viewer },
    { method: 'GET', path: '/api/slides', expect: viewer },
    { method: 'GET', path: '/api/slides/summary', expect: viewer },
    { method: 'GET', path: `/api/slides/${slide.id}`, expect: viewer },
    { method: 'GET', path: `/api/slides/${slide.id}/thumbnail`, expect: viewer },
    { method: 'GET', path: `/api/slides/${slide.id}/files/slide`, expect: download },
    { method: 'GET', path: `/api/downloads/manifest?slides=${slide.id}`, expect: download },
    { method: 'GET', path: '/api/dua/current', expect: () => ok },
    { method: 'GET', path: '/api/dua/applications', expect: signedInOnly },
    { method: 'GET', path: '/api/dua/reports', expect: signedInOnly },
    { method: 'GET', path: '/api/admin/dua/applications', expect: admin },
    { method: 'GET', path: '/api/admin/dua/reports', expect: admin },
    { method: 'GET', path: '/api/admin/institutions', expect: admin },
    { method: 'GET', path: '/api/admin/audit', expect: admin },
    { method: 'GET', path: '/api/admin/jobs', expect: admin },
    { method: 'GET', path: `/tiles/${slide.id}/overlays`, expect: viewer },
    { method: 'GET', path: `/api/slides/${slide.id}/annotation.geojson`, expect: viewer },
    { method: 'GET', path: '/api/admin/pages', expect: admin },
    { method: 'GET', path: '/api/ingest/records', expect: staffRole },
    { method: 'GET', path: '/api/news', expect: () => ok },
    { method: 'GET', path: '/api/guide', expect: () => ok },
    { method: 'GET', path: '/api/admin/users', expect: admin },
    { method: 'GET', path: `/api/admin/users/${target}`, expect: admin },
    // Setting the level it already has: allowed or not, it changes nothing.
    { method: 'PUT', path: `/api/admin/users/${target}/level`, body: { level: 'L1' }, expect: admin },
    { method: 'GET', path: '/api/tokens', expect: signedInOnly },
    {
      method: 'POST',
      path: '/api/tokens',
      body: { name: 'matrix' },
      // A token cannot make tokens: that needs a logged-in session.
      expect: (who, via) => (who === 'anonymous' ? anonymous : via === 'token' ? [403, 'session_required'] : 201),
    },
    { method: 'GET', path: '/api/account', expect: signedInOnly },
    { method: 'PATCH', path: '/api/account', body: { institution: 'Test Hospital' }, expect: signedInOnly },
    // Nobody logged in is an answer too (null); a bad token is a 401 (tokens.test.ts).
    { method: 'GET', path: '/api/auth/me', expect: () => ok },
    { method: 'GET', path: '/api/challenges', expect: viewer },
    { method: 'GET', path: '/api/challenges/matrix', expect: viewer },
    { method: 'POST', path: '/api/challenges/matrix/join', body: { rulesVersion: 1 }, expect: participant },
    { method: 'GET', path: '/api/challenges/matrix/submissions', expect: participant },
    { method: 'GET', path: '/api/challenges/matrix/leaderboard', expect: participant },
    { method: 'GET', path: `/api/challenges/matrix/files/${slide.id}/annotation`, expect: participant },
    // The routes are reached and refuse what this state cannot do: the team's name is taken, the requester has no team.
    { method: 'POST', path: '/api/challenges/matrix/team', body: { name: 'matrix team' }, expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [409, 'team_name_taken']) },
    { method: 'POST', path: '/api/challenges/matrix/team/invitations', body: { email: 'nobody@hospital.example' }, expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [409, 'no_team']) },
    { method: 'POST', path: '/api/challenges/matrix/team/leave', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [409, 'no_team']) },
    // Joined but not invited: the route is reached, the invitation is not there.
    { method: 'POST', path: '/api/challenges/matrix/teams/1/accept', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [404, 'invitation_not_found']) },
    // An empty body: the route is reached and refuses it.
    { method: 'POST', path: '/api/challenges/matrix/submissions', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [415, 'unsupported_archive']) },
    // Resumable uploads: reached, and refused for what this state cannot do: a size over the limit (nothing is made), an upload that is not the requester's, a chunk without its range.
    { method: 'POST', path: '/api/challenges/matrix/uploads', body: { fileName: 'predictions.zip', size: 3 * 1024 ** 3 }, expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [413, 'submission_too_large']) },
    { method: 'GET', path: '/api/challenges/matrix/uploads/0123456789abcdef01234567', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [404, 'upload_not_found']) },
    { method: 'PUT', path: '/api/challenges/matrix/uploads/0123456789abcdef01234567', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [400, 'invalid_content_range']) },
    { method: 'DELETE', path: '/api/challenges/matrix/uploads/0123456789abcdef01234567', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [404, 'upload_not_found']) },
    { method: 'POST', path: '/api/challenges/matrix/submissions?upload=0123456789abcdef01234567', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [404, 'upload_not_found']) },
    { method: 'GET', path: '/api/challenges/matrix/submissions/999', expect: (who) => (who === 'anonymous' ? anonymous : who === 'L0' ? [403, 'level_required'] : [404, 'submission_not_found']) },
    { method: 'PATCH', path: '/api/admin/challenges/matrix', body: { description: 'The matrix challenge' }, expect: admin },
    {
      method: 'PUT',
      path: '/api/admin/challenges/matrix/phases/test',
      body: { opensAt: new Date(Date.now() - DAY).toISOString(), closesAt: new Date(Date.now() + DAY).toISOString() },
      expect: admin,
    },
    { method: 'POST', path: '/api/admin/challenges/matrix/rescore', body: {}, expect: admin },
    { method: 'POST', path: '/api/admin/challenges', body: { name: 'matrix', task: 'segmentation', train: 'matrix-train@1', test: 'matrix-test@1' }, expect: (who) => (who === 'admin' ? [409, 'challenge_exists'] : admin(who)) },
    // Last: publishing the truth happens once; the second administrator's call finds it published.
    { method: 'POST', path: '/api/admin/challenges/matrix/publish-truth', expect: (who, via) => (who === 'admin' ? (via === 'session' ? ok : [409, 'truth_published']) : admin(who)) },
    { method: 'GET', path: '/healthz', expect: () => ok },
  ];

  const table: string[] = [];
  const mismatches: string[] = [];
  for (const route of routes) {
    const row: string[] = [];
    for (const { who, via, client } of clients) {
      const expected = route.expect(who, via === 'none' ? 'session' : via);
      const [status, code] = typeof expected === 'number' ? [expected, undefined] : expected;
      const answer = await client.request<{ error?: { code: string } }>(route.method, route.path, route.body === undefined ? {} : { body: route.body });
      const gotCode = answer.status >= 400 ? (answer.body as { error?: { code: string } }).error?.code : undefined;
      row.push(`${who}/${via}=${answer.status}`);
      if (answer.status !== status || (code !== undefined && gotCode !== code)) {
        mismatches.push(`${route.method} ${route.path} as ${who} (${via}): expected ${status}${code ? ` ${code}` : ''}, got ${answer.status}${gotCode ? ` ${gotCode}` : ''}`);
      }
    }
    table.push(`${route.method} ${route.path}: ${row.join(' ')}`);
  }
  t.is(clients.length, 1 + 2 * Object.keys(PRINCIPALS).length);
  t.deepEqual(mismatches, [], table.join('\n'));
});
