import { z } from 'zod';
import { timestamp } from '../../lib/schema-types.js';
import { CHALLENGE_NAME, CHALLENGE_TASKS, LEADERBOARD_MODES, LEADERBOARD_VISIBILITY, PHASE_NAME, SUBMISSION_STATUSES } from '../../challenges/model.js';
import { MAX_ID } from '../params.js';

/** Input and answers of the challenge routes (server/http/routes/challenges.ts). */

export const challengePath = z.strictObject({
  name: z.string().regex(CHALLENGE_NAME, 'No challenge with that name').meta({ description: "The challenge's name", 'x-not-found': 'challenge_not_found' }),
});

const id = (entity: string) =>
  z
    .string()
    .regex(/^[1-9]\d{0,9}$/, `No ${entity} with that id`)
    .transform(Number)
    .refine((n) => n <= MAX_ID, `No ${entity} with that id`)
    .meta({ description: `The ${entity}'s id`, 'x-not-found': `${entity}_not_found` });

export const challengeFilePath = challengePath.extend({
  slide: id('slide'),
  kind: z.enum(['slide', 'annotation'], { error: 'No such file: slide or annotation' }).meta({ description: 'slide or annotation', 'x-not-found': 'not_found' }),
});
export const challengeSubmissionPath = challengePath.extend({ id: id('submission') });
export const challengeTeamPath = challengePath.extend({ team: id('team') });
const uploadId = z
  .string()
  .regex(/^[0-9a-f]{24}$/, 'No upload with that id')
  .meta({ description: "The upload's id, as POST /api/challenges/{name}/uploads answered it", 'x-not-found': 'upload_not_found' });
export const challengeUploadPath = challengePath.extend({ id: uploadId });
export const challengePhasePath = challengePath.extend({
  phase: z.string().regex(PHASE_NAME, 'No phase with that name').meta({ description: "The phase's name", 'x-not-found': 'phase_not_found' }),
});

const phaseQueryField = z
  .string({ error: 'phase must be a phase name' })
  .regex(PHASE_NAME, 'phase must be a phase name such as validation or test')
  .optional()
  .meta({ description: 'The phase (default: the phase open now; for leaderboards the last to have opened)' });

export const leaderboardQuery = z.strictObject({
  phase: phaseQueryField,
  format: z.enum(['json', 'csv'], { error: 'format must be json or csv' }).optional().meta({ description: 'json (the default) or csv (administrators)' }),
});
export const submitQuery = z.strictObject({
  phase: phaseQueryField,
  file: z
    .string({ error: 'file must be a file name' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]{0,199}$/, 'file must be a plain file name ending in .zip, .tar or .tar.gz')
    .optional()
    .meta({ description: "The archive's file name for a raw body (default from Content-Type: submission.zip, .tar or .tar.gz)" }),
  upload: z
    .string({ error: 'upload must be an upload id' })
    .regex(/^[0-9a-f]{24}$/, 'upload must be the id of one of your uploads')
    .optional()
    .meta({ description: 'Submit this complete resumable upload instead of a request body' }),
});

export const newUpload = z
  .strictObject({
    fileName: z
      .string({ error: 'fileName must be text' })
      .min(1, 'fileName must not be empty')
      .max(200, 'fileName must be at most 200 characters')
      .refine((name) => ![...name].some((c) => c === '/' || c === '\\' || c.charCodeAt(0) < 32 || c.charCodeAt(0) === 127), 'fileName must be a file name, without folders or control characters')
      .meta({ description: "The archive's file name, ending in .zip, .tar, .tar.gz or .tgz" }),
    size: z
      .number({ error: 'size must be a number' })
      .int('size must be a whole number of bytes')
      .min(1, 'size must be at least 1 byte')
      .max(Number.MAX_SAFE_INTEGER, 'size is too large')
      .meta({ description: 'The whole archive in bytes; at most 2 GiB (413 submission_too_large)' }),
  })
  .meta({ id: 'NewChallengeUpload' });

export const uploadView = z
  .object({
    id: z.string(),
    fileName: z.string(),
    offset: z.number().int().meta({ description: 'Bytes received so far: the next chunk starts here' }),
    size: z.number().int(),
    expiresAt: timestamp.meta({ description: 'When the upload is dropped unless a chunk arrives before (24 hours after the last one)' }),
  })
  .meta({ id: 'ChallengeUpload' });

const text = (field: string, max: number) => z.string({ error: `${field} must be text` }).max(max, `${field} must be at most ${max} characters`);
const release = (field: string) =>
  z
    .string({ error: `${field} must be a release such as liver@1` })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}@[A-Za-z0-9][A-Za-z0-9._+-]{0,49}$/, `${field} must name a dataset release as DATASET@VERSION, such as liver@1`);
const whole = (field: string, min: number, max: number) =>
  z.number({ error: `${field} must be a number` }).int(`${field} must be a whole number`).min(min, `${field} must be at least ${min}`).max(max, `${field} must be at most ${max}`);
