import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Requester } from '../access/levels.js';
import { parseAperioXml, toGeoJson } from '../annotations/index.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Release, ReleasedSlide } from '../datasets/release.js';
import { AppError, notFound } from '../errors.js';
import { csvText } from '../lib/csv.js';
import { renderMarkdown } from '../pages/markdown.js';
import type { Logger } from '../logging.js';
import { escapeHtml, type Mailer, type MailSite } from '../mail/index.js';
import { bootstrapInterval, rankEntries } from './metrics/index.js';
import { scoreSubmission, SubmissionInvalid, validateSubmission, type ChallengeSlide, type ScoringSpec, type SlideTruth, type ValidationReport } from './submissions/index.js';
import { AlreadyInTeam, NameTaken, type ChallengeChanges, type ChallengesRepository } from './challenges.repository.js';
import { uploadView, type ChallengeUploads, type ChunkRange, type UploadView } from './uploads.js';
import {
  CHALLENGE_NAME,
  DEFAULTS,
  PHASE_NAME,
  dayStart,
  type Challenge,
  type ChallengeTaskName,
  type LeaderboardMode,
  type LeaderboardVisibility,
  type Phase,
  type Submission,
  type Team,
} from './model.js';

/** Who acts: the requester the HTTP layer resolved (or the command line's operator) and the client address. */
export interface ChallengeActor {
  requester: Requester;
  ip: string | null;
}

/** Finds a dataset release by `DATASET@VERSION`, as `slidebank dataset release` made it. */
export type ReleaseLookup = (dataset: string, version: string) => Promise<Release>;

export interface ChallengesSettings {
  /** `<paths.data>/challenges`: the submitted archives, one folder per challenge. */
  dataDir: string;
  /** `<paths.data>/releases`: where releases keep their annotation files (the truth). */
  releasesDir: string;
  /** The largest archive taken, in bytes. */
  maxUploadBytes: number;
}

export interface NewChallengeInput {
  name: string;
  title?: string;
  description?: string;
  rules?: string;
  task: ChallengeTaskName;
  /** `DATASET@VERSION`. */
  train: string;
  test: string;
  maskDownsample?: number;
  threshold?: number;
  dailyLimit?: number;
  teamSize?: number;
  leaderboardMode?: LeaderboardMode;
}

export interface PhaseInput {
  opensAt: Date;
  closesAt: Date;
  /** Slide ids of the test release; null: all of them. */
  slides: number[] | null;
  dailyLimit: number | null;
  leaderboard: LeaderboardVisibility;
}

export type PhaseState = 'upcoming' | 'open' | 'closed';

export interface LeaderboardEntry {
  rank: number;
  team: string;
  teamId: number;
  submissionId: number;
  score: number;
  tieBreakers: number[];
  metrics: Record<string, number>;
  submittedAt: Date;
  /** The bootstrap 95% interval of the score over the slides, once the phase has closed; null before. */
  interval: { low: number; high: number } | null;
}

export interface Leaderboard {
  challenge: string;
  phase: string;
  state: PhaseState;
  mode: LeaderboardMode;
  final: boolean;
  entries: LeaderboardEntry[];
  /** Submissions made after the phase closed: scored, shown apart, never ranked with the others. */
  late: Omit<LeaderboardEntry, 'rank' | 'interval'>[];
}

/** An uploaded archive waiting in a temporary file. */
export interface UploadedArchive {
  file: string;
  fileName: string;
  size: number;
}

export type SubmitOutcome = { kind: 'queued' | 'invalid'; submission: Submission; report: ValidationReport };

/** How long a scorer holds a submission between two reports of progress. */
const LEASE_MS = 10 * 60_000;
const ARCHIVE_EXTENSIONS = ['.tar.gz', '.tgz', '.zip', '.tar'] as const;

/** The extension an archive is kept under, from its name: .zip, .tar or .tar.gz. */
export function archiveExtension(fileName: string): string | undefined {
  const lower = fileName.toLowerCase();
  const found = ARCHIVE_EXTENSIONS.find((ext) => lower.endsWith(ext));
  return found === '.tgz' ? '.tar.gz' : found;
}

export function phaseState(phase: Pick<Phase, 'opensAt' | 'closesAt'>, now: Date): PhaseState {
  if (now < phase.opensAt) return 'upcoming';
  return now < phase.closesAt ? 'open' : 'closed';
}

function isAdmin(requester: Pick<Requester, 'roles'>): boolean {
  return requester.roles.includes('admin');
}

function parseRelease(text: string, option: string): { dataset: string; version: string } {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new AppError(400, 'invalid_request', `${option} must name a dataset release as DATASET@VERSION, not "${text}"`);
  return { dataset: text.slice(0, at), version: text.slice(at + 1) };
}

/**
 * Challenges on the platform's own data: organisers make them from two
 * dataset releases and open phases; participants accept the rules, form
 * teams and submit archives of predictions for the test slides, which are
 * validated at once, scored in the background and ranked per phase. The
 * test release's annotations stay hidden (HiddenTruth) until the organisers
 * publish them.
 */
