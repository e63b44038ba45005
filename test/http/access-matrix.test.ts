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
  method: 'GET' | 'POST' | 'PUT' | 'PATCH';
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

  const routes: Route[] = [
    { method: 'GET', path: `/tiles/${slide.id}.dzi`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}_files/0/0_0.jpeg`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}_files/11/1_1.jpeg`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}/thumbnail`, expect: viewer },
    { method: 'GET', path: `/tiles/${slide.id}/label`, expect: staff },
    { method: 'GET', path: `/tiles/${slide.id}/macro`, expect: staff },
    { method: 'GET', path: `/iiif/${slide.id}/info.json`, expect: viewer },
    { method: 'GET', path: `/iiif/${slide.id}/full/64,/0/default.jpg`, expect: viewer },
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
