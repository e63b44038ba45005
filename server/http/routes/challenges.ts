import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Context } from 'koa';
import { MAX_SUBMISSION_BYTES } from '../../challenges/create.js';
import type { UploadedArchive } from '../../challenges/challenges.service.js';
import { AppError } from '../../errors.js';
import { adminOnly, atLeast } from '../access.js';
import { actorOf } from '../actor.js';
import { sendFile } from '../deliver.js';
import { noStore } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import {
  challengeAdminView,
  challengeChanges,
  challengeDetail,
  challengeFilePath,
  challengeList,
  challengePath,
  challengePhasePath,
  challengeSubmissionPath,
  challengeTeam,
  challengeTeamPath,
  invitationView,
  inviteBody,
  joinBody,
  leaderboardQuery,
  leaderboardView,
  newChallenge,
  participationView,
  phaseAnswer,
  phaseFields,
  rescoreAnswer,
  rescoreBody,
  submissionList,
  submissionView,
  submitAnswer,
  submitQuery,
  teamBody,
} from '../schemas/challenges.js';

/**
 * Challenges on the platform's own data: anyone at L1 (or staff) lists them
 * and reads one; a participant joins by accepting the rules, forms a team,
 * downloads the challenge's data (even below L2: the training release with
 * its annotations, the test slides without theirs), submits archives and
 * follows their scores; leaderboards per phase. Administrators create and
 * change challenges and phases, rescore and publish the truth.
 */

const tag = 'Challenges';
const participant = atLeast('L1');
const before = [noStore];

const actor = (ctx: Context) => ({ requester: requesterOf(ctx), ip: ctx.ip || null });

const ARCHIVE_TYPES: Record<string, string> = {
  'application/zip': 'submission.zip',
  'application/x-zip-compressed': 'submission.zip',
  'application/x-tar': 'submission.tar',
  'application/gzip': 'submission.tar.gz',
  'application/x-gzip': 'submission.tar.gz',
  'application/octet-stream': 'submission.zip',
};