export class ChallengesService {
  constructor(
    private readonly repository: ChallengesRepository,
    private readonly uploads: ChallengeUploads,
    private readonly releases: ReleaseLookup,
    private readonly audit: AuditLog,
    private readonly mailer: Mailer,
    private readonly site: MailSite,
    private readonly settings: ChallengesSettings,
    private readonly log: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Where uploads wait while they arrive. */
  uploadsDir(): string {
    return path.join(this.settings.dataDir, 'uploads');
  }

  // Organisers

  async create(input: NewChallengeInput, actor: ChallengeActor): Promise<Challenge> {
    if (!CHALLENGE_NAME.test(input.name)) {
      throw new AppError(400, 'invalid_request', `"${input.name}" is not a challenge name: use lower-case letters, digits, ".", "_" and "-" (at most 100, starting with a letter or digit)`);
    }
    const train = await this.findRelease(input.train, 'train');
    const test = await this.findRelease(input.test, 'test');
    if (train.id === test.id) throw new AppError(409, 'same_release', 'The training and the test release must be two different releases');
    const trainIds = new Set(train.slides.map((s) => s.id));
    const shared = test.slides.filter((s) => trainIds.has(s.id));
    if (shared.length > 0) {
      throw new AppError(409, 'releases_overlap', `${shared.length} slide(s) are in both releases (${shared.slice(0, 5).map((s) => s.name).join(', ')}): a test slide's annotation would be given out with the training data`);
    }
    const fields = {
      name: input.name,
      title: input.title?.trim() || input.name,
      description: input.description ?? '',
      rules: input.rules ?? '',
      task: input.task,
      trainReleaseId: train.id,
      testReleaseId: test.id,
      maskDownsample: input.maskDownsample ?? DEFAULTS.maskDownsample,
      threshold: input.threshold ?? DEFAULTS.threshold,
      dailyLimit: input.dailyLimit ?? DEFAULTS.dailyLimit,
      teamSize: input.teamSize ?? DEFAULTS.teamSize,
      leaderboardMode: input.leaderboardMode ?? DEFAULTS.leaderboardMode,
    };
    checkFigures(fields);
    try {
      const challenge = await this.repository.create(fields, this.clock());
      await this.record(actor, 'challenge.created', challenge, { train: input.train, test: input.test, task: input.task });
      return challenge;
    } catch (error) {
      if (error instanceof NameTaken) throw new AppError(409, 'challenge_exists', `A challenge named ${input.name} exists already`);
      throw error;
    }
  }

  /** Changes the settings; a change of the rules raises their version, which participants then accept again to submit. */
  async update(name: string, changes: ChallengeChanges, actor: ChallengeActor): Promise<Challenge> {
    const challenge = await this.get(name);
    checkFigures({ ...challenge, ...definedOnly(changes) });
    const rulesChanged = changes.rules !== undefined && changes.rules !== challenge.rules;
    await this.repository.update(challenge.id, changes, rulesChanged, this.clock());
    const updated = (await this.repository.findById(challenge.id))!;
    await this.record(actor, 'challenge.updated', challenge, { fields: Object.keys(definedOnly(changes)), rulesVersion: updated.rulesVersion });
    return updated;
  }

  async savePhase(name: string, phaseName: string, input: PhaseInput, actor: ChallengeActor): Promise<Phase> {
    const challenge = await this.get(name);
    if (!PHASE_NAME.test(phaseName)) throw new AppError(400, 'invalid_request', `"${phaseName}" is not a phase name: use lower-case letters, digits, ".", "_" and "-" (at most 50)`);
    if (!(input.closesAt > input.opensAt)) throw new AppError(400, 'invalid_request', 'A phase must close after it opens');
    if (input.dailyLimit !== null && (!Number.isInteger(input.dailyLimit) || input.dailyLimit < 1)) throw new AppError(400, 'invalid_request', 'A daily limit must be a whole number of at least 1');
    let slides = input.slides;
    if (slides !== null) {
      const test = await this.release(challenge.testReleaseId);
      const known = new Set(test.slides.map((s) => s.id));
      const strangers = slides.filter((id) => !known.has(id));
      if (strangers.length > 0) throw new AppError(400, 'invalid_request', `Slide(s) ${strangers.join(', ')} are not in the test release ${test.dataset}@${test.version}`);
      if (slides.length === 0) throw new AppError(400, 'invalid_request', 'A phase needs at least one test slide');
      slides = [...new Set(slides)].sort((a, b) => a - b);
    }
    const phase = await this.repository.savePhase(challenge.id, phaseName, { ...input, slides });
    await this.record(actor, 'challenge.phase_saved', challenge, { phase: phaseName, opensAt: input.opensAt.toISOString(), closesAt: input.closesAt.toISOString() });
    return phase;
  }

  async publishTruth(name: string, actor: ChallengeActor): Promise<Challenge> {
    const challenge = await this.get(name);
    if (challenge.truthPublishedAt !== null) throw new AppError(409, 'truth_published', `The truth of ${name} was published on ${challenge.truthPublishedAt.toISOString()} already`);
    await this.repository.publishTruth(challenge.id, this.clock());
    await this.record(actor, 'challenge.truth_published', challenge, {});
    return (await this.repository.findById(challenge.id))!;
  }

  /** Queues scored (or failed) submissions again, of one phase or of the whole challenge. */
  async rescore(name: string, options: { phase?: string; submission?: number }, actor: ChallengeActor): Promise<{ queued: number }> {
    const challenge = await this.get(name);
    let submissions = await this.repository.challengeSubmissions(challenge.id, ['scored', 'failed']);
    if (options.phase !== undefined) {
      const phase = await this.phase(challenge, options.phase);
      submissions = submissions.filter((s) => s.phaseId === phase.id);
    }
    if (options.submission !== undefined) submissions = submissions.filter((s) => s.id === options.submission);
    const queued = await this.repository.requeue(submissions.map((s) => s.id));
    await this.record(actor, 'challenge.rescored', challenge, { queued, ...(options.phase ? { phase: options.phase } : {}), ...(options.submission ? { submission: options.submission } : {}) });
    return { queued };
  }

  // Reading

  async get(name: string): Promise<Challenge> {
    const challenge = await this.repository.findByName(name);
    if (!challenge) throw notFound('challenge_not_found', `There is no challenge named ${name}`);
    return challenge;
  }

  async list(requester: Requester) {
    const now = this.clock();
    const joined = new Set(requester.user ? await this.repository.joinedChallengeIds(requester.user.id) : []);
    const items = [];
    for (const challenge of await this.repository.list()) {
      const phases = await this.repository.phases(challenge.id);
      items.push({ ...this.summary(challenge, phases, now), joined: joined.has(challenge.id) });
    }
    return items;
  }

  /** One challenge as a participant (or a visitor) sees it: the overview, rules, phases, data links, their team and submissions. */
  async overview(name: string, requester: Requester) {
    const now = this.clock();
    const challenge = await this.get(name);
    const phases = await this.repository.phases(challenge.id);
    const userId = requester.user?.id;
    const participation = userId === undefined ? undefined : await this.repository.participant(challenge.id, userId);
    const team = userId === undefined ? undefined : await this.repository.teamOf(challenge.id, userId);
    const data = participation || isAdmin(requester) ? await this.dataLinks(challenge) : null;
    const invitations = requester.user && participation && !team ? await this.repository.invitationsFor(challenge.id, requester.user.email) : [];
    const submissions = team ? await this.submissionsOf(challenge, team.id) : [];
    return {
      ...this.summary(challenge, phases, now),
      rules: challenge.rules,
      rulesVersion: challenge.rulesVersion,
      descriptionHtml: renderMarkdown(challenge.description),
      rulesHtml: renderMarkdown(challenge.rules),
      participation: participation ? { rulesVersion: participation.rulesVersion, acceptedAt: participation.acceptedAt, mustAcceptAgain: participation.rulesVersion < challenge.rulesVersion } : null,
      data,
      team: team ? teamView(team) : null,
      invitations: invitations.map((i) => ({ teamId: i.teamId, team: i.teamName, invitedAt: i.createdAt })),
      submissions,
    };
  }

  /** The team's submissions, newest first, each with its per-slide results. */
  async mySubmissions(name: string, requester: Requester) {
    const challenge = await this.get(name);
    const team = requester.user ? await this.repository.teamOf(challenge.id, requester.user.id) : undefined;
    return team ? this.submissionsOf(challenge, team.id) : [];
  }

  async submissionFor(name: string, id: number, requester: Requester) {
    const challenge = await this.get(name);
    const submission = await this.repository.submission(id);
    const team = requester.user ? await this.repository.teamOf(challenge.id, requester.user.id) : undefined;
    if (!submission || submission.challengeId !== challenge.id || (!isAdmin(requester) && submission.teamId !== team?.id)) {
      throw notFound('submission_not_found', `There is no submission ${id} of your team in ${name}`);
    }
    const phases = new Map((await this.repository.phases(challenge.id)).map((p) => [p.id, p.name]));
    return { ...submissionView(submission, phases), results: await this.repository.results(submission.id) };
  }

  async leaderboard(name: string, phaseName: string | undefined, requester: Pick<Requester, 'roles'>): Promise<Leaderboard> {
    const now = this.clock();
    const challenge = await this.get(name);
    const phase = phaseName !== undefined ? await this.phase(challenge, phaseName) : await this.defaultPhase(challenge, now);
    const state = phaseState(phase, now);
    if (phase.leaderboard === 'hidden' && state !== 'closed' && !isAdmin(requester)) {
      throw new AppError(403, 'leaderboard_hidden', `The leaderboard of ${name} ${phase.name} is shown when the phase closes, on ${phase.closesAt.toISOString()}`);
    }
    const rows = await this.repository.scored(phase.id);
    const chosen = new Map<number, (typeof rows)[number]>();
    for (const row of rows.filter((r) => !r.submission.late)) {
      const held = chosen.get(row.submission.teamId);
      if (!held) chosen.set(row.submission.teamId, row);
      else if (challenge.leaderboardMode === 'latest') {
        if (row.submission.createdAt >= held.submission.createdAt) chosen.set(row.submission.teamId, row);
      } else if (compareScores(row.submission, held.submission) > 0) chosen.set(row.submission.teamId, row);
    }
    const final = state === 'closed';
    const entries = [...chosen.values()].map((row) => ({
      team: row.teamName,
      teamId: row.submission.teamId,
      submissionId: row.submission.id,
      score: row.submission.score!,
      tieBreakers: row.submission.tieBreakers ?? [],
      metrics: row.submission.metrics ?? {},
      submittedAt: row.submission.createdAt,
    }));
    const ranked = rankEntries(entries);
    const withIntervals: LeaderboardEntry[] = [];
    for (const entry of ranked.sort((a, b) => a.rank - b.rank || a.submissionId - b.submissionId)) {
      let interval: LeaderboardEntry['interval'] = null;
      if (final) {
        const perSlide = (await this.repository.results(entry.submissionId)).map((r) => r.score);
        if (perSlide.length > 0) interval = bootstrapInterval(perSlide, { seed: entry.submissionId });
      }
      withIntervals.push({ ...entry, interval });
    }
    const late = rows
      .filter((r) => r.submission.late)
      .map((row) => ({
        team: row.teamName,
        teamId: row.submission.teamId,
        submissionId: row.submission.id,
        score: row.submission.score!,
        tieBreakers: row.submission.tieBreakers ?? [],
        metrics: row.submission.metrics ?? {},
        submittedAt: row.submission.createdAt,
      }));
    return { challenge: challenge.name, phase: phase.name, state, mode: challenge.leaderboardMode, final, entries: withIntervals, late };
  }

  leaderboardCsv(board: Leaderboard): string {
    const rows = [
      ...board.entries.map((e) => ({ rank: e.rank, team: e.team, submission: e.submissionId, score: e.score, low: e.interval?.low ?? null, high: e.interval?.high ?? null, submitted_at: e.submittedAt.toISOString(), late: 'no' })),
      ...board.late.map((e) => ({ rank: null, team: e.team, submission: e.submissionId, score: e.score, low: null, high: null, submitted_at: e.submittedAt.toISOString(), late: 'yes' })),
    ];
    return csvText(rows, { columns: ['rank', 'team', 'submission', 'score', 'low', 'high', 'submitted_at', 'late'] });
  }

  // Participants

  async join(name: string, rulesVersion: number, actor: ChallengeActor): Promise<{ rulesVersion: number; acceptedAt: Date }> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    if (rulesVersion !== challenge.rulesVersion) {
      throw new AppError(409, 'rules_changed', `The rules of ${name} are at version ${challenge.rulesVersion}; read them again and accept version ${challenge.rulesVersion}`);
    }
    const now = this.clock();
    await this.repository.accept(challenge.id, user.id, challenge.rulesVersion, now);
    await this.record(actor, 'challenge.joined', challenge, { rulesVersion: challenge.rulesVersion });
    return { rulesVersion: challenge.rulesVersion, acceptedAt: now };
  }

