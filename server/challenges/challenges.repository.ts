import type { Knex } from 'knex';
import { fromDbJson, fromDbTime, isUniqueViolation, toDbTime } from '../db/index.js';
import type { Release, ReleasedSlide } from '../datasets/release.js';
import type { Challenge, ChallengeTaskName, Invitation, LeaderboardMode, LeaderboardVisibility, Phase, SlideResult, Submission, SubmissionStatus, Team } from './model.js';

export class NameTaken extends Error {}
/** The person is in a team of this challenge already (the unique key of challenge_team_members). */
export class AlreadyInTeam extends Error {}

/** A challenge as it is made: its settings, before the database gives it an id, a rules version and its times. */
export type NewChallenge = Omit<Challenge, 'id' | 'rulesVersion' | 'truthPublishedAt' | 'createdAt' | 'updatedAt'>;

export type ChallengeChanges = Partial<Omit<NewChallenge, 'name' | 'trainReleaseId' | 'testReleaseId'>>;

export interface PhaseFields {
  opensAt: Date;
  closesAt: Date;
  slides: number[] | null;
  dailyLimit: number | null;
  leaderboard: LeaderboardVisibility;
}

export interface NewSubmission {
  challengeId: number;
  phaseId: number;
  teamId: number;
  userId: number | null;
  fileName: string;
  size: number;
  status: 'invalid' | 'queued';
  report: unknown;
  late: boolean;
}

/** A scored submission as a leaderboard reads it. */
export interface RankedRow {
  submission: Submission;
  teamName: string;
}

type Row = Record<string, unknown>;

const time = (value: unknown) => fromDbTime(value as string);
const maybeTime = (value: unknown) => (value === null || value === undefined ? null : fromDbTime(value as string));

function toChallenge(row: Row): Challenge {
  return {
    id: row.id as number,
    name: row.name as string,
    title: row.title as string,
    description: row.description as string,
    rules: row.rules as string,
    rulesVersion: Number(row.rules_version),
    task: row.task as ChallengeTaskName,
    trainReleaseId: row.train_release_id as number,
    testReleaseId: row.test_release_id as number,
    maskDownsample: Number(row.mask_downsample),
    threshold: Number(row.threshold),
    dailyLimit: Number(row.daily_limit),
    teamSize: Number(row.team_size),
    leaderboardMode: row.leaderboard_mode as LeaderboardMode,
    truthPublishedAt: maybeTime(row.truth_published_at),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
  };
}

function toPhase(row: Row): Phase {
  return {
    id: row.id as number,
    challengeId: row.challenge_id as number,
    name: row.name as string,
    opensAt: time(row.opens_at),
    closesAt: time(row.closes_at),
    slides: row.slides === null ? null : fromDbJson<number[]>(row.slides),
    dailyLimit: row.daily_limit === null ? null : Number(row.daily_limit),
    leaderboard: row.leaderboard as LeaderboardVisibility,
  };
}

function toSubmission(row: Row): Submission {
  return {
    id: row.id as number,
    challengeId: row.challenge_id as number,
    phaseId: row.phase_id as number,
    teamId: row.team_id as number,
    userId: (row.user_id as number | null) ?? null,
    fileName: row.file_name as string,
    size: Number(row.size),
    status: row.status as SubmissionStatus,
    report: row.report === null ? null : fromDbJson<unknown>(row.report),
    progress: Number(row.progress),
    score: row.score === null ? null : Number(row.score),
    tieBreakers: row.tie_breakers === null ? null : fromDbJson<number[]>(row.tie_breakers),
    metrics: row.metrics === null ? null : fromDbJson<Record<string, number>>(row.metrics),
    error: (row.error as string | null) ?? null,
    late: Boolean(row.late),
    createdAt: time(row.created_at),
    scoredAt: maybeTime(row.scored_at),
  };
}

/** Every query on challenges, their phases, participants, teams, invitations, submissions and results. */
export class ChallengesRepository {
  constructor(private readonly knex: Knex) {}