const threshold = z.number({ error: 'threshold must be a number' }).min(0, 'threshold must be from 0 to 1').max(1, 'threshold must be from 0 to 1');
const task = z.enum(CHALLENGE_TASKS, { error: `task must be one of ${CHALLENGE_TASKS.join(', ')}` });
const mode = z.enum(LEADERBOARD_MODES, { error: 'leaderboardMode must be best or latest' });

export const newChallenge = z
  .strictObject({
    name: z.string({ error: 'name must be text' }).regex(CHALLENGE_NAME, 'name must be lower-case letters, digits, ".", "_" and "-", starting with a letter or digit'),
    title: text('title', 200).optional(),
    description: text('description', 50_000).optional().meta({ description: 'Markdown' }),
    rules: text('rules', 100_000).optional().meta({ description: 'Markdown; participants accept them to join' }),
    task,
    train: release('train'),
    test: release('test'),
    maskDownsample: whole('maskDownsample', 1, 1024).optional().meta({ description: 'Default 16' }),
    threshold: threshold.optional().meta({ description: 'The Jaccard threshold; default 0.65' }),
    dailyLimit: whole('dailyLimit', 1, 1000).optional().meta({ description: 'Submissions per team and phase per UTC day; default 5' }),
    teamSize: whole('teamSize', 1, 100).optional().meta({ description: 'Default 5' }),
    leaderboardMode: mode.optional().meta({ description: 'best (the default) or latest submission of each team' }),
  })
  .meta({ id: 'NewChallenge' });

export const challengeChanges = z
  .strictObject({
    title: text('title', 200).optional(),
    description: text('description', 50_000).optional(),
    rules: text('rules', 100_000).optional().meta({ description: 'A change raises the rules version; participants accept it again before submitting' }),
    task: task.optional(),
    maskDownsample: whole('maskDownsample', 1, 1024).optional(),
    threshold: threshold.optional(),
    dailyLimit: whole('dailyLimit', 1, 1000).optional(),
    teamSize: whole('teamSize', 1, 100).optional(),
    leaderboardMode: mode.optional(),
  })
  .meta({ id: 'ChallengeChanges' });

const moment = (field: string) =>
  z
    .string({ error: `${field} must be an ISO 8601 time such as 2027-01-31T12:00:00Z` })
    .regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, `${field} must be an ISO 8601 time such as 2027-01-31T12:00:00Z`)
    .transform((value) => new Date(value))
    .refine((date) => !Number.isNaN(date.getTime()), `${field} must be an ISO 8601 time such as 2027-01-31T12:00:00Z`)
    .meta({ override: { type: 'string', format: 'date-time' } });

export const phaseFields = z
  .strictObject({
    opensAt: moment('opensAt'),
    closesAt: moment('closesAt'),
    slides: z
      .array(whole('slides', 1, MAX_ID), { error: 'slides must be a list of slide ids of the test release' })
      .max(100_000)
      .nullable()
      .default(null)
      .meta({ description: 'Slide ids of the test release; null or absent: all of them' }),
    dailyLimit: whole('dailyLimit', 1, 1000).nullable().default(null).meta({ description: "Null: the challenge's" }),
    leaderboard: z.enum(LEADERBOARD_VISIBILITY, { error: 'leaderboard must be public or hidden' }).default('public').meta({ description: 'hidden: shown only after the phase closes (administrators always see it)' }),
  })
  .meta({ id: 'ChallengePhaseFields' });

export const joinBody = z
  .strictObject({ rulesVersion: whole('rulesVersion', 1, 1_000_000).meta({ description: 'The version of the rules accepted (the challenge says which is current)' }) })
  .meta({ id: 'ChallengeJoin' });
export const teamBody = z.strictObject({ name: text('name', 100).min(1, 'name must not be empty') }).meta({ id: 'NewChallengeTeam' });
export const inviteBody = z
  .strictObject({ email: z.string({ error: 'email must be an e-mail address' }).trim().max(254).email('email must be an e-mail address') })
  .meta({ id: 'ChallengeInvitation' });
export const rescoreBody = z
  .strictObject({
    phase: phaseQueryField,
    submission: whole('submission', 1, MAX_ID).optional().meta({ description: 'One submission only' }),
  })
  .meta({ id: 'ChallengeRescore' });

// Answers

const metrics = z.record(z.string(), z.number());
const phaseView = z.object({
  name: z.string(),
  opensAt: timestamp,
  closesAt: timestamp,
  state: z.enum(['upcoming', 'open', 'closed']),
  slides: z.array(z.number().int()).nullable().meta({ description: 'Slide ids of the test release; null: all' }),
  dailyLimit: z.number().int(),
  leaderboard: z.enum(LEADERBOARD_VISIBILITY),
});

const summaryShape = {
  name: z.string(),
  title: z.string(),
  description: z.string().meta({ description: 'Markdown' }),
  task: task,
  status: z.enum(['upcoming', 'open', 'past']),
  maskDownsample: z.number().int(),
  threshold: z.number(),
  dailyLimit: z.number().int(),
  teamSize: z.number().int(),
  leaderboardMode: mode,
  truthPublished: z.boolean(),
  phases: z.array(phaseView),
};