  async createTeam(name: string, teamName: string, actor: ChallengeActor): Promise<Team> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    await this.assertParticipant(challenge, user.id);
    const trimmed = teamName.trim();
    if (trimmed === '' || trimmed.length > 100) throw new AppError(400, 'invalid_request', 'A team name must be 1 to 100 characters');
    try {
      const team = await this.repository.createTeam(challenge.id, trimmed, user.id, this.clock());
      await this.record(actor, 'challenge.team_created', challenge, { team: team.id });
      return team;
    } catch (error) {
      if (error instanceof AlreadyInTeam) throw new AppError(409, 'already_in_team', `You are in a team of ${name} already; leave it first`);
      if (error instanceof NameTaken) throw new AppError(409, 'team_name_taken', `A team of ${name} is called ${trimmed} already`);
      throw error;
    }
  }

  async invite(name: string, email: string, actor: ChallengeActor): Promise<{ email: string; invitedAt: Date }> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    const team = await this.repository.teamOf(challenge.id, user.id);
    if (!team) throw new AppError(409, 'no_team', `You are not in a team of ${name}: create one first`);
    if (team.members.length >= challenge.teamSize) throw new AppError(409, 'team_full', `Team ${team.name} has ${team.members.length} members, the most ${name} allows`);
    const address = email.trim().toLowerCase();
    if (team.members.some((m) => m.email.toLowerCase() === address)) throw new AppError(409, 'already_member', `${address} is in team ${team.name} already`);
    const invitation = await this.repository.invite(team.id, address, user.id, this.clock());
    await this.record(actor, 'challenge.invited', challenge, { team: team.id });
    const link = `${this.site.publicUrl.replace(/\/$/, '')}/challenges/${challenge.name}`;
    const text = [
      `${user.name || user.email} invites you to join team "${team.name}" in the challenge "${challenge.title}".`,
      '',
      `To accept, log in, join the challenge (accept its rules) and accept the invitation: ${link}`,
      '',
      'If you do not know the sender, ignore this message.',
    ].join('\n');
    try {
      await this.mailer.send({
        to: address,
        subject: `Invitation to team ${team.name.replace(/[\r\n]+/g, ' ')} in ${challenge.title.replace(/[\r\n]+/g, ' ')}`,
        text,
        html: text
          .split('\n\n')
          .map((p) => `<p>${escapeHtml(p)}</p>`)
          .join('\n'),
      });
    } catch (error) {
      this.log.warn({ err: error, challenge: challenge.name }, 'challenges: the invitation could not be mailed');
    }
    return { email: invitation.email, invitedAt: invitation.createdAt };
  }

  async acceptInvitation(name: string, teamId: number, actor: ChallengeActor): Promise<Team> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    await this.assertParticipant(challenge, user.id);
    const invitation = (await this.repository.invitationsFor(challenge.id, user.email)).find((i) => i.teamId === teamId);
    if (!invitation) throw notFound('invitation_not_found', `You have no open invitation to team ${teamId} of ${name}`);
    let added: boolean;
    try {
      added = await this.repository.addMember({ id: teamId, challengeId: challenge.id }, user.id, challenge.teamSize, this.clock());
    } catch (error) {
      if (error instanceof AlreadyInTeam) throw new AppError(409, 'already_in_team', `You are in a team of ${name} already; leave it first`);
      throw error;
    }
    if (!added) throw new AppError(409, 'team_full', `Team ${invitation.teamName} has the most members ${name} allows (${challenge.teamSize})`);
    await this.repository.markAccepted(invitation.id, this.clock());
    await this.record(actor, 'challenge.team_joined', challenge, { team: teamId });
    return (await this.repository.team(teamId))!;
  }

  async leaveTeam(name: string, actor: ChallengeActor): Promise<void> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    const team = await this.repository.teamOf(challenge.id, user.id);
    if (!team) throw new AppError(409, 'no_team', `You are not in a team of ${name}`);
    await this.repository.removeMember(team.id, user.id);
    await this.record(actor, 'challenge.team_left', challenge, { team: team.id });
  }

  // Submissions

  /**
   * Takes an uploaded archive for a phase (default: the phase open now):
   * refused before anything is recorded when the submitter has not joined,
   * the phase is not open (a closed phase named explicitly takes it as late)
   * or the team's daily limit is used; then validated: an invalid archive is
   * recorded with its report and costs nothing from the limit; a valid one is
   * kept and queued for scoring.
   */
  async submit(name: string, phaseName: string | undefined, upload: UploadedArchive, actor: ChallengeActor): Promise<SubmitOutcome> {
    try {
      return await this.submitArchive(name, phaseName, upload, actor);
    } finally {
      await rm(upload.file, { force: true });
    }
  }

  /**
   * Submits a complete resumable upload exactly as if its bytes had come as
   * the request body. Once a submission is recorded (queued or invalid) the
   * upload is consumed; a refusal before that (not joined, no phase open,
   * the daily limit) keeps it, to be submitted later.
   */
  async submitUpload(name: string, phaseName: string | undefined, uploadId: string, actor: ChallengeActor): Promise<SubmitOutcome> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    const upload = await this.uploads.own(challenge.id, user.id, uploadId);
    const held = await this.uploads.hold(upload);
    let outcome: SubmitOutcome;
    try {
      outcome = await this.submitArchive(name, phaseName, { file: held.file, fileName: upload.fileName, size: upload.size }, actor);
    } catch (error) {
      await held.release();
      throw error;
    }
    await held.consume();
    return outcome;
  }

  /** Starts a resumable upload of an archive of `size` bytes for the requester, a participant. */
  async createUpload(name: string, fields: { fileName: string; size: number }, actor: ChallengeActor): Promise<UploadView> {
    const user = userOf(actor);
    const challenge = await this.get(name);
    const participation = await this.assertParticipant(challenge, user.id);
    if (participation.rulesVersion < challenge.rulesVersion) {
      throw new AppError(409, 'rules_changed', `The rules of ${name} changed (version ${challenge.rulesVersion}); accept them again before you submit`);
    }
    if (fields.size > this.settings.maxUploadBytes) {
      throw new AppError(413, 'submission_too_large', `A submission must be at most ${this.settings.maxUploadBytes / 1024 ** 3} GiB; this one is ${fields.size} bytes`);
    }
    if (!archiveExtension(fields.fileName)) throw new AppError(415, 'unsupported_archive', 'Send a .zip, .tar or .tar.gz archive (the file name tells which)');
    return uploadView(await this.uploads.create({ challengeId: challenge.id, userId: user.id, fileName: fields.fileName, size: fields.size }));
  }

  /** The requester's upload: how much has arrived. */
  async uploadState(name: string, uploadId: string, actor: ChallengeActor): Promise<UploadView> {
    const challenge = await this.get(name);
    return uploadView(await this.uploads.own(challenge.id, userOf(actor).id, uploadId));
  }

  /** Appends a chunk to the requester's upload (see ChallengeUploads.append). */
  async uploadChunk(name: string, uploadId: string, range: ChunkRange, body: Readable, actor: ChallengeActor): Promise<UploadView> {
    const challenge = await this.get(name);
    const upload = await this.uploads.own(challenge.id, userOf(actor).id, uploadId);
    return uploadView(await this.uploads.append(upload, range, body));
  }

  async deleteUpload(name: string, uploadId: string, actor: ChallengeActor): Promise<void> {
    const challenge = await this.get(name);
    await this.uploads.remove(await this.uploads.own(challenge.id, userOf(actor).id, uploadId));
  }

  /** Takes an archive in a file for a phase; the caller removes the file afterwards unless it was kept (renamed into place). */
  private async submitArchive(name: string, phaseName: string | undefined, upload: UploadedArchive, actor: ChallengeActor): Promise<SubmitOutcome> {
    const user = userOf(actor);
    const now = this.clock();
    const challenge = await this.get(name);
    const participation = await this.assertParticipant(challenge, user.id);
    if (participation.rulesVersion < challenge.rulesVersion) {
      throw new AppError(409, 'rules_changed', `The rules of ${name} changed (version ${challenge.rulesVersion}); accept them again before you submit`);
    }
    const phase = phaseName !== undefined ? await this.phase(challenge, phaseName) : await this.openPhase(challenge, now);
    const state = phaseState(phase, now);
    if (state === 'upcoming') throw new AppError(409, 'phase_not_open', `The ${phase.name} phase of ${name} opens on ${phase.opensAt.toISOString()}; submissions are taken from then`);
    const extension = archiveExtension(upload.fileName);
    if (!extension) throw new AppError(415, 'unsupported_archive', 'Send a .zip, .tar or .tar.gz archive');
    const team = (await this.repository.teamOf(challenge.id, user.id)) ?? (await this.teamOfOne(challenge, user));
    const limit = phase.dailyLimit ?? challenge.dailyLimit;
    const used = await this.repository.countedSince(phase.id, team.id, dayStart(now));
    if (used >= limit) {
      const tomorrow = new Date(dayStart(now).getTime() + 86_400_000);
      throw new AppError(429, 'daily_limit_reached', `Team ${team.name} has made ${used} submission(s) to ${name} ${phase.name} today, the most allowed (${limit}); the next is taken from ${tomorrow.toISOString()}`, {
        details: { limit, used, retryAt: tomorrow.toISOString(), retryAfterSeconds: Math.max(1, Math.ceil((tomorrow.getTime() - now.getTime()) / 1000)) },
      });
    }
    const spec = await this.spec(challenge, phase);
    const report = await validateSubmission(upload.file, spec);
    const late = state === 'closed';
    if (!report.ok) {
      const submission = await this.repository.insertSubmission(
        { challengeId: challenge.id, phaseId: phase.id, teamId: team.id, userId: user.id, fileName: upload.fileName, size: upload.size, status: 'invalid', report, late },
        now,
      );
      await this.record(actor, 'challenge.submitted', challenge, { submission: submission.id, phase: phase.name, team: team.id, status: 'invalid' });
      return { kind: 'invalid', submission, report };
    }
    const submission = await this.repository.insertSubmission(
      { challengeId: challenge.id, phaseId: phase.id, teamId: team.id, userId: user.id, fileName: upload.fileName, size: upload.size, status: 'queued', report, late },
      now,
    );
    const target = this.archivePath(challenge.id, submission.id, extension);
    await mkdir(path.dirname(target), { recursive: true });
    await rename(upload.file, target);
    await this.record(actor, 'challenge.submitted', challenge, { submission: submission.id, phase: phase.name, team: team.id, status: 'queued', late });
    return { kind: 'queued', submission, report };
  }

  /** Validates and scores an archive as the organisers would, recording nothing (`slidebank challenge score`). */
  async scoreFile(name: string, phaseName: string | undefined, archive: string) {
    const challenge = await this.get(name);
    const phase = phaseName !== undefined ? await this.phase(challenge, phaseName) : await this.defaultPhase(challenge, this.clock());
    const spec = await this.spec(challenge, phase);
    const report = await validateSubmission(archive, spec);
    if (!report.ok) return { challenge: challenge.name, phase: phase.name, valid: false as const, report };
    const test = await this.release(challenge.testReleaseId);
    const score = await scoreSubmission(archive, spec, (slide) => this.truthOf(test, slide));
    return { challenge: challenge.name, phase: phase.name, valid: true as const, ...score };
  }

  /** Scores queued submissions one at a time until none waits (or `max` were scored); the scheduled job and tests call it. */
  async scorePending({ max = Infinity }: { max?: number } = {}): Promise<{ scored: number; invalid: number; failed: number }> {
    const counts = { scored: 0, invalid: 0, failed: 0 };
    for (let done = 0; done < max; done++) {
      const submission = await this.repository.claim(this.clock(), new Date(this.clock().getTime() + LEASE_MS));
      if (!submission) break;
      counts[await this.scoreOne(submission)]++;
    }
    return counts;
  }

  private async scoreOne(submission: Submission): Promise<'scored' | 'invalid' | 'failed'> {
    try {
      const challenge = (await this.repository.findById(submission.challengeId))!;
      const phase = (await this.repository.phaseById(submission.phaseId))!;
      const spec = await this.spec(challenge, phase);
      const test = await this.release(challenge.testReleaseId);
      const extension = archiveExtension(submission.fileName) ?? '.zip';
      const archive = this.archivePath(challenge.id, submission.id, extension);
      let last = 0;
      const score = await scoreSubmission(archive, spec, (slide) => this.truthOf(test, slide), (done, total) => {
        const fraction = total > 0 ? done / total : 0;
        if (fraction - last >= 0.05 || done === total) {
          last = fraction;
          void this.repository.progress(submission.id, fraction, new Date(this.clock().getTime() + LEASE_MS)).catch(() => {});
        }
      });
      await this.repository.finishScored(submission.id, score, this.clock());
      return 'scored';
    } catch (error) {
      if (error instanceof SubmissionInvalid) {
        await this.repository.finishInvalid(submission.id, error.report);
        return 'invalid';
      }
      this.log.error({ err: error, submission: submission.id }, 'challenges: scoring failed');
      await this.repository.finishFailed(submission.id, (error as Error).message ?? String(error));
      return 'failed';
    }
  }

  // Access to the challenge's data

  /**
   * Whether a participant may download this file of the challenge's data:
   * training slides with their annotations, test slides without theirs
   * (with them once the truth is published). Administrators may always.
   */
  async assertMayDownload(name: string, slideId: number, kind: 'slide' | 'annotation', requester: Requester): Promise<void> {
    const challenge = await this.get(name);
    if (!isAdmin(requester)) {
      const user = requester.user;
      if (!user || !(await this.repository.participant(challenge.id, user.id))) {
        throw new AppError(403, 'not_participant', `Join ${name} (accept its rules) to download its data`);
      }
    }
    const train = await this.release(challenge.trainReleaseId);
    if (train.slides.some((s) => s.id === slideId)) return;
    const test = await this.release(challenge.testReleaseId);
    if (!test.slides.some((s) => s.id === slideId)) throw notFound('slide_not_found', `Slide ${slideId} is not part of ${name}`);
    if (kind === 'annotation' && challenge.truthPublishedAt === null && !isAdmin(requester)) {
      throw new AppError(403, 'truth_hidden', `The annotation of slide ${slideId} is the hidden truth of ${name}; it is published when the challenge ends`);
    }
  }

  // Helpers

  private summary(challenge: Challenge, phases: Phase[], now: Date) {
    const states = phases.map((p) => phaseState(p, now));
    const status = states.includes('open') ? 'open' : states.length > 0 && states.every((s) => s === 'closed') ? 'past' : 'upcoming';
    return {
      name: challenge.name,
      title: challenge.title,
      description: challenge.description,
      task: challenge.task,
      status: status as 'open' | 'past' | 'upcoming',
      maskDownsample: challenge.maskDownsample,
      threshold: challenge.threshold,
      dailyLimit: challenge.dailyLimit,
      teamSize: challenge.teamSize,
      leaderboardMode: challenge.leaderboardMode,
      truthPublished: challenge.truthPublishedAt !== null,
      phases: phases.map((p, i) => ({
        name: p.name,
        opensAt: p.opensAt,
        closesAt: p.closesAt,
        state: states[i]!,
        slides: p.slides,
        dailyLimit: p.dailyLimit ?? challenge.dailyLimit,
        leaderboard: p.leaderboard,
      })),
    };
  }

  private async dataLinks(challenge: Challenge) {
    const base = `/api/challenges/${challenge.name}/files`;
    const train = await this.release(challenge.trainReleaseId);
    const test = await this.release(challenge.testReleaseId);
    const published = challenge.truthPublishedAt !== null;
    return {
      train: {
        release: `${train.dataset}@${train.version}`,
        slides: train.slides.map((s) => ({ id: s.id, name: s.name, width: s.facts.width, height: s.facts.height, slide: `${base}/${s.id}/slide`, annotation: s.annotation ? `${base}/${s.id}/annotation` : null })),
      },
      test: {
        release: `${test.dataset}@${test.version}`,
        slides: test.slides.map((s) => ({ id: s.id, name: s.name, width: s.facts.width, height: s.facts.height, slide: `${base}/${s.id}/slide`, annotation: published && s.annotation ? `${base}/${s.id}/annotation` : null })),
      },
    };
  }

  private async submissionsOf(challenge: Challenge, teamId: number) {
    const phases = new Map((await this.repository.phases(challenge.id)).map((p) => [p.id, p.name]));
    const out = [];
    for (const submission of await this.repository.teamSubmissions(challenge.id, teamId)) {
      out.push({ ...submissionView(submission, phases), results: await this.repository.results(submission.id) });
    }
    return out;
  }

  private async assertParticipant(challenge: Challenge, userId: number) {
    const participation = await this.repository.participant(challenge.id, userId);
    if (!participation) throw new AppError(403, 'not_participant', `Join ${challenge.name} first: accept its rules`);
    return participation;
  }

  /** A participant without a team submits as a team of one, made for them now and named after them. */
  private async teamOfOne(challenge: Challenge, user: { id: number; name: string; email: string }): Promise<Team> {
    const base = (user.name || user.email.split('@')[0] || 'team').slice(0, 80);
    for (let attempt = 0; attempt < 5; attempt++) {
      const name = attempt === 0 ? base : `${base} (${randomBytes(2).toString('hex')})`;
      try {
        return await this.repository.createTeam(challenge.id, name, user.id, this.clock());
      } catch (error) {
        if (error instanceof AlreadyInTeam) return (await this.repository.teamOf(challenge.id, user.id))!;
        if (!(error instanceof NameTaken)) throw error;
      }
    }
    throw new AppError(409, 'team_name_taken', 'No free team name was found; create a team yourself');
  }

  private async phase(challenge: Challenge, name: string): Promise<Phase> {
    const phase = await this.repository.phase(challenge.id, name);
    if (!phase) {
      const names = (await this.repository.phases(challenge.id)).map((p) => p.name);
      throw notFound('phase_not_found', `${challenge.name} has no phase ${name}${names.length ? ` (it has ${names.join(', ')})` : ' (it has none yet)'}`);
    }
    return phase;
  }

  /** The phase open now; none open is a refusal that says when the next opens or the last closed. */
  private async openPhase(challenge: Challenge, now: Date): Promise<Phase> {
    const phases = await this.repository.phases(challenge.id);
    const open = phases.find((p) => phaseState(p, now) === 'open');
    if (open) return open;
    const next = phases.find((p) => phaseState(p, now) === 'upcoming');
    if (next) throw new AppError(409, 'phase_not_open', `No phase of ${challenge.name} is open now; ${next.name} opens on ${next.opensAt.toISOString()}`);
    if (phases.length === 0) throw new AppError(409, 'phase_not_open', `${challenge.name} has no phases yet; submissions are taken once a phase opens`);
    const last = phases.at(-1)!;
    throw new AppError(409, 'phase_not_open', `No phase of ${challenge.name} is open now; ${last.name} closed on ${last.closesAt.toISOString()} (name the phase to submit late: scored and shown apart)`);
  }

  /** The phase a leaderboard or a score shows by default: the open one, else the last to have opened, else the first. */
  private async defaultPhase(challenge: Challenge, now: Date): Promise<Phase> {
    const phases = await this.repository.phases(challenge.id);
    if (phases.length === 0) throw notFound('phase_not_found', `${challenge.name} has no phases yet`);
    return phases.find((p) => phaseState(p, now) === 'open') ?? [...phases].reverse().find((p) => phaseState(p, now) === 'closed') ?? phases[0]!;
  }

  private async spec(challenge: Challenge, phase: Phase): Promise<ScoringSpec> {
    const test = await this.release(challenge.testReleaseId);
    const chosen = phase.slides === null ? test.slides : test.slides.filter((s) => phase.slides!.includes(s.id));
    return {
      task: challenge.task,
      slides: chosen.map((s): ChallengeSlide => ({ name: s.name, width: s.facts.width, height: s.facts.height })),
      maskDownsample: challenge.maskDownsample,
      threshold: challenge.threshold,
    };
  }

  /** The truth of a test slide, from the annotation file its release froze: layer 1 the whole tumour, layer 2 the viable tumour (PAIP 2019), the label its histology. */
  private async truthOf(release: Release, slide: ChallengeSlide): Promise<SlideTruth> {
    const released = release.slides.find((s) => s.name === slide.name);
    if (!released) throw new Error(`slide ${slide.name} is not in ${release.dataset}@${release.version}`);
    return truthFromRelease(released, path.join(this.settings.releasesDir, String(release.datasetId), release.version));
  }

  private async release(id: number): Promise<Release> {
    const release = await this.repository.release(id);
    if (!release) throw new Error(`dataset release ${id} is gone`);
    return release;
  }

  private async findRelease(text: string, option: string): Promise<Release> {
    const { dataset, version } = parseRelease(text, option);
    return this.releases(dataset, version);
  }

  private archivePath(challengeId: number, submissionId: number, extension: string): string {
    return path.join(this.settings.dataDir, String(challengeId), 'submissions', `${submissionId}${extension}`);
  }

  private async record(actor: ChallengeActor, action: string, challenge: Challenge, details: Record<string, unknown>): Promise<void> {
    await this.audit.record({ action, actorId: actor.requester.user?.id ?? null, subjectType: 'challenge', subjectId: challenge.id, ip: actor.ip, details: { challenge: challenge.name, ...details } });
  }
}

