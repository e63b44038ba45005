import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig } from '../../server/config/index.js';
import { packageRoot } from '../../server/package-info.js';
import { challengeData, segmentationArchive } from '../http/challenges-setup.js';
import { runCli } from '../support/cli.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

/** `slidebank challenge …` as organisers run it: create, phase, score a file without recording it, the leaderboard, publishing the truth. */

test(`challenge create, phase, score, leaderboard, list and publish-truth from the command line (${testDialect})`, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-challenge-cli-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(work, 'var') };
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env });
  const data = await challengeData(config, database.db, work);
  const run = (args: string[]) => runCli(['challenge', ...args], { cwd: work, env });

  const created = await run(['create', 'liver', '--train', 'train@1', '--test', 'test@1', '--task', 'segmentation', '--daily-limit', '3']);
  t.is(created.code, 0, created.stderr);
  t.regex(created.stdout, /created challenge liver \(segmentation; train train@1, test test@1; mask downsample 16, threshold 0\.65, 3 submission\(s\) a day\)/);
  const again = await run(['create', 'liver', '--train', 'train@1', '--test', 'test@1', '--task', 'segmentation']);
  t.is(again.code, 1);
  t.regex(again.stderr, /exists already/);

  const now = Date.now();
  const phase = await run(['phase', 'liver', 'test', '--opens', new Date(now - 86_400_000).toISOString(), '--closes', new Date(now + 86_400_000).toISOString(), '--slides', data.testIds.join(',')]);
  t.is(phase.code, 0, phase.stderr);
  t.regex(phase.stdout, /liver test: .* 2 test slide\(s\), leaderboard public/);
  const badDate = await run(['phase', 'liver', 'test', '--opens', 'tomorrow', '--closes', '2030-01-01']);
  t.is(badDate.code, 2);

  const truth = await segmentationArchive(config, data.test, path.join(work, 'truth.zip'), 'truth');
  const scored = await run(['score', 'liver', truth, '--json']);
  t.is(scored.code, 0, scored.stderr);
  const figures = JSON.parse(scored.stdout) as { valid: boolean; score: number; perSlide: { slide: string; score: number }[] };
  t.true(figures.valid);
  t.is(figures.score, 1);
  t.deepEqual(figures.perSlide.map((s) => [s.slide, s.score]), data.test.slides.map((s) => [s.name, 1]));
  const short = await segmentationArchive(config, data.test, path.join(work, 'short.zip'), 'empty', { slides: [data.test.slides[0]!.name] });
  const invalid = await run(['score', 'liver', short, '--json']);
  t.is(invalid.code, 1);
  t.false((JSON.parse(invalid.stdout) as { valid: boolean }).valid);
  t.is(Number(((await database.db.knex('challenge_submissions').count({ n: '*' }).first()) as { n: number | string }).n), 0, 'scoring a file records nothing');

  const board = await run(['leaderboard', 'liver', '--json']);
  t.is(board.code, 0, board.stderr);
  t.like(JSON.parse(board.stdout), { challenge: 'liver', phase: 'test', state: 'open', entries: [] });
  const list = await run(['list']);
  t.regex(list.stdout, /^liver {2}segmentation {2}open\n {2}test /);

  const published = await run(['publish-truth', 'liver']);
  t.is(published.code, 0, published.stderr);
  t.regex(published.stdout, /the truth is published/);
  const twice = await run(['publish-truth', 'liver']);
  t.is(twice.code, 1);
  const audit = (await database.db.knex('audit_log').where('action', 'like', 'challenge.%').orderBy('id').select('action')) as { action: string }[];
  t.deepEqual(audit.map((a) => a.action), ['challenge.created', 'challenge.phase_saved', 'challenge.truth_published']);
});
