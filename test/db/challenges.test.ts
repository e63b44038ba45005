import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { UsersRepository, type User } from '../../server/access/users.repository.js';
import { AlreadyInTeam, ChallengesRepository } from '../../server/challenges/challenges.repository.js';
import { loadConfig } from '../../server/config/index.js';
import { packageRoot } from '../../server/package-info.js';
import { challengeData } from '../http/challenges-setup.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';

/** The challenges' repository under requests that arrive together: the database keeps the team size, one team per person, and one scorer per submission. */

test(`joins racing for a team's last place, a person in two teams, and scorers racing for one submission (${testDialect})`, async (t) => {
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-challenges-db-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  const database = await createMigratedTestDatabase();
  t.teardown(database.drop);
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(work, 'var') } });
  const data = await challengeData(config, database.db, work);
  const repository = new ChallengesRepository(database.db.knex);
  const users = new UsersRepository(database.db.knex);
  const people: User[] = [];
  for (let i = 0; i < 5; i++) {
    people.push(await users.create({ email: `p${i}@hospital.example`, name: `P${i}`, institution: 'H', passwordHash: 'x', level: 'L1', levelExpiresAt: null, roles: [], emailConfirmedAt: new Date() }));
  }
  const now = new Date();
  const challenge = await repository.create(
    { name: 'race', title: 'Race', description: '', rules: '', task: 'segmentation', trainReleaseId: data.train.id, testReleaseId: data.test.id, maskDownsample: 16, threshold: 0.65, dailyLimit: 5, teamSize: 2, leaderboardMode: 'best' },
    now,
  );
  const team = await repository.createTeam(challenge.id, 'Founders', people[0]!.id, now);
  const joins = await Promise.all(people.slice(1, 4).map((p) => repository.addMember(team, p.id, challenge.teamSize, now)));
  t.is(joins.filter(Boolean).length, 1, 'one of three takes the last place');
  t.is((await repository.team(team.id))!.members.length, 2);

  await t.throwsAsync(() => repository.createTeam(challenge.id, 'Second', people[0]!.id, now), { instanceOf: AlreadyInTeam });
  const other = await repository.createTeam(challenge.id, 'Other', people[4]!.id, now);
  const member = (await repository.team(team.id))!.members[1]!;
  await t.throwsAsync(() => repository.addMember(other, member.userId, 5, now), { instanceOf: AlreadyInTeam });

  const phase = await repository.savePhase(challenge.id, 'test', { opensAt: new Date(now.getTime() - 1000), closesAt: new Date(now.getTime() + 86_400_000), slides: null, dailyLimit: null, leaderboard: 'public' });
  const submission = await repository.insertSubmission({ challengeId: challenge.id, phaseId: phase.id, teamId: team.id, userId: people[0]!.id, fileName: 'a.zip', size: 1, status: 'queued', report: null, late: false }, now);
  const lease = new Date(now.getTime() + 60_000);
  const claims = await Promise.all([repository.claim(now, lease), repository.claim(now, lease), repository.claim(now, lease)]);
  t.deepEqual(claims.filter((c) => c !== undefined).map((c) => c!.id), [submission.id], 'one scorer takes it');
  t.is(await repository.claim(now, lease), undefined);
  t.is((await repository.claim(new Date(lease.getTime() + 1), new Date(lease.getTime() + 60_000)))?.id, submission.id, 'a lease that ran out is taken again');
});