  async create(fields: NewChallenge, now: Date): Promise<Challenge> {
    try {
      await this.knex('challenges').insert({
        name: fields.name,
        title: fields.title,
        description: fields.description,
        rules: fields.rules,
        rules_version: 1,
        task: fields.task,
        train_release_id: fields.trainReleaseId,
        test_release_id: fields.testReleaseId,
        mask_downsample: fields.maskDownsample,
        threshold: fields.threshold,
        daily_limit: fields.dailyLimit,
        team_size: fields.teamSize,
        leaderboard_mode: fields.leaderboardMode,
        truth_published_at: null,
        created_at: toDbTime(now),
        updated_at: toDbTime(now),
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new NameTaken(fields.name);
      throw error;
    }
    return (await this.findByName(fields.name))!;
  }

  async update(id: number, changes: ChallengeChanges, rulesChanged: boolean, now: Date): Promise<void> {
    const columns: Row = { updated_at: toDbTime(now) };
    const names: Record<keyof ChallengeChanges, string> = {
      title: 'title',
      description: 'description',
      rules: 'rules',
      task: 'task',
      maskDownsample: 'mask_downsample',
      threshold: 'threshold',
      dailyLimit: 'daily_limit',
      teamSize: 'team_size',
      leaderboardMode: 'leaderboard_mode',
    };
    for (const [key, column] of Object.entries(names) as [keyof ChallengeChanges, string][]) {
      if (changes[key] !== undefined) columns[column] = changes[key];
    }
    await this.knex('challenges')
      .where({ id })
      .update(rulesChanged ? { ...columns, rules_version: this.knex.raw('rules_version + 1') } : columns);
  }

  async findByName(name: string): Promise<Challenge | undefined> {
    const row = (await this.knex('challenges').where({ name }).first()) as Row | undefined;
    return row ? toChallenge(row) : undefined;
  }

  async findById(id: number): Promise<Challenge | undefined> {
    const row = (await this.knex('challenges').where({ id }).first()) as Row | undefined;
    return row ? toChallenge(row) : undefined;
  }

  async list(): Promise<Challenge[]> {
    return ((await this.knex('challenges').orderBy('name')) as Row[]).map(toChallenge);
  }

  async publishTruth(id: number, now: Date): Promise<boolean> {
    return (await this.knex('challenges').where({ id }).whereNull('truth_published_at').update({ truth_published_at: toDbTime(now), updated_at: toDbTime(now) })) > 0;
  }

  /** The test releases whose annotations are still hidden. */
  async hiddenTruthReleaseIds(): Promise<number[]> {
    const rows = (await this.knex('challenges').whereNull('truth_published_at').distinct('test_release_id')) as { test_release_id: number }[];
    return rows.map((r) => r.test_release_id);
  }

  /** The slide ids a release froze, from its snapshot. */
  async releaseSlideIds(releaseIds: readonly number[]): Promise<Map<number, number[]>> {
    const result = new Map<number, number[]>();
    if (releaseIds.length === 0) return result;
    const rows = (await this.knex('dataset_releases').whereIn('id', releaseIds).select('id', 'snapshot')) as { id: number; snapshot: unknown }[];
    for (const row of rows) result.set(row.id, fromDbJson<{ slides: { id: number }[] }>(row.snapshot).slides.map((s) => s.id));
    return result;
  }

  /** A dataset release by id, as the datasets keep it. */
  async release(id: number): Promise<Release | undefined> {
    const row = (await this.knex('dataset_releases as r').join('datasets as d', 'd.id', 'r.dataset_id').where('r.id', id).first('r.*', 'd.name as dataset_name')) as Row | undefined;
    if (!row) return undefined;
    return {
      id: row.id as number,
      datasetId: row.dataset_id as number,
      dataset: row.dataset_name as string,
      version: row.version as string,
      createdAt: time(row.created_at),
      createdBy: row.created_by as string,
      slides: fromDbJson<{ slides: ReleasedSlide[] }>(row.snapshot).slides,
    };
  }

  /** Every slide id any release of a dataset froze. */
  async datasetSlideIds(dataset: string): Promise<number[]> {
    const rows = (await this.knex('dataset_releases as r').join('datasets as d', 'd.id', 'r.dataset_id').where('d.name', dataset).select('r.snapshot')) as { snapshot: unknown }[];
    return [...new Set(rows.flatMap((row) => fromDbJson<{ slides: { id: number }[] }>(row.snapshot).slides.map((s) => s.id)))];
  }

  // Phases

  async savePhase(challengeId: number, name: string, fields: PhaseFields): Promise<Phase> {
    const columns = {
      opens_at: toDbTime(fields.opensAt),
      closes_at: toDbTime(fields.closesAt),
      slides: fields.slides === null ? null : JSON.stringify(fields.slides),
      daily_limit: fields.dailyLimit,
      leaderboard: fields.leaderboard,
    };
    await this.knex.transaction(async (trx) => {
      const updated = await trx('challenge_phases').where({ challenge_id: challengeId, name }).update(columns);
      if (updated === 0) await trx('challenge_phases').insert({ challenge_id: challengeId, name, ...columns });
    });
    return (await this.phase(challengeId, name))!;
  }

  async phases(challengeId: number): Promise<Phase[]> {
    return ((await this.knex('challenge_phases').where({ challenge_id: challengeId }).orderBy('opens_at').orderBy('id')) as Row[]).map(toPhase);
  }

  async phase(challengeId: number, name: string): Promise<Phase | undefined> {
    const row = (await this.knex('challenge_phases').where({ challenge_id: challengeId, name }).first()) as Row | undefined;
    return row ? toPhase(row) : undefined;
  }

  async phaseById(id: number): Promise<Phase | undefined> {
    const row = (await this.knex('challenge_phases').where({ id }).first()) as Row | undefined;
    return row ? toPhase(row) : undefined;
  }

  // Participants

  /** Records the acceptance of the rules; accepting a newer version again updates it. */
  async accept(challengeId: number, userId: number, rulesVersion: number, now: Date): Promise<void> {
    await this.knex.transaction(async (trx) => {
      const updated = await trx('challenge_participants').where({ challenge_id: challengeId, user_id: userId }).update({ rules_version: rulesVersion, accepted_at: toDbTime(now) });
      if (updated === 0) await trx('challenge_participants').insert({ challenge_id: challengeId, user_id: userId, rules_version: rulesVersion, accepted_at: toDbTime(now) });
    });
  }

  async participant(challengeId: number, userId: number): Promise<{ rulesVersion: number; acceptedAt: Date } | undefined> {
    const row = (await this.knex('challenge_participants').where({ challenge_id: challengeId, user_id: userId }).first()) as Row | undefined;
    return row ? { rulesVersion: Number(row.rules_version), acceptedAt: time(row.accepted_at) } : undefined;
  }

  /** The challenges a user has joined. */
  async joinedChallengeIds(userId: number): Promise<number[]> {
    return ((await this.knex('challenge_participants').where({ user_id: userId }).select('challenge_id')) as { challenge_id: number }[]).map((r) => r.challenge_id);
  }

  async participantCount(challengeId: number): Promise<number> {
    const row = (await this.knex('challenge_participants').where({ challenge_id: challengeId }).count({ n: '*' }).first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  // Teams

  /** A new team with its creator as first member, together; AlreadyInTeam or NameTaken refuse it whole. */
  async createTeam(challengeId: number, name: string, userId: number, now: Date): Promise<Team> {
    let id = 0;
    try {
      await this.knex.transaction(async (trx) => {
        const [inserted] = (await trx('challenge_teams').insert({ challenge_id: challengeId, name, created_by: userId, created_at: toDbTime(now) })) as number[];
        id = inserted ?? 0;
        if (!id) id = ((await trx('challenge_teams').where({ challenge_id: challengeId, name }).first('id')) as { id: number }).id;
        await trx('challenge_team_members').insert({ team_id: id, challenge_id: challengeId, user_id: userId, joined_at: toDbTime(now) });
      });
    } catch (error) {
      if (isUniqueViolation(error)) {
        if (await this.teamOf(challengeId, userId)) throw new AlreadyInTeam();
        throw new NameTaken(name);
      }
      throw error;
    }
    return (await this.team(id))!;
  }

  async team(id: number): Promise<Team | undefined> {
    const row = (await this.knex('challenge_teams').where({ id }).first()) as Row | undefined;
    if (!row) return undefined;
    const members = (await this.knex('challenge_team_members as m')
      .join('users as u', 'u.id', 'm.user_id')
      .where('m.team_id', id)
      .orderBy('m.joined_at')
      .orderBy('m.user_id')
      .select('m.user_id', 'u.name', 'u.email', 'm.joined_at')) as Row[];
    return {
      id,
      challengeId: row.challenge_id as number,
      name: row.name as string,
      createdBy: (row.created_by as number | null) ?? null,
      createdAt: time(row.created_at),
      members: members.map((m) => ({ userId: m.user_id as number, name: m.name as string, email: m.email as string, joinedAt: time(m.joined_at) })),
    };
  }

  async teamOf(challengeId: number, userId: number): Promise<Team | undefined> {
    const row = (await this.knex('challenge_team_members').where({ challenge_id: challengeId, user_id: userId }).first('team_id')) as { team_id: number } | undefined;
    return row ? this.team(row.team_id) : undefined;
  }

  async teamNames(challengeId: number): Promise<Map<number, string>> {
    const rows = (await this.knex('challenge_teams').where({ challenge_id: challengeId }).select('id', 'name')) as { id: number; name: string }[];
    return new Map(rows.map((r) => [r.id, r.name]));
  }

  /**
   * Adds a member while the team has fewer than `maxSize`, in one transaction;
   * false when it is full. AlreadyInTeam when the person is in a team of the challenge.
   */
  async addMember(team: { id: number; challengeId: number }, userId: number, maxSize: number, now: Date): Promise<boolean> {
    try {
      return await this.knex.transaction(async (trx) => {
        // Lock the team's row so that two joins at once cannot both take the last place.
        await trx('challenge_teams').where({ id: team.id }).forUpdate().first('id');
        const row = (await trx('challenge_team_members').where({ team_id: team.id }).count({ n: '*' }).first()) as { n: number | string } | undefined;
        if (Number(row?.n ?? 0) >= maxSize) return false;
        await trx('challenge_team_members').insert({ team_id: team.id, challenge_id: team.challengeId, user_id: userId, joined_at: toDbTime(now) });
        return true;
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new AlreadyInTeam();
      throw error;
    }
  }

  /** Takes a member out; a team left without members and without submissions goes. */
  async removeMember(teamId: number, userId: number): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('challenge_team_members').where({ team_id: teamId, user_id: userId }).delete();
      const left = (await trx('challenge_team_members').where({ team_id: teamId }).count({ n: '*' }).first()) as { n: number | string } | undefined;
      const submitted = await trx('challenge_submissions').where({ team_id: teamId }).first('id');
      if (Number(left?.n ?? 0) === 0 && !submitted) await trx('challenge_teams').where({ id: teamId }).delete();
    });
  }

  // Invitations

  async invite(teamId: number, email: string, invitedBy: number, now: Date): Promise<Invitation> {
    try {
      await this.knex('challenge_invitations').insert({ team_id: teamId, email: email.toLowerCase(), invited_by: invitedBy, created_at: toDbTime(now), accepted_at: null });
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      // Invited again (after leaving, say): the invitation is open once more.
      await this.knex('challenge_invitations').where({ team_id: teamId, email: email.toLowerCase() }).update({ created_at: toDbTime(now), invited_by: invitedBy, accepted_at: null });
    }
    return (await this.invitation(teamId, email))!;
  }

  async invitation(teamId: number, email: string): Promise<Invitation | undefined> {
    const row = (await this.knex('challenge_invitations').where({ team_id: teamId, email: email.toLowerCase() }).first()) as Row | undefined;
    return row ? toInvitation(row) : undefined;
  }

  /** Open invitations to an address within a challenge. */
  async invitationsFor(challengeId: number, email: string): Promise<(Invitation & { teamName: string })[]> {
    const rows = (await this.knex('challenge_invitations as i')
      .join('challenge_teams as t', 't.id', 'i.team_id')
      .where({ 't.challenge_id': challengeId, 'i.email': email.toLowerCase() })
      .whereNull('i.accepted_at')
      .orderBy('i.id')
      .select('i.*', 't.name as team_name')) as Row[];
    return rows.map((row) => ({ ...toInvitation(row), teamName: row.team_name as string }));
  }

  async markAccepted(invitationId: number, now: Date): Promise<void> {
    await this.knex('challenge_invitations').where({ id: invitationId }).update({ accepted_at: toDbTime(now) });
  }

  // Submissions

  async insertSubmission(fields: NewSubmission, now: Date): Promise<Submission> {
    const [inserted] = (await this.knex('challenge_submissions').insert({
      challenge_id: fields.challengeId,
      phase_id: fields.phaseId,
      team_id: fields.teamId,
      user_id: fields.userId,
      file_name: fields.fileName,
      size: fields.size,
      status: fields.status,
      report: fields.report === null ? null : JSON.stringify(fields.report),
      progress: 0,
      late: fields.late,
      created_at: toDbTime(now),
    })) as number[];
    let id = inserted;
    if (!id) id = ((await this.knex('challenge_submissions').where({ team_id: fields.teamId }).orderBy('id', 'desc').first('id')) as { id: number }).id;
    return (await this.submission(id))!;
  }

  async submission(id: number): Promise<Submission | undefined> {
    const row = (await this.knex('challenge_submissions').where({ id }).first()) as Row | undefined;
    return row ? toSubmission(row) : undefined;
  }

  /** Submissions of a team in a phase since `since` that count against the daily limit (every one but the invalid). */
  async countedSince(phaseId: number, teamId: number, since: Date): Promise<number> {
    const row = (await this.knex('challenge_submissions')
      .where({ phase_id: phaseId, team_id: teamId })
      .whereNot('status', 'invalid')
      .where('created_at', '>=', toDbTime(since))
      .count({ n: '*' })
      .first()) as { n: number | string } | undefined;
    return Number(row?.n ?? 0);
  }

  async teamSubmissions(challengeId: number, teamId: number): Promise<Submission[]> {
    return ((await this.knex('challenge_submissions').where({ challenge_id: challengeId, team_id: teamId }).orderBy('id', 'desc')) as Row[]).map(toSubmission);
  }

  async challengeSubmissions(challengeId: number, statuses?: readonly SubmissionStatus[]): Promise<Submission[]> {
    const query = this.knex('challenge_submissions').where({ challenge_id: challengeId });
    if (statuses) query.whereIn('status', statuses);
    return ((await query.orderBy('id')) as Row[]).map(toSubmission);
  }

  /** The scored submissions of a phase with their teams' names. */
  async scored(phaseId: number): Promise<RankedRow[]> {
    const rows = (await this.knex('challenge_submissions as s')
      .join('challenge_teams as t', 't.id', 's.team_id')
      .where({ 's.phase_id': phaseId, 's.status': 'scored' })
      .orderBy('s.id')
      .select('s.*', 't.name as team_name')) as Row[];
    return rows.map((row) => ({ submission: toSubmission(row), teamName: row.team_name as string }));
  }

  /**
   * Claims the oldest queued submission (or one whose scorer stopped renewing
   * its lease) for scoring until `leaseUntil`; undefined when none waits. The
   * conditional update makes two scorers never take the same one.
   */
  async claim(now: Date, leaseUntil: Date): Promise<Submission | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const row = (await this.knex('challenge_submissions')
        .where((q) => {
          void q.where('status', 'queued').orWhere((r) => {
            void r.where('status', 'scoring').where('lease_expires_at', '<', toDbTime(now));
          });
        })
        .orderBy('id')
        .first('id', 'status')) as { id: number; status: string } | undefined;
      if (!row) return undefined;
      const taken = await this.knex('challenge_submissions')
        .where({ id: row.id, status: row.status })
        .update({ status: 'scoring', progress: 0, lease_expires_at: toDbTime(leaseUntil), error: null });
      if (taken > 0) return this.submission(row.id);
    }
    return undefined;
  }

  async progress(id: number, progress: number, leaseUntil: Date): Promise<void> {
    await this.knex('challenge_submissions').where({ id, status: 'scoring' }).update({ progress, lease_expires_at: toDbTime(leaseUntil) });
  }

  /** Stores the score and the per-slide results, together. */
  async finishScored(id: number, score: { score: number; tieBreakers: number[]; metrics: Record<string, number>; perSlide: SlideResult[] }, now: Date): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx('challenge_results').where({ submission_id: id }).delete();
      for (let i = 0; i < score.perSlide.length; i += 200) {
        await trx('challenge_results').insert(
          score.perSlide.slice(i, i + 200).map((r) => ({ submission_id: id, slide: r.slide, score: r.score, metrics: JSON.stringify(r.metrics) })),
        );
      }
      await trx('challenge_submissions')
        .where({ id })
        .update({
          status: 'scored',
          progress: 1,
          score: score.score,
          tie_breakers: JSON.stringify(score.tieBreakers),
          metrics: JSON.stringify(score.metrics),
          scored_at: toDbTime(now),
          lease_expires_at: null,
          error: null,
        });
    });
  }

  /** A submission the scorer found invalid after all (its archive changed or the check differs): not counted. */
  async finishInvalid(id: number, report: unknown): Promise<void> {
    await this.knex('challenge_submissions').where({ id }).update({ status: 'invalid', report: JSON.stringify(report), lease_expires_at: null, progress: 0 });
  }

  async finishFailed(id: number, error: string): Promise<void> {
    await this.knex('challenge_submissions').where({ id }).update({ status: 'failed', error, lease_expires_at: null });
  }

  /** Queue submissions again for scoring (rescoring); returns how many. */
  async requeue(ids: readonly number[]): Promise<number> {
    if (ids.length === 0) return 0;
    return this.knex('challenge_submissions').whereIn('id', ids).whereIn('status', ['scored', 'failed', 'queued']).update({ status: 'queued', progress: 0, lease_expires_at: null, error: null });
  }

  async results(submissionId: number): Promise<SlideResult[]> {
    const rows = (await this.knex('challenge_results').where({ submission_id: submissionId }).orderBy('slide')) as Row[];
    return rows.map((r) => ({ slide: r.slide as string, score: Number(r.score), metrics: fromDbJson<Record<string, number>>(r.metrics) }));
  }
}

function toInvitation(row: Row): Invitation {
  return {
    id: row.id as number,
    teamId: row.team_id as number,
    email: row.email as string,
    invitedBy: (row.invited_by as number | null) ?? null,
    createdAt: time(row.created_at),
    acceptedAt: maybeTime(row.accepted_at),
  };
}
