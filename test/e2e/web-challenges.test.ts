/**
 * A challenge in a real browser: an administrator makes it from two dataset
 * releases and opens a phase in the portal; an L1 participant (below L2) accepts
 * the rules, sees the training slides with their annotations and the test
 * slides without, makes a team, sends an archive that misses a slide (the
 * report names it; nothing is counted) and then the truth itself, follows it
 * through scoring to a score of 1 and first place on the leaderboard. Every
 * challenge page passes axe and does not scroll sideways at 390 px.
 * Screenshots go to test/artifacts/ (git-ignored).
 */
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { createUser, TEST_PASSWORD } from '../support/accounts.js';
import { horizontalOverflow, severeAxeViolations } from '../support/axe.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { testDialect } from '../support/database.js';
import { queueApp } from '../support/queue-app.js';
import { challengeData, segmentationArchive } from '../http/challenges-setup.js';

/** A datetime-local input's value for a moment this many hours from now, in the browser's (and this process's) zone. */
function localInput(hoursFromNow: number): string {
  const at = new Date(Date.now() + hoursFromNow * 3_600_000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

browserTest(`a participant joins a challenge, submits, and finds the score on the leaderboard; the organiser set it up in the portal (${testDialect})`, async (t) => {
  t.timeout(400_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-challenges-${name}.png`), fullPage: true });
  // The application with a queue worker, which scores the submissions.
  const { root: work, database, config, start } = await queueApp(t, 'web-challenges');
  const data = await challengeData(config, database.db, work);
  const app = { ...(await start()), config };
  const admin = await createUser(app as never, { level: 'L1', roles: ['admin'] });
  const participant = await createUser(app as never, { level: 'L1', name: 'Pia' });

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const open = async (width: number, height: number) => {
    const page = await (await browser.newContext({ viewport: { width, height } })).newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    return page;
  };

  // --- The organiser: a challenge from the two releases, then its test phase, open since an hour ago.
  const organiser = await open(1366, 900);
  await logInThroughPortal(organiser, app.url(''), admin.email, TEST_PASSWORD, '/admin/challenges');
  const create = organiser.getByTestId('create-challenge');
  await create.locator('input[name=challenge-name]').fill('liver');
  await create.getByLabel('Title').fill('Liver tumour segmentation');
  await create.locator('input[name=train]').fill('train@1');
  await create.locator('input[name=test]').fill('test@1');
  await create.getByLabel('Rules (Markdown)').fill('## Rules\n\n- One team each.\n- No manual annotation of the test slides.');
  await create.getByRole('button', { name: 'Create' }).click();
  const phaseForm = organiser.getByTestId('phase-form');
  await phaseForm.waitFor();
  await phaseForm.locator('input[name=phase-name]').fill('test');
  await phaseForm.locator('input[name=opens]').fill(localInput(-1));
  await phaseForm.locator('input[name=closes]').fill(localInput(48));
  await phaseForm.getByRole('button', { name: 'Save phase' }).click();
  await organiser.getByTestId('challenge-admin-done').filter({ hasText: 'Phase test saved' }).waitFor();
  t.deepEqual(await organiser.getByTestId('admin-challenges').locator('li').allInnerTexts(), ['Liver tumour segmentation · Segmentation · open · 1 phase · page']);

  // --- The participant, an L1 account: the list, the rules, joining.
  const page = await open(1366, 900);
  await logInThroughPortal(page, app.url(''), participant.email, TEST_PASSWORD, '/challenges');
  await page.getByTestId('challenge-list').getByRole('link', { name: 'Liver tumour segmentation' }).click();
  await page.getByTestId('challenge-rules').filter({ hasText: 'No manual annotation of the test slides' }).waitFor();
  t.is(await page.locator('#data').count(), 0, 'no data before joining');
  t.false(await page.getByTestId('join').isEnabled(), 'joining needs the rules accepted');
  await page.getByLabel('I have read the rules above and accept them').check();
  await page.getByTestId('join').click();
  await page.getByTestId('joined').waitFor();

  // The data: training slides with annotations, test slides without; a download works below L2.
  const train = page.getByTestId('data-train');
  const test = page.getByTestId('data-test');
  t.is(await train.getByRole('link', { name: 'annotation' }).count(), 2);
  t.is(await test.getByRole('link', { name: 'annotation' }).count(), 0);
  const slideLink = (await test.locator('li a').first().getAttribute('href'))!;
  const head = await page.request.get(app.url(slideLink), { headers: { Range: 'bytes=0-3' } });
  t.is(head.status(), 206);

  // A team.
  await page.locator('input[name=team-name]').fill('Hepatic');
  await page.getByRole('button', { name: 'Create a team' }).click();
  await page.getByTestId('team-name').filter({ hasText: 'Hepatic' }).waitFor();

  // An archive short of a slide: refused, each problem named, nothing counted.
  const short = await segmentationArchive(app.config, data.test, path.join(work, 'short.zip'), 'truth', { slides: [data.test.slides[0]!.name] });
  await page.locator('input[name=archive]').setInputFiles(short);
  await page.getByTestId('send-submission').click();
  const report = page.getByTestId('validation-report');
  await report.waitFor();
  t.regex(await report.innerText(), new RegExp(data.test.slides[1]!.name));
  t.notRegex(await page.locator('#submit').innerText(), /request id [0-9a-f-]{8,}.*\n.*What to fix/);

  // The truth itself, through the resumable uploads in chunks small enough to need several (the page's
  // chunkBytes parameter), the second chunk's first try broken off: sent again after a pause, with the
  // progress in bytes and percent; then accepted, queued, and scored by the worker while the page watches.
  const truth = await segmentationArchive(app.config, data.test, path.join(work, 'truth.zip'), 'truth');
  const truthSize = (await stat(truth)).size;
  const chunkBytes = Math.ceil(truthSize / 4);
  await page.goto(app.url(`/challenges/liver?chunkBytes=${chunkBytes}`));
  await page.getByTestId('submit').waitFor();
  const chunks: string[] = [];
  let broken = false;
  await page.route('**/api/challenges/liver/uploads/*', async (route) => {
    const request = route.request();
    if (request.method() !== 'PUT') return route.continue();
    const range = (await request.headerValue('content-range')) ?? '';
    if (!broken && range.startsWith(`bytes ${chunkBytes}-`)) {
      broken = true;
      return route.abort('connectionreset');
    }
    chunks.push(range);
    return route.continue();
  });
  await page.locator('input[name=archive]').setInputFiles(truth);
  await page.getByTestId('send-submission').click();
  await page.getByTestId('submission-accepted').waitFor();
  t.true(broken, 'a chunk was broken off');
  t.deepEqual(chunks, [0, 1, 2, 3].map((i) => `bytes ${i * chunkBytes}-${Math.min((i + 1) * chunkBytes, truthSize) - 1}/${truthSize}`), 'four chunks in order, the broken one sent again');
  const bar = page.getByTestId('upload-progress');
  t.is(await bar.locator('progress').getAttribute('max'), String(truthSize));
  t.is(await bar.locator('progress').evaluate((el) => (el as unknown as { value: number }).value), truthSize);
  t.regex(await page.getByTestId('upload-progress-text').innerText(), /^\S+ \S+ of \S+ \S+ \(100%\)$/);
  await page.unroute('**/api/challenges/liver/uploads/*');
  // Scored by the queue worker, which runs at a lower priority than the server: on a busy machine it takes longer than a page update.
  await page.locator('[data-status=scored]').waitFor({ timeout: 180_000 });
  t.is(await page.locator('[data-status=scored] [data-testid=submission-score]').innerText(), '1.0000');
  t.is(await page.locator('[data-status=invalid]').count(), 1, 'the refused archive is listed as refused');
  const board = page.getByTestId('leaderboard-table');
  await board.locator('tbody tr').first().filter({ hasText: 'Hepatic' }).waitFor();
  t.deepEqual(
    (await board.locator('tbody tr').first().locator('td').allInnerTexts()).slice(0, 3),
    ['1', 'Hepatic (your team)', '1.0000'],
  );
  // Per slide, for the team itself.
  await page.locator('details summary', { hasText: 'Per slide (2)' }).click();
  t.is(await page.locator('.per-slide tbody tr').count(), 2);
  await shot(page, '1-scored');

  // Every challenge page: axe, and no sideways scrolling on a phone.
  for (const [who, target] of [[page, '/challenges'], [page, '/challenges/liver'], [organiser, '/admin/challenges?name=liver']] as const) {
    await who.goto(app.url(target));
    await who.locator('h1, h2').first().waitFor();
    t.deepEqual(await severeAxeViolations(who), [], `axe on ${target}`);
  }
  const phone = await open(390, 844);
  await logInThroughPortal(phone, app.url(''), participant.email, TEST_PASSWORD, '/challenges/liver');
  await phone.getByTestId('leaderboard-table').waitFor();
  t.deepEqual(await horizontalOverflow(phone), { excess: 0, culprits: [] }, 'the challenge page on a phone');
  await shot(phone, '2-phone');
  t.deepEqual(pageErrors, []);
});