/** The truth of one released slide from its frozen annotation file; a slide without one has empty truth. */
export async function truthFromRelease(slide: ReleasedSlide, releaseDir: string): Promise<SlideTruth> {
  const label = slide.metadata.histology || null;
  if (!slide.annotation) return { tumour: [], viable: [], label };
  const doc = parseAperioXml(await readFile(path.join(releaseDir, slide.annotation.fileName), 'utf8'));
  const polygons = (layerId: number) =>
    toGeoJson(doc)
      .features.filter((f) => f.geometry.type === 'Polygon' && f.properties.layerId === layerId)
      .map((f) => f.geometry.coordinates as number[][][]);
  const ids = doc.layers.map((l) => l.id);
  const tumourId = ids.includes(1) ? 1 : (ids[0] ?? 1);
  const viableId = ids.includes(2) ? 2 : tumourId;
  return { tumour: polygons(tumourId), viable: polygons(viableId), label };
}

function userOf(actor: ChallengeActor): { id: number; name: string; email: string } {
  const user = actor.requester.user;
  if (!user) throw new AppError(401, 'unauthenticated', 'Log in (or send a personal access token) to use this');
  return user;
}

function teamView(team: Team) {
  return { id: team.id, name: team.name, createdAt: team.createdAt, members: team.members.map((m) => ({ name: m.name, email: m.email, joinedAt: m.joinedAt })) };
}