export const challengeSummary = z.object({ ...summaryShape, joined: z.boolean() }).meta({ id: 'ChallengeSummary' });
export const challengeList = z.object({ items: z.array(challengeSummary) }).meta({ id: 'ChallengeList' });

const problem = z.object({ file: z.string().nullable(), slide: z.string().nullable(), code: z.string(), message: z.string() });
export const validationReport = z
  .object({ ok: z.boolean(), problems: z.array(problem), files: z.array(z.object({ file: z.string(), slide: z.string() })) })
  .meta({ id: 'SubmissionValidationReport' });

export const submissionView = z
  .object({
    id: z.number().int(),
    phase: z.string(),
    fileName: z.string(),
    size: z.number().int(),
    status: z.enum(SUBMISSION_STATUSES).meta({ description: 'invalid (refused by validation; not counted against the limit), queued, scoring, scored or failed' }),
    progress: z.number().meta({ description: 'Scoring progress, 0 to 1' }),
    score: z.number().nullable(),
    tieBreakers: z.array(z.number()).nullable(),
    metrics: metrics.nullable(),
    report: validationReport.nullable(),
    error: z.string().nullable(),
    late: z.boolean().meta({ description: 'Made after the phase closed: scored, shown apart' }),
    submittedAt: timestamp,
    scoredAt: timestamp.nullable(),
    results: z.array(z.object({ slide: z.string(), score: z.number(), metrics })).meta({ description: 'Per slide: for the team itself only' }),
  })
  .meta({ id: 'ChallengeSubmission' });
export const submissionList = z.object({ items: z.array(submissionView) }).meta({ id: 'ChallengeSubmissionList' });

const dataSlide = z.object({
  id: z.number().int(),
  name: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  slide: z.string().meta({ description: 'Download route of the slide file' }),
  annotation: z.string().nullable().meta({ description: 'Download route of the annotation; null for test slides until the truth is published' }),
});
const teamView = z.object({
  id: z.number().int(),
  name: z.string(),
  createdAt: timestamp,
  members: z.array(z.object({ name: z.string(), email: z.string(), joinedAt: timestamp })),
});
export const challengeTeam = teamView.meta({ id: 'ChallengeTeam' });

export const challengeDetail = z
  .object({
    ...summaryShape,
    rules: z.string().meta({ description: 'Markdown' }),
    rulesVersion: z.number().int(),
    descriptionHtml: z.string().meta({ description: 'The description rendered from Markdown and sanitised, as the guide pages are' }),
    rulesHtml: z.string().meta({ description: 'The rules rendered from Markdown and sanitised' }),
    participation: z.object({ rulesVersion: z.number().int(), acceptedAt: timestamp, mustAcceptAgain: z.boolean() }).nullable(),
    data: z
      .object({
        train: z.object({ release: z.string(), slides: z.array(dataSlide) }),
        test: z.object({ release: z.string(), slides: z.array(dataSlide) }),
      })
      .nullable()
      .meta({ description: 'For participants and administrators; null otherwise' }),
    team: teamView.nullable(),
    invitations: z.array(z.object({ teamId: z.number().int(), team: z.string(), invitedAt: timestamp })),
    submissions: z.array(submissionView),
  })
  .meta({ id: 'ChallengeDetail' });

export const participationView = z.object({ rulesVersion: z.number().int(), acceptedAt: timestamp }).meta({ id: 'ChallengeParticipation' });
export const invitationView = z.object({ email: z.string(), invitedAt: timestamp }).meta({ id: 'ChallengeInvitationSent' });

const entry = {
  team: z.string(),
  teamId: z.number().int(),
  submissionId: z.number().int(),
  score: z.number(),
  tieBreakers: z.array(z.number()),
  metrics,
  submittedAt: timestamp,
};
export const leaderboardView = z
  .object({
    challenge: z.string(),
    phase: z.string(),
    state: z.enum(['upcoming', 'open', 'closed']),
    mode,
    final: z.boolean().meta({ description: 'The phase has closed: the ranking is final and carries bootstrap 95% intervals' }),
    entries: z.array(z.object({ rank: z.number().int(), ...entry, interval: z.object({ low: z.number(), high: z.number() }).nullable() })),
    late: z.array(z.object(entry)).meta({ description: 'Submissions after the close: scored, not ranked' }),
  })
  .meta({ id: 'ChallengeLeaderboard' });

export const submitAnswer = z
  .object({ submission: submissionView.omit({ results: true }), report: validationReport })
  .meta({ id: 'ChallengeSubmitted' });
export const rescoreAnswer = z.object({ queued: z.number().int() }).meta({ id: 'ChallengeRescored' });
export const challengeAdminView = z.object({ ...summaryShape, rules: z.string(), rulesVersion: z.number().int() }).meta({ id: 'ChallengeSettings' });
export const phaseAnswer = phaseView.meta({ id: 'ChallengePhase' });
