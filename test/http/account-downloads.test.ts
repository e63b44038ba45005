// A user's own download history: GET /api/account/downloads.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test from 'ava';
import type { AuditEvent } from '../../server/audit/audit-log.js';
import { AuditRepository } from '../../server/audit/audit.repository.js';
import { Client, signedIn } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

interface HistoryItem {
  id: number;
  at: string;
  kind: string;
  what: string;
  slideIds: number[];
  size: number | null;
  bytes: number | null;
  complete: boolean | null;
  status: number | null;
  range: string | null;
}
interface History {
  items: HistoryItem[];
  total: number;
  page: number;
  pageSize: number;
}

const tempDirs: string[] = [];
test.after.always(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

/**
 * The test app records audit events in memory (RecordingAudit); the history
 * reads the database's log. The events of real downloads are copied there as
 * the downloads service made them, so the history is tested on their true shape.
 */
async function settledDownloads(app: TestApp, count: number): Promise<AuditEvent[]> {
  for (let waited = 0; waited < 30_000; waited += 50) {
    const events = app.audit.events.filter((e) => e.action.startsWith('download.'));
    if (events.length >= count) return events;
    await sleep(50);
  }
  throw new Error(`expected ${count} download events, have ${app.audit.actions().join(', ')}`);
}

test(`the account lists the caller's own downloads, newest first, paged — and nobody else's (${testDialect})`, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-history-'));
  tempDirs.push(dir);
  const app = await startTestApp(t);
  const { svs } = await makeSlide({ width: 800, height: 600, seed: 21, out: dir, name: 'one' });
  const slide = await registerSlide(app.database.db, svs, 'BR-0007-HE');
  const researcher = await signedIn(app, { level: 'L3' });
  const colleague = await signedIn(app, { level: 'L3' });
  const viewer = await signedIn(app, { level: 'L1' });

  // Three real downloads by the researcher (the whole file, a range, a bundle) and one by a colleague.
  const whole = await researcher.token.get<Buffer>(`/api/slides/${slide.id}/files/slide`);
  t.is(whole.status, 200);
  t.is((await researcher.token.get(`/api/slides/${slide.id}/files/slide`, { headers: { range: 'bytes=0-99' } })).status, 206);
  await settledDownloads(app, 2);
  const bundle = await researcher.token.post('/api/downloads', { slides: [slide.id] });
  t.is(bundle.status, 200);
  await settledDownloads(app, 3);
  t.is((await colleague.token.get(`/api/slides/${slide.id}/files/slide`)).status, 200);
  const events = await settledDownloads(app, 4);
  const log = new AuditRepository(app.database.db.knex);
  for (const event of events) await log.record(event);

  const history = await researcher.session.get<History>('/api/account/downloads');
  t.is(history.status, 200);
  t.is(history.headers.get('cache-control'), 'no-store');
  t.is(history.body.total, 3);
  t.deepEqual(
    history.body.items.map((i) => [i.kind, i.what, i.status, i.range, i.complete]),
    [
      ['bundle', '1 slide', null, null, true],
      ['slide', 'BR-0007-HE', 206, '0-99', true],
      ['slide', 'BR-0007-HE', 200, null, true],
    ],
    'newest first, with what and how it went',
  );
  t.is(history.body.items[2]!.size, whole.body.length);
  t.is(history.body.items[2]!.bytes, whole.body.length);
  t.is(history.body.items[1]!.bytes, 100);
  t.deepEqual(history.body.items[0]!.slideIds, [slide.id]);

  // The same through a token; pages of two.
  const first = await researcher.token.get<History>('/api/account/downloads?pageSize=2');
  const second = await researcher.token.get<History>('/api/account/downloads?pageSize=2&page=2');
  t.deepEqual([first.body.items.length, second.body.items.length, second.body.total, second.body.page], [2, 1, 3, 2]);
  t.deepEqual([...first.body.items, ...second.body.items].map((i) => i.id), history.body.items.map((i) => i.id));

  // Each sees only their own; an L1 viewer has none.
  const theirs = await colleague.session.get<History>('/api/account/downloads');
  t.is(theirs.body.total, 1);
  t.deepEqual(theirs.body.items.map((i) => i.what), ['BR-0007-HE']);
  t.not(theirs.body.items[0]!.id, history.body.items[2]!.id);
  const none = await viewer.session.get<History>('/api/account/downloads');
  t.is(none.status, 200);
  t.deepEqual([none.body.items, none.body.total], [[], 0]);
  // Another user's id in the query changes nothing: there is no such parameter.
  const sneaky = await viewer.session.get<History>(`/api/account/downloads?actorId=${researcher.user.id}&userId=${researcher.user.id}`);
  t.is(sneaky.body.total, 0);

  t.is((await new Client(app).get('/api/account/downloads')).status, 401);
  for (const query of ['page=0', 'page=abc', 'pageSize=0', 'pageSize=101', 'page=1.5']) {
    const answer = await researcher.session.get<{ error: { code: string } }>(`/api/account/downloads?${query}`);
    t.is(answer.status, 400, query);
    t.is(answer.body.error.code, 'invalid_query');
  }
});
