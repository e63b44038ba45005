import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { TileCapabilities } from '../../server/access/tile-capability.js';
import { loadConfig } from '../../server/config/index.js';
import { toDbTime } from '../../server/db/index.js';
import { FatalError } from '../../server/errors.js';
import { packageRoot } from '../../server/package-info.js';
import { Client, createUser, logIn, signedIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/**
 * Tile capabilities (GET /api/slides/{id}/tile-capability): tile URLs that
 * carry one are admitted by it alone, without a database query; everything
 * wrong with one is refused with its own code; and revocation waits at most
 * for its expiry.
 */

interface Capability {
  slide: number;
  capability: string;
  parameter: string;
  expiresAt: string;
  lifetimeSeconds: number;
}
type ErrorBody = { error: { code: string; message: string } };

async function setUp(t: ExecutionContext) {
  const app = await startTestApp(t);
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-capability-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const made = await makeSlide({ width: 1200, height: 900, seed: 6, out: path.join(work, 'a'), tileSize: 240 });
  const other = await makeSlide({ width: 800, height: 600, seed: 7, out: path.join(work, 'b'), tileSize: 240 });
  const slide = await registerSlide(app.database.db, made.svs, 'SB1-LV-HCC-HE-CAPABILITY');
  const otherSlide = await registerSlide(app.database.db, other.svs, 'SB1-LV-HCC-HE-CAPABILITY2');
  const viewer = await signedIn(app, { level: 'L1' });
  return { app, slide, otherSlide, viewer };
}

async function capabilityOf(client: Client, slideId: number): Promise<Capability> {
  const answer = await client.get<Capability>(`/api/slides/${slideId}/tile-capability`);
  if (answer.status !== 200) throw new Error(`capability of slide ${slideId}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body;
}

const withCap = (pathname: string, capability: string) => `${pathname}?cap=${encodeURIComponent(capability)}`;

function sessionId(client: Client): string {
  const id = client.cookies.get('slidebank.sid');
  if (!id) throw new Error('the client has no session cookie');
  return id;
}

/** Counts the database queries the app makes while `work` runs. */
async function queriesDuring(app: TestApp, work: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const listen = (query: { sql: string }) => seen.push(query.sql);
  app.database.db.knex.on('query', listen);
  try {
    await work();
  } finally {
    app.database.db.knex.off('query', listen);
  }
  return seen;
}

test('a viewer gets a capability for a slide, bound to the session, and its tiles, descriptor, thumbnail and IIIF images answer with it', async (t) => {
  const { app, slide, viewer } = await setUp(t);
  const before = Date.now();
  const issued = await capabilityOf(viewer.session, slide.id);
  t.is(issued.slide, slide.id);
  t.is(issued.parameter, 'cap');
  t.is(issued.lifetimeSeconds, app.config.tiles.capabilityMinutes * 60);
  const expires = Date.parse(issued.expiresAt);
  t.true(expires > before && expires <= Date.now() + issued.lifetimeSeconds * 1000, issued.expiresAt);
  const answer = await viewer.session.get(`/api/slides/${slide.id}/tile-capability`);
  t.is(answer.headers.get('cache-control'), 'no-store');

  const tile = `/tiles/${slide.id}_files/11/1_1.jpeg`;
  const plain = await viewer.session.get<Buffer>(tile);
  const capable = await viewer.session.get<Buffer>(withCap(tile, issued.capability));
  t.is(capable.status, 200);
  t.is(capable.headers.get('content-type'), 'image/jpeg');
  t.true(capable.body.equals(plain.body), 'the same tile either way');
  t.is(capable.headers.get('etag'), plain.headers.get('etag'));
  t.is(capable.headers.get('cache-control'), 'private, max-age=31536000, immutable');
  // The security headers are on tiles answered by capability too.
  t.is(capable.headers.get('x-content-type-options'), 'nosniff');
  t.truthy(capable.headers.get('content-security-policy'));

  const dzi = await viewer.session.get<Buffer>(withCap(`/tiles/${slide.id}.dzi`, issued.capability));
  t.is(dzi.status, 200);
  t.regex(dzi.body.toString('utf8'), /<Size Height="900" Width="1200"\/>/);
  t.is((await viewer.session.get(withCap(`/tiles/${slide.id}/thumbnail`, issued.capability))).status, 200);
  t.is((await viewer.session.get(withCap(`/iiif/${slide.id}/full/64,/0/default.jpg`, issued.capability))).status, 200);
  t.is((await viewer.session.get(withCap(`/iiif/${slide.id}/info.json`, issued.capability))).status, 200);
  // A capability grants viewing, no role: the label stays for staff.
  const label = await viewer.session.get<ErrorBody>(withCap(`/tiles/${slide.id}/label`, issued.capability));
  t.is(label.status, 403);
  t.is(label.body.error.code, 'staff_only');
  // Conditional requests work as without one.
  const again = await viewer.session.get(withCap(tile, issued.capability), { headers: { 'If-None-Match': capable.headers.get('etag')! } });
  t.is(again.status, 304);
});

test('tile requests with a capability make no database query; the same requests through the session do', async (t) => {
  const { app, slide, viewer } = await setUp(t);
  const { capability } = await capabilityOf(viewer.session, slide.id);
  // The first request opens the slide and reads its catalog row once.
  t.is((await viewer.session.get(withCap(`/tiles/${slide.id}_files/11/0_0.jpeg`, capability))).status, 200);

  const paths = [`/tiles/${slide.id}.dzi`, `/tiles/${slide.id}_files/11/0_0.jpeg`, `/tiles/${slide.id}_files/11/1_1.jpeg`, `/tiles/${slide.id}_files/11/4_3.jpeg`, `/tiles/${slide.id}_files/10/1_1.jpeg`, `/tiles/${slide.id}_files/9/0_0.jpeg`];
  const statuses: number[] = [];
  const withCapability = await queriesDuring(app, async () => {
    for (const pathname of paths) statuses.push((await viewer.session.get(withCap(pathname, capability))).status);
  });
  t.deepEqual(statuses, paths.map(() => 200));
  t.deepEqual(withCapability, [], 'no query for tiles with a capability');

  const throughSession = await queriesDuring(app, async () => {
    for (const pathname of paths) t.is((await viewer.session.get(pathname)).status, 200);
  });
  t.true(throughSession.length >= paths.length, `the session and the user are read for each tile without one (${throughSession.length} queries)`);
});

test('a tampered, malformed, expired or over-long capability is refused with its own error', async (t) => {
  const { app, slide, viewer } = await setUp(t);
  const { capability } = await capabilityOf(viewer.session, slide.id);
  const tile = `/tiles/${slide.id}_files/11/1_1.jpeg`;
  const refusal = async (cap: string, client: Client = viewer.session) => {
    const answer = await client.get<ErrorBody>(withCap(tile, cap));
    return [answer.status, answer.body.error?.code];
  };

  // One character of the signature changed.
  const last = capability.at(-1) === 'A' ? 'B' : 'A';
  t.deepEqual(await refusal(`${capability.slice(0, -1)}${last}`), [403, 'capability_invalid']);
  // Another user id, or a later expiry, with the signature kept.
  const [version, userId, slideId, expires, mac] = capability.split('.');
  t.deepEqual(await refusal([version, Number(userId) + 1, slideId, expires, mac].join('.')), [403, 'capability_invalid']);
  t.deepEqual(await refusal([version, userId, slideId, Number(expires) + 60, mac].join('.')), [403, 'capability_invalid']);
  t.deepEqual(await refusal('not-a-capability'), [403, 'capability_invalid']);
  t.deepEqual(await refusal(''), [403, 'capability_invalid']);

  const capabilities = app.services.access.tileCapabilities;
  const binding = { kind: 'session' as const, secret: sessionId(viewer.session) };
  // Issued one lifetime and a minute ago: expired a minute ago.
  const expired = capabilities.issue(viewer.user.id, slide.id, binding, Date.now() - (capabilities.lifetimeSeconds + 60) * 1000);
  const answer = await viewer.session.get<ErrorBody>(withCap(tile, expired.capability));
  t.is(answer.status, 401);
  t.is(answer.body.error.code, 'capability_expired');
  t.regex(answer.body.error.message, /expired at .* get a new one from GET \/api\/slides\/\d+\/tile-capability/);

  // Signed with the right key but for longer than tiles.capabilityMinutes allows now: refused as expired.
  const longer = new TileCapabilities(app.services.access.sessionKeys, 60 * 60).issue(viewer.user.id, slide.id, binding);
  t.deepEqual(await refusal(longer.capability), [401, 'capability_expired']);
  // Signed with another secret.
  const foreign = new TileCapabilities(['another secret of at least thirty-two characters'], 60).issue(viewer.user.id, slide.id, binding);
  t.deepEqual(await refusal(foreign.capability), [403, 'capability_invalid']);
});

test('a capability is for its own slide and its own session or token only', async (t) => {
  const { app, slide, otherSlide, viewer } = await setUp(t);
  const { capability } = await capabilityOf(viewer.session, slide.id);

  const wrongSlide = await viewer.session.get<ErrorBody>(withCap(`/tiles/${otherSlide.id}_files/10/0_0.jpeg`, capability));
  t.is(wrongSlide.status, 403);
  t.is(wrongSlide.body.error.code, 'capability_wrong_slide');
  t.regex(wrongSlide.body.error.message, new RegExp(`for slide ${slide.id}, not slide ${otherSlide.id}`));
  t.is((await viewer.session.get<ErrorBody>(withCap(`/iiif/${otherSlide.id}/info.json`, capability))).status, 403);

  // Another user's session: refused, and not answered through that session either.
  const someoneElse = await signedIn(app, { level: 'L1' });
  const otherUser = await someoneElse.session.get<ErrorBody>(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, capability));
  t.is(otherUser.status, 403);
  t.is(otherUser.body.error.code, 'capability_invalid');
  t.regex(otherUser.body.error.message, /issued to another session or token/);
  // No cookie at all: a copied tile URL is worth nothing alone.
  const bare = await new Client(app).get<ErrorBody>(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, capability));
  t.is(bare.status, 403);
  t.is(bare.body.error.code, 'capability_invalid');
  // The same user's token is another credential too.
  t.is((await viewer.token.get<ErrorBody>(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, capability))).status, 403);

  // A token gets a capability of its own, good with that token only.
  const forToken = await capabilityOf(viewer.token, slide.id);
  t.is((await viewer.token.get(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, forToken.capability))).status, 200);
  t.is((await viewer.session.get(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, forToken.capability))).status, 403);
});

test('who may not view a slide gets no capability for it', async (t) => {
  const { app, slide } = await setUp(t);
  const anonymous = await new Client(app).get<ErrorBody>(`/api/slides/${slide.id}/tile-capability`);
  t.is(anonymous.status, 401);
  const unconfirmed = await createUser(app, { level: 'L0' });
  const l0 = await (await logIn(app, unconfirmed.email)).get<ErrorBody>(`/api/slides/${slide.id}/tile-capability`);
  t.is(l0.status, 403);
  t.is(l0.body.error.code, 'level_required');
  const viewer = await signedIn(app, { level: 'L1' });
  const missing = await viewer.session.get<ErrorBody>('/api/slides/999999/tile-capability');
  t.is(missing.status, 404);
  t.is(missing.body.error.code, 'slide_not_found');
});

test('a disabled account keeps a capability issued before only until it expires, and gets no new one', async (t) => {
  const { app, slide, viewer } = await setUp(t);
  const { capability } = await capabilityOf(viewer.session, slide.id);
  const capabilities = app.services.access.tileCapabilities;
  const binding = { kind: 'session' as const, secret: sessionId(viewer.session) };
  const nearlyExpired = capabilities.issue(viewer.user.id, slide.id, binding, Date.now() - (capabilities.lifetimeSeconds - 120) * 1000);
  const lapsed = capabilities.issue(viewer.user.id, slide.id, binding, Date.now() - (capabilities.lifetimeSeconds + 1) * 1000);

  await app.database.db.knex('users').where({ id: viewer.user.id }).update({ disabled_at: toDbTime(new Date()) });

  // Renewal reads the account: refused at once.
  const renewal = await viewer.session.get<ErrorBody>(`/api/slides/${slide.id}/tile-capability`);
  t.is(renewal.status, 401);
  // The session path reads the account: refused at once.
  t.is((await viewer.session.get(`/tiles/${slide.id}_files/11/1_1.jpeg`)).status, 401);
  // A capability issued before is not looked up: it works until it expires (tiles.capabilityMinutes at most), then it is refused.
  t.is((await viewer.session.get(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, capability))).status, 200);
  t.is((await viewer.session.get(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, nearlyExpired.capability))).status, 200);
  const after = await viewer.session.get<ErrorBody>(withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, lapsed.capability));
  t.is(after.status, 401);
  t.is(after.body.error.code, 'capability_expired');
});

test('a withdrawn slide stops answering capabilities at once on the node that withdrew it', async (t) => {
  const { app, slide, viewer } = await setUp(t);
  const { capability } = await capabilityOf(viewer.session, slide.id);
  const tile = withCap(`/tiles/${slide.id}_files/11/1_1.jpeg`, capability);
  t.is((await viewer.session.get(tile)).status, 200);
  const admin = await createUser(app, { level: 'L1', roles: ['admin'] });
  await app.services.slideStatus.withdraw(slide.id, 'consent withdrawn', { actorId: admin.id, ip: null });
  for (const pathname of [tile, withCap(`/tiles/${slide.id}.dzi`, capability), withCap(`/iiif/${slide.id}/info.json`, capability)]) {
    const answer = await viewer.session.get<ErrorBody>(pathname);
    t.is(answer.status, 404, pathname);
    t.is(answer.body.error.code, 'slide_not_found');
  }
  t.is((await viewer.session.get<ErrorBody>(`/api/slides/${slide.id}/tile-capability`)).status, 404);
});

test('tiles.capabilityMinutes is bounded: at most 60', (t) => {
  const load = (minutes: string) => loadConfig({ configDir: path.join(packageRoot, 'config'), env: { SLIDEBANK_TILES_CAPABILITY_MINUTES: minutes } });
  t.is(load('30').config.tiles.capabilityMinutes, 30);
  for (const [minutes, problem] of [['61', /tiles\.capabilityMinutes.*must be at most 60/], ['0', /tiles\.capabilityMinutes.*must be at least 1/]] as const) {
    const error = t.throws(() => load(minutes));
    t.true(error instanceof FatalError);
    t.regex(error!.message, problem);
  }
});
