import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';
import type { Context } from 'koa';
import { MAX_SUBMISSION_BYTES } from '../../challenges/create.js';
import type { UploadedArchive } from '../../challenges/challenges.service.js';
import { MAX_CHUNK_BYTES, type ChunkRange } from '../../challenges/uploads.js';
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
  challengeUploadPath,
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
  newUpload,
  uploadView,
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

const tooLarge = () => new AppError(413, 'submission_too_large', `A submission must be at most ${MAX_SUBMISSION_BYTES / 1024 ** 3} GiB`);

/** A fresh temporary file in the uploads folder, for a request body on its way in. */
async function temporaryFile(ctx: Context): Promise<string> {
  const dir = ctx.services.challenges.uploadsDir();
  await mkdir(dir, { recursive: true });
  return path.join(dir, `${randomBytes(12).toString('hex')}.partial`);
}

/**
 * The archive of a submission, streamed into a temporary file and refused
 * past the limit without reading the rest: either the request body itself
 * (Content-Type application/zip, application/x-tar or application/gzip), or
 * the one file of a multipart/form-data body (field `archive`).
 */
async function archiveBody(ctx: Context, fileName: string | undefined): Promise<UploadedArchive> {
  const type = (ctx.get('Content-Type').split(';')[0] ?? '').trim().toLowerCase();
  if (type === 'multipart/form-data') return multipartArchive(ctx, fileName);
  const fallback = ARCHIVE_TYPES[type];
  if (!fallback) {
    throw new AppError(415, 'unsupported_archive', 'Send the archive itself as the request body, with Content-Type application/zip, application/x-tar or application/gzip, or as the file field "archive" of a multipart/form-data body');
  }
  const limit = MAX_SUBMISSION_BYTES;
  if (Number(ctx.get('Content-Length') || 0) > limit) throw tooLarge();
  const file = await temporaryFile(ctx);
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

/** The form fields besides the file that are read at all: anything longer is refused. */
const MAX_FIELD_BYTES = 1024;
/** Room for the multipart boundaries and part headers around the file. */
const MULTIPART_OVERHEAD = 1024 * 1024;

/** The last part of a file name as a browser or curl sends it, without control characters; at most 200 characters. */
function plainFileName(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? '';
  return [...base]
    .filter((c) => c.charCodeAt(0) >= 32 && c.charCodeAt(0) !== 127)
    .join('')
    .trim()
    .slice(-200);
}

/**
 * The file field `archive` of a multipart/form-data body, as `curl -F
 * archive=@predictions.zip` sends it, streamed to disk with busboy under the
 * file's own name. No file, two files, a file under another field name or a
 * field over 1 KiB are 400s; over the limit, 413.
 */
async function multipartArchive(ctx: Context, queryName: string | undefined): Promise<UploadedArchive> {
  if (Number(ctx.get('Content-Length') || 0) > MAX_SUBMISSION_BYTES + MULTIPART_OVERHEAD) throw tooLarge();
  let parser: busboy.Busboy;
  try {
    parser = busboy({ headers: ctx.req.headers, defParamCharset: 'utf8', limits: { files: 1, fileSize: MAX_SUBMISSION_BYTES, fields: 20, fieldSize: MAX_FIELD_BYTES, parts: 21, fieldNameSize: 100 } });
  } catch (error) {
    throw new AppError(400, 'invalid_multipart', `The multipart body cannot be read: ${(error as Error).message}`);
  }
  const file = await temporaryFile(ctx);
  let problem: AppError | undefined;
  const refuse = (error: AppError) => {
    problem ??= error;
  };
  let received: { fileName: string; size: number } | undefined;
  let writing: Promise<void> | undefined;
  parser.on('file', (field, stream, info) => {
    if (field !== 'archive') {
      refuse(new AppError(400, 'invalid_multipart', `The file must come in the field "archive", not "${field}"`));
      stream.resume();
      return;
    }
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        done(null, chunk);
      },
    });
    stream.on('limit', () => refuse(tooLarge()));
    writing = pipeline(stream, counter, createWriteStream(file)).then(() => {
      received = { fileName: plainFileName(info.filename ?? ''), size };
    });
    // A failed write must not stop the form from being read to its end; it is answered once the form is.
    writing.catch(() => {});
  });
  parser.on('field', (name, _value, info) => {
    if (info.valueTruncated) refuse(new AppError(400, 'field_too_large', `The form field "${name}" is longer than ${MAX_FIELD_BYTES} bytes; send only the file field "archive"`));
  });
  parser.on('filesLimit', () => refuse(new AppError(400, 'too_many_files', 'Send one archive per submission: the form has more than one file')));
  parser.on('fieldsLimit', () => refuse(new AppError(400, 'invalid_multipart', 'The form has too many fields; send only the file field "archive"')));
  parser.on('partsLimit', () => refuse(new AppError(400, 'invalid_multipart', 'The form has too many parts; send only the file field "archive"')));
  try {
    try {
      await pipeline(ctx.req, parser);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw new AppError(400, 'invalid_multipart', `The multipart body cannot be read: ${(error as Error).message}`);
    }
    if (writing) await writing;
    if (problem) throw problem;
    if (!received) throw new AppError(400, 'no_archive', 'The form has no file: send the archive as the file field "archive" (curl -F archive=@predictions.zip)');
    if (received.size === 0) throw new AppError(400, 'empty_submission', 'The archive sent is empty');
    return { file, fileName: received.fileName || queryName || 'submission.zip', size: received.size };
  } catch (error) {
    await writing?.catch(() => {});
    await rm(file, { force: true });
    throw error;
  }
}