/** The request body, the archive itself, streamed into a temporary file and refused past the limit without reading the rest. */
async function archiveBody(ctx: Context, fileName: string | undefined): Promise<UploadedArchive> {
  const type = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase();
  const fallback = ARCHIVE_TYPES[type];
  if (!fallback) throw new AppError(415, 'unsupported_archive', 'Send the archive itself as the request body, with Content-Type application/zip, application/x-tar or application/gzip');
  const limit = MAX_SUBMISSION_BYTES;
  const tooLarge = () => new AppError(413, 'submission_too_large', `A submission must be at most ${limit / 1024 ** 3} GiB`);
  if (Number(ctx.get('Content-Length') || 0) > limit) throw tooLarge();
  const dir = path.join(ctx.services.challenges.uploadsDir());
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${randomBytes(12).toString('hex')}.partial`);
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > limit) done(tooLarge());
      else done(null, chunk);
    },
  });
  try {
    await pipeline(ctx.req, counter, createWriteStream(file));
  } catch (error) {
    await rm(file, { force: true });
    throw error;
  }
  if (size === 0) {
    await rm(file, { force: true });
    throw new AppError(400, 'empty_submission', 'The request body is empty: send the archive itself');
  }
  return { file, fileName: fileName ?? fallback, size };
}

export const challengeRoutes = [
  route({
    method: 'get',
    path: '/api/challenges',
    tag,
    summary: 'The challenges, open, upcoming and past, with their phases',
    access: participant,
    before,
    response: { description: 'The challenges, by name', schema: challengeList },
    handle: async (_input, ctx) => ({ items: await ctx.services.challenges.list(requesterOf(ctx)) }),
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}',
    tag,
    summary: 'One challenge: overview, rules, phases, and for participants the data links, their team and their submissions',
    access: participant,
    params: challengePath,
    before,
    response: { description: 'The challenge', schema: challengeDetail },
    handle: ({ params }, ctx) => ctx.services.challenges.overview(params.name, requesterOf(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/join',
    tag,
    summary: "Join a challenge by accepting its rules (their current version); accepting a newer version again keeps the team",
    description: 'Recorded with the rules version, like an agreement acceptance, and audited as challenge.joined. A version other than the current one is 409 rules_changed. Joining lets the participant download the challenge\'s data whatever their level.',
    access: participant,
    params: challengePath,
    body: joinBody,
    before,
    response: { description: 'The acceptance', schema: participationView },
    handle: ({ params, body }, ctx) => ctx.services.challenges.join(params.name, body.rulesVersion, actor(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/team',
    tag,
    summary: 'Create a team, with the requester as its first member',
    description: 'One team per person and challenge: 409 already_in_team; a name another team has, 409 team_name_taken; not joined, 403 not_participant.',
    access: participant,
    params: challengePath,
    body: teamBody,
    before,
    response: { status: 201, description: 'The team', schema: challengeTeam },
    handle: async ({ params, body }, ctx) => teamAnswer(await ctx.services.challenges.createTeam(params.name, body.name, actor(ctx))),
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/team/invitations',
    tag,
    summary: "Invite somebody to the requester's team by e-mail",
    description: 'The invitee is mailed; they accept after joining the challenge. A full team is 409 team_full; without a team, 409 no_team.',
    access: participant,
    params: challengePath,
    body: inviteBody,
    before,
    response: { status: 201, description: 'The invitation', schema: invitationView },
    handle: ({ params, body }, ctx) => ctx.services.challenges.invite(params.name, body.email, actor(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/teams/{team}/accept',
    tag,
    summary: 'Accept an invitation to a team',
    description: 'For a participant invited at their account\'s address. Already in a team: 409 already_in_team; the team full: 409 team_full; no such invitation: 404 invitation_not_found.',
    access: participant,
    params: challengeTeamPath,
    before,
    response: { description: 'The team', schema: challengeTeam },
    handle: async ({ params }, ctx) => teamAnswer(await ctx.services.challenges.acceptInvitation(params.name, params.team, actor(ctx))),
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/team/leave',
    tag,
    summary: "Leave the requester's team (its submissions stay the team's)",
    access: participant,
    params: challengePath,
    before,
    response: { status: 204, description: 'Left' },
    handle: async ({ params }, ctx) => {
      await ctx.services.challenges.leaveTeam(params.name, actor(ctx));
      ctx.status = 204;
    },
  }),
  route({
    method: 'post',
    path: '/api/challenges/{name}/submissions',
    tag,
    summary: 'Submit an archive of predictions for the test slides of a phase',
    description:
      `The request body is the archive itself (.zip, .tar or .tar.gz; Content-Type application/zip, application/x-tar or application/gzip), at most ${MAX_SUBMISSION_BYTES / 1024 ** 3} GiB (413 submission_too_large). ` +
      'It is validated at once (every mask of the right name, size and labels; see docs/challenges.md): an invalid archive is answered 422 submission_invalid with the report in details (problems per file, each a sentence), recorded as invalid, and costs nothing from the daily limit. A valid one is 202: queued for scoring, its progress and per-slide results in GET /api/challenges/{name}/submissions. ' +
      'Not joined: 403 not_participant; rules changed since: 409 rules_changed; no phase open (or the named one not open yet): 409 phase_not_open; a phase named after its close takes the submission as late (scored, shown apart); the team\'s daily limit used: 429 daily_limit_reached with Retry-After. A participant without a team submits as a team of one, made then.',
    access: participant,
    params: challengePath,
    query: submitQuery,
    before: [noStore, retryAfter],
    response: { status: 202, description: 'Queued for scoring', schema: submitAnswer },
    handle: async ({ params, query }, ctx) => {
      const upload = await archiveBody(ctx, query.file);
      const outcome = await ctx.services.challenges.submit(params.name, query.phase, upload, actor(ctx));
      const { results: _results, ...submission } = await ctx.services.challenges.submissionFor(params.name, outcome.submission.id, requesterOf(ctx));
      if (outcome.kind === 'invalid') {
        const first = outcome.report.problems[0]?.message ?? 'The archive is not a valid submission';
        throw new AppError(422, 'submission_invalid', `The submission was refused and not counted against the limit: ${first}${outcome.report.problems.length > 1 ? ` (and ${outcome.report.problems.length - 1} more problem(s))` : ''}`, {
          details: { submission: submission.id, report: outcome.report },
        });
      }
      return { submission, report: outcome.report };
    },
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}/submissions',
    tag,
    summary: "The requester's team's submissions, newest first, with status, progress, scores and per-slide results",
    access: participant,
    params: challengePath,
    before,
    response: { description: 'The submissions', schema: submissionList },
    handle: async ({ params }, ctx) => ({ items: await ctx.services.challenges.mySubmissions(params.name, requesterOf(ctx)) }),
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}/submissions/{id}',
    tag,
    summary: "One of the team's submissions (any, for administrators), with its per-slide results",
    description: "Another team's submission is a 404, as if it did not exist.",
    access: participant,
    params: challengeSubmissionPath,
    before,
    response: { description: 'The submission', schema: submissionView },
    handle: ({ params }, ctx) => ctx.services.challenges.submissionFor(params.name, params.id, requesterOf(ctx)),
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}/leaderboard',
    tag,
    summary: "A phase's leaderboard: each team's best or latest scored submission, ranked",
    description:
      'Rank, team, score, tie-breakers and submission time; once the phase has closed (final) each entry carries the bootstrap 95% interval of its score over the slides. Submissions after the close are listed apart (late). A phase whose leaderboard is hidden answers 403 leaderboard_hidden until it closes, except to administrators. Per-slide results are never shown here. format=csv gives the same as CSV, for administrators (403 role_required otherwise).',
    access: participant,
    params: challengePath,
    query: leaderboardQuery,
    before,
    response: { description: 'The leaderboard (or text/csv with format=csv)', schema: leaderboardView },
    handle: async ({ params, query }, ctx) => {
      const requester = requesterOf(ctx);
      if (query.format === 'csv' && !requester.roles.includes('admin')) throw new AppError(403, 'role_required', 'The CSV export of a leaderboard is for administrators');
      const board = await ctx.services.challenges.leaderboard(params.name, query.phase, requester);
      if (query.format !== 'csv') return board;
      ctx.type = 'text/csv; charset=utf-8';
      ctx.attachment(`${board.challenge}-${board.phase}-leaderboard.csv`);
      ctx.body = ctx.services.challenges.leaderboardCsv(board);
      return undefined;
    },
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}/files/{slide}/{kind}',
    tag,
    summary: "Download a file of the challenge's data as a participant: a training slide or its annotation, a test slide",
    description:
      "For participants (and administrators), whatever their level: the training release's slides and annotations and the test release's slides; a test slide's annotation is 403 truth_hidden until the truth is published. Not joined: 403 not_participant; a slide outside the challenge: 404 slide_not_found. Ranges, checksums, limits and audit as for GET /api/slides/{id}/files/{kind}.",
    access: participant,
    params: challengeFilePath,
    before: [retryAfter],
    response: { description: 'The file (206: the range asked for)', contentType: 'application/octet-stream' },
    handle: async ({ params }, ctx) => {
      await ctx.services.challenges.assertMayDownload(params.name, params.slide, params.kind, requesterOf(ctx));
      const range = ctx.get('Range');
      const ifRange = ctx.get('If-Range');
      const request = { method: ctx.method === 'HEAD' ? ('HEAD' as const) : ('GET' as const), ...(range ? { range } : {}), ...(ifRange ? { ifRange } : {}) };
      sendFile(ctx, await ctx.services.downloads.file(actorOf(ctx), params.slide, params.kind, request));
    },
  }),

  // Administrators

  route({
    method: 'post',
    path: '/api/admin/challenges',
    tag,
    summary: 'Create a challenge from a training and a test release',
    description: 'The releases are named DATASET@VERSION (slidebank dataset release); they must differ and share no slide (409 releases_overlap). A name in use is 409 challenge_exists.',
    access: adminOnly,
    body: newChallenge,
    before,
    response: { status: 201, description: 'The challenge', schema: challengeAdminView },
    handle: async ({ body }, ctx) => adminAnswer(ctx, (await ctx.services.challenges.create(body, actor(ctx))).name),
  }),
  route({
    method: 'patch',
    path: '/api/admin/challenges/{name}',
    tag,
    summary: "Change a challenge's settings; a change of the rules raises their version",
    access: adminOnly,
    params: challengePath,
    body: challengeChanges,
    before,
    response: { description: 'The challenge', schema: challengeAdminView },
    handle: async ({ params, body }, ctx) => adminAnswer(ctx, (await ctx.services.challenges.update(params.name, body, actor(ctx))).name),
  }),
  route({
    method: 'put',
    path: '/api/admin/challenges/{name}/phases/{phase}',
    tag,
    summary: 'Create or change a phase: its opening and closing, its test slides, its daily limit and whether its leaderboard shows before the close',
    access: adminOnly,
    params: challengePhasePath,
    body: phaseFields,
    before,
    response: { description: 'The phase', schema: phaseAnswer },
    handle: async ({ params, body }, ctx) => {
      const phase = await ctx.services.challenges.savePhase(params.name, params.phase, body, actor(ctx));
      const detail = await ctx.services.challenges.overview(params.name, requesterOf(ctx));
      return detail.phases.find((p) => p.name === phase.name);
    },
  }),
  route({
    method: 'post',
    path: '/api/admin/challenges/{name}/rescore',
    tag,
    summary: 'Queue scored submissions for scoring again (all, one phase, or one submission); audited',
    access: adminOnly,
    params: challengePath,
    body: rescoreBody,
    before,
    response: { description: 'How many were queued', schema: rescoreAnswer },
    handle: ({ params, body }, ctx) => ctx.services.challenges.rescore(params.name, body, actor(ctx)),
  }),
  route({
    method: 'post',
    path: '/api/admin/challenges/{name}/publish-truth',
    tag,
    summary: "Publish the test release's annotations: from now on they are served like any other slide's",
    description: 'Once only (409 truth_published); audited as challenge.truth_published.',
    access: adminOnly,
    params: challengePath,
    before,
    response: { description: 'The challenge', schema: challengeAdminView },
    handle: async ({ params }, ctx) => adminAnswer(ctx, (await ctx.services.challenges.publishTruth(params.name, actor(ctx))).name),
  }),
];

function teamAnswer(team: { id: number; name: string; createdAt: Date; members: { name: string; email: string; joinedAt: Date }[] }) {
  return { id: team.id, name: team.name, createdAt: team.createdAt, members: team.members.map((m) => ({ name: m.name, email: m.email, joinedAt: m.joinedAt })) };
}

async function adminAnswer(ctx: Context, name: string) {
  const detail = await ctx.services.challenges.overview(name, requesterOf(ctx));
  const { participation: _p, data: _d, team: _t, invitations: _i, submissions: _s, descriptionHtml: _dh, rulesHtml: _rh, ...settings } = detail;
  return settings;
}