export function submissionView(submission: Submission, phases: Map<number, string>) {
  return {
    id: submission.id,
    phase: phases.get(submission.phaseId) ?? '',
    fileName: submission.fileName,
    size: submission.size,
    status: submission.status,
    progress: submission.progress,
    score: submission.score,
    tieBreakers: submission.tieBreakers,
    metrics: submission.metrics,
    report: (submission.report ?? null) as ValidationReport | null,
    error: submission.error,
    late: submission.late,
    submittedAt: submission.createdAt,
    scoredAt: submission.scoredAt,
  };
}

function compareScores(a: Submission, b: Submission): number {
  if (a.score! !== b.score!) return a.score! - b.score!;
  const ta = a.tieBreakers ?? [];
  const tb = b.tieBreakers ?? [];
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    if ((ta[i] ?? 0) !== (tb[i] ?? 0)) return (ta[i] ?? 0) - (tb[i] ?? 0);
  }
  return b.id - a.id;
}

function definedOnly<T extends object>(changes: T): Partial<T> {
  return Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function checkFigures(fields: { maskDownsample: number; threshold: number; dailyLimit: number; teamSize: number }): void {
  const problems: string[] = [];
  if (!Number.isInteger(fields.maskDownsample) || fields.maskDownsample < 1 || fields.maskDownsample > 1024) problems.push('the mask downsample must be a whole number from 1 to 1024');
  if (!(fields.threshold >= 0 && fields.threshold <= 1)) problems.push('the Jaccard threshold must be from 0 to 1');
  if (!Number.isInteger(fields.dailyLimit) || fields.dailyLimit < 1) problems.push('the daily limit must be a whole number of at least 1');
  if (!Number.isInteger(fields.teamSize) || fields.teamSize < 1) problems.push('the team size must be a whole number of at least 1');
  if (problems.length > 0) throw new AppError(400, 'invalid_request', `${problems.join('; ')}`.replace(/^./, (c) => c.toUpperCase()));
}