/** `Content-Range: bytes START-END/SIZE` of a chunk. */
function chunkRange(ctx: Context): ChunkRange {
  const header = ctx.get('Content-Range');
  const match = /^bytes (\d{1,16})-(\d{1,16})\/(\d{1,16})$/.exec(header.trim());
  if (!match) throw new AppError(400, 'invalid_content_range', `Send each chunk with Content-Range: bytes START-END/SIZE (END included)${header ? `, not "${header}"` : ''}`);
  const [start, end, total] = [Number(match[1]), Number(match[2]), Number(match[3])];
  if (end < start) throw new AppError(400, 'invalid_content_range', `Content-Range ${header} ends before it starts`);
  if (Number(ctx.get('Content-Length') || 0) > MAX_CHUNK_BYTES) throw new AppError(413, 'chunk_too_large', `A chunk must be at most ${MAX_CHUNK_BYTES / 1024 ** 2} MiB`);
  return { start, end, total };
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
      `The archive comes in one of three ways: as the request body itself (.zip, .tar or .tar.gz; Content-Type application/zip, application/x-tar or application/gzip); as the one file field "archive" of a multipart/form-data body (curl -F archive=@predictions.zip; the file's own name is kept; no file, two files or a field over 1 KiB: 400 no_archive, too_many_files, field_too_large); or, with ?upload=ID, as a complete resumable upload (see POST /api/challenges/{name}/uploads; 409 upload_incomplete with the offset while bytes are missing; consumed once the submission is recorded, kept when refused before). At most ${MAX_SUBMISSION_BYTES / 1024 ** 3} GiB (413 submission_too_large). ` +
      'It is validated at once (every mask of the right name, size and labels; see docs/challenges.md): an invalid archive is answered 422 submission_invalid with the report in details (problems per file, each a sentence), recorded as invalid, and costs nothing from the daily limit. A valid one is 202: queued for scoring, its progress and per-slide results in GET /api/challenges/{name}/submissions. ' +
      'Not joined: 403 not_participant; rules changed since: 409 rules_changed; no phase open (or the named one not open yet): 409 phase_not_open; a phase named after its close takes the submission as late (scored, shown apart); the team\'s daily limit used: 429 daily_limit_reached with Retry-After. A participant without a team submits as a team of one, made then.',
    access: participant,
    params: challengePath,
    query: submitQuery,
    before: [noStore, retryAfter],
    response: { status: 202, description: 'Queued for scoring', schema: submitAnswer },
    handle: async ({ params, query }, ctx) => {
      const outcome =
        query.upload !== undefined
          ? await ctx.services.challenges.submitUpload(params.name, query.phase, query.upload, actor(ctx))
          : await ctx.services.challenges.submit(params.name, query.phase, await archiveBody(ctx, query.file), actor(ctx));
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
    method: 'post',
    path: '/api/challenges/{name}/uploads',
    tag,
    summary: 'Start a resumable upload of a submission archive, to send in chunks and then submit',
    description:
      `For archives too large to send in one request over an unreliable network. The body names the archive and its size (at most ${MAX_SUBMISSION_BYTES / 1024 ** 3} GiB, else 413 submission_too_large); the answer is the upload's id and offset 0. ` +
      `Then send the archive in order, each chunk as the body of PUT /api/challenges/{name}/uploads/{id} with Content-Range: bytes START-END/SIZE (at most ${MAX_CHUNK_BYTES / 1024 ** 2} MiB a chunk), and submit it with POST /api/challenges/{name}/submissions?upload={id}. ` +
      'The upload is the requester\'s own (anyone else\'s is a 404) and expires 24 hours after its last chunk. Not joined: 403 not_participant; rules changed since: 409 rules_changed; a name without .zip, .tar, .tar.gz or .tgz: 415 unsupported_archive; five uploads in progress in this challenge already: 409 too_many_uploads.',
    access: participant,
    params: challengePath,
    body: newUpload,
    before,
    response: { status: 201, description: 'The upload, at offset 0', schema: uploadView },
    handle: ({ params, body }, ctx) => ctx.services.challenges.createUpload(params.name, body, actor(ctx)),
  }),
  route({
    method: 'get',
    path: '/api/challenges/{name}/uploads/{id}',
    tag,
    summary: "How much of one of the requester's uploads has arrived: the offset the next chunk starts at",
    description: 'A client that lost an answer, or comes back after a reload or a broken connection, asks here and goes on from the offset.',
    access: participant,
    params: challengeUploadPath,
    before,
    response: { description: 'The upload', schema: uploadView },
    handle: ({ params }, ctx) => ctx.services.challenges.uploadState(params.name, params.id, actor(ctx)),
  }),
  route({
    method: 'put',
    path: '/api/challenges/{name}/uploads/{id}',
    tag,
    summary: 'Send the next chunk of an upload',
    description:
      `The body is the chunk itself (Content-Type application/octet-stream), with Content-Range: bytes START-END/SIZE (END included, SIZE the upload's size; 400 invalid_content_range otherwise), at most ${MAX_CHUNK_BYTES / 1024 ** 2} MiB (413 chunk_too_large). ` +
      'START must be the upload\'s offset: a chunk that starts elsewhere (sent again after its answer was lost, say) is 409 upload_offset_mismatch with the offset in details.offset, and the client goes on from there. A body shorter or longer than its range is 400 chunk_length_mismatch and changes nothing; another request storing a chunk of the same upload at the moment: 409 upload_busy. The answer is the new offset; at offset = size the upload is complete.',
    access: participant,
    params: challengeUploadPath,
    before,
    response: { description: 'The upload, with its new offset', schema: uploadView },
    handle: ({ params }, ctx) => ctx.services.challenges.uploadChunk(params.name, params.id, chunkRange(ctx), ctx.req, actor(ctx)),
  }),
  route({
    method: 'delete',
    path: '/api/challenges/{name}/uploads/{id}',
    tag,
    summary: "Cancel one of the requester's uploads: its bytes are removed",
    access: participant,
    params: challengeUploadPath,
    before,
    response: { status: 204, description: 'Removed' },
    handle: async ({ params }, ctx) => {
      await ctx.services.challenges.deleteUpload(params.name, params.id, actor(ctx));
      ctx.status = 204;
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
