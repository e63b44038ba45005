import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { parseAperioXml, toGeoJson } from '../../server/annotations/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { makeSlide } from '../support/slides.js';
import { viewerFetch } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

/** `GET /api/slides/:id/annotation.geojson`: the viewer's overlay, from the scrubbed XML in the slide store. */

test(`a published slide's annotation as GeoJSON in level-0 pixels; 401 anonymous, 404 without annotation or slide (${testDialect})`, async (t) => {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-annotations-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: data } });
  const inbox = path.join(data, 'in');
  await makeSlide({ width: 1600, height: 1200, seed: 5, out: inbox, name: 'case-a', tileSize: 240 });
  await rm(path.join(inbox, 'case-a.truth.json'));
  const fallback = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'a' };
  const [published] = (await createIngestService(app.config, app.database.db, memoryLogger('warn').log).ingestFolder(inbox, { source: 'cli', fallback })).results;
  t.is(published?.outcome, 'published', published?.reason ?? '');
  const id = published!.slideId!;
  const url = `/api/slides/${id}/annotation.geojson`;

  t.is((await fetch(app.url(url))).status, 401);
  const response = await viewerFetch(app, url);
  t.is(response.status, 200);
  t.regex(response.headers.get('content-type') ?? '', /^application\/geo\+json/);
  const body = (await response.json()) as ReturnType<typeof toGeoJson>;
  t.is(body.type, 'FeatureCollection');
  t.true(body.features.length > 0);

  // The same as converting the stored (scrubbed) file directly.
  const { annotation_path: stored } = (await app.database.db.knex('slides').where({ id }).first('annotation_path')) as { annotation_path: string };
  const file = path.isAbsolute(stored) ? stored : path.join(app.config.paths.slides, stored);
  t.deepEqual(body, JSON.parse(JSON.stringify(toGeoJson(parseAperioXml(await readFile(file, 'utf8'))))));
  for (const feature of body.features) {
    t.regex(feature.properties.colour, /^#[0-9a-f]{6}$/i);
    const points = feature.geometry.type === 'Polygon' ? feature.geometry.coordinates.flat() : feature.geometry.coordinates;
    for (const [x, y] of points) t.true(x >= -1 && x <= 1601 && y >= -1 && y <= 1201, `${x},${y} lies on the slide`);
  }

  await app.database.db.knex('slides').where({ id }).update({ annotation_path: null });
  const none = await viewerFetch(app, url);
  t.is(none.status, 404);
  t.like(await none.json(), { error: { code: 'annotation_not_found' } });
  const missing = await viewerFetch(app, '/api/slides/999999/annotation.geojson');
  t.is(missing.status, 404);
  t.like(await missing.json(), { error: { code: 'slide_not_found' } });
});
