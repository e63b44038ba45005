import type { Context } from 'koa';
import { z } from 'zod';
import { tagOf, type FramesAnswer, type QidoQuery } from '../../dicom/web/index.js';
import { AppError } from '../../errors.js';
import { atLeast } from '../access.js';
import { cacheControl } from '../middleware/cache-control.js';
import { route } from '../route.js';

/**
 * DICOMweb of the published catalog under /dicomweb/ (docs/dicom.md,
 * "DICOMweb"): QIDO-RS searches and WADO-RS metadata, frames, bulk data and
 * rendered images, each published slide one study of one series: a slide
 * file made on the fly as `slidebank dicom export` would write it, a slide
 * published as a DICOM series served as its own instances.
 * Access as for tiles: L1 or staff, by session or bearer token; the slide
 * access policy then decides per slide. Withdrawn slides are absent.
 */

const tag = 'DICOMweb';
const viewer = atLeast('L1');
/** A published slide never changes, and its UIDs derive from its checksum. */
const immutable = cacheControl('private, max-age=31536000, immutable');
const searches = cacheControl('private, no-cache');

const UID = /^(0|[1-9]\d*)(\.(0|[1-9]\d*))*$/;
const uidParam = (what: 'study' | 'series' | 'instance') =>
  z
    .string()
    .max(64, `No ${what} with that UID`)
    .regex(UID, `No ${what} with that UID`)
    .meta({ description: `The ${what === 'instance' ? 'SOP instance' : what}'s instance UID`, 'x-not-found': `${what}_not_found` });

const studyPath = z.strictObject({ study: uidParam('study') });
const seriesPath = z.strictObject({ study: uidParam('study'), series: uidParam('series') });
const instancePath = z.strictObject({ study: uidParam('study'), series: uidParam('series'), instance: uidParam('instance') });
const framesPath = instancePath.extend({
  frames: z
    .string()
    .regex(/^[1-9]\d{0,8}(,[1-9]\d{0,8})*$/, 'Frames are numbered from 1, listed with commas: 1,2,3')
    .transform((text) => text.split(',').map(Number))
    .meta({ 'x-not-found': 'frame_not_found', description: 'Frame numbers from 1, comma-separated' }),
});
const framePath = instancePath.extend({
  frame: z
    .string()
    .regex(/^[1-9]\d{0,8}$/, 'Frames are numbered from 1')
    .transform(Number)
    .meta({ 'x-not-found': 'frame_not_found', description: 'The frame number, from 1' }),
});
const bulkPath = instancePath.extend({
  path: z
    .string()
    .regex(/^[0-9A-Fa-f]{8}(\.\d+\.[0-9A-Fa-f]{8})*$/, 'No bulk data there')
    .meta({ 'x-not-found': 'bulkdata_not_found', description: 'The binary attribute: its tag, and inside sequences the item index and the nested tag (00480105.0.00282000)' }),
});

const textOrList = z.union([z.string(), z.array(z.string())]);
/** QIDO-RS: matching attributes by keyword or tag (any other parameter), paging and includefield. */
const qidoQuery = z
  .looseObject({
    limit: z.coerce.number().int('limit must be a whole number').min(1, 'limit must be at least 1').optional(),
    offset: z.coerce.number().int('offset must be a whole number').min(0, 'offset must be at least 0').optional(),
    includefield: textOrList.optional().meta({ description: 'More attributes, by keyword or tag (comma-separated or repeated), or all' }),
    fuzzymatching: z.enum(['true', 'false']).optional(),
  })
  .meta({ description: 'Any other parameter is an attribute to match, by keyword (StudyInstanceUID, Modality, …) or tag (0020000D): UID lists, * and ? wildcards' });

type Qido = z.output<typeof qidoQuery>;

function qido(query: Qido): QidoQuery {
  const match = new Map<number, string>();
  const problems: { field: string; message: string }[] = [];
  for (const [name, value] of Object.entries(query)) {
    if (['limit', 'offset', 'includefield', 'fuzzymatching'].includes(name)) continue;
    const tagged = tagOf(name);
    if (tagged === undefined) problems.push({ field: name, message: `${name} is not an attribute this server matches on` });
    else if (typeof value !== 'string') problems.push({ field: name, message: `${name} may be given once` });
    else match.set(tagged, value);
  }
  const includefield = ([] as string[]).concat(query.includefield ?? []).flatMap((f) => f.split(',')).map((f) => f.trim()).filter(Boolean);
  for (const field of includefield) if (field !== 'all' && tagOf(field) === undefined) problems.push({ field: 'includefield', message: `includefield names ${field}, which is not an attribute this server has` });
  if (problems.length) throw new AppError(400, 'invalid_query', problems.map((p) => p.message).join('; '), { details: { problems } });
  return { match, includefield, ...(query.limit === undefined ? {} : { limit: query.limit }), ...(query.offset === undefined ? {} : { offset: query.offset }) };
}

const base = (ctx: Context) => `${ctx.protocol}://${ctx.host}/dicomweb`;

function dicomJson(ctx: Context, body: unknown): void {
  ctx.body = body;
  ctx.type = 'application/dicom+json';
}

/** The JPEG-family media type of a transfer syntax's frames (PS3.18 Table 8.7.3-5); JPEG-LS frames come from series published by ingest. */
const MEDIA_TYPES: Record<string, string> = {
  '1.2.840.10008.1.2.4.50': 'image/jpeg',
  '1.2.840.10008.1.2.4.51': 'image/jpeg',
  '1.2.840.10008.1.2.4.80': 'image/jls',
  '1.2.840.10008.1.2.4.81': 'image/jls',
  '1.2.840.10008.1.2.4.90': 'image/jp2',
  '1.2.840.10008.1.2.4.91': 'image/jp2',
};

/**
 * The media type frames go out as, from the Accept header (PS3.18 8.7.3.5):
 * `multipart/related` of application/octet-stream (any transfer syntax, or
 * the stored one named) or of the stored frames' own type (image/jpeg,
 * image/jp2); the frames are never transcoded, so anything else is a 406.
 */
export function frameMediaType(accept: string | undefined, answer: Pick<FramesAnswer, 'transferSyntax'>): string {
  const own = MEDIA_TYPES[answer.transferSyntax] ?? 'application/octet-stream';
  const ranges = (accept ?? '').split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/).map((r) => r.trim()).filter(Boolean);
  if (ranges.length === 0) return 'application/octet-stream';
  for (const range of ranges) {
    const [type = '', ...parameters] = range.split(';').map((p) => p.trim());
    const params = Object.fromEntries(parameters.map((p) => p.split('=').map((x) => x.trim().replace(/^"|"$/g, '')) as [string, string]));
    if (params.q === '0') continue;
    const syntax = params['transfer-syntax'];
    const syntaxOk = syntax === undefined || syntax === '*' || syntax === answer.transferSyntax;
    if (type === '*/*' || type === 'multipart/*') return 'application/octet-stream';
    if (type !== 'multipart/related') continue;
    const inner = params.type ?? 'application/octet-stream';
    if (inner === 'application/octet-stream' && syntaxOk) return inner;
    if (inner === own && syntaxOk) return own;
  }
  throw new AppError(406, 'not_acceptable', `The frames are stored as ${own} (transfer syntax ${answer.transferSyntax}) and are not transcoded; ask for multipart/related; type="application/octet-stream" or type="${own}"`);
}

/** A multipart/related answer (RFC 2387), one part per body. */
function sendMultipart(ctx: Context, type: string, transferSyntax: string | undefined, bodies: Buffer[]): void {
  const boundary = `slidebank-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const partType = transferSyntax ? `${type}; transfer-syntax=${transferSyntax}` : type;
  const parts: Buffer[] = [];
  for (const body of bodies) parts.push(Buffer.from(`--${boundary}\r\nContent-Type: ${partType}\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'), body, Buffer.from('\r\n', 'latin1'));
  parts.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  ctx.body = Buffer.concat(parts);
  ctx.type = `multipart/related; type="${type}"${transferSyntax ? `; transfer-syntax=${transferSyntax}` : ''}; boundary=${boundary}`;
}

function sendJpeg(ctx: Context, jpeg: Buffer): void {
  ctx.body = jpeg;
  ctx.type = 'image/jpeg';
}

export const dicomwebRoutes = [
  route({
    method: 'get',
    path: '/dicomweb/studies',
    tag,
    summary: 'QIDO-RS: the studies (one per published slide)',
    description: 'Matching on study attributes (StudyInstanceUID, StudyDate, ModalitiesInStudy, …), limit, offset, includefield. Answers application/dicom+json.',
    access: viewer,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The studies as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.studies(base(ctx), qido(query))),
  }),
  route({
    method: 'get',
    path: '/dicomweb/series',
    tag,
    summary: 'QIDO-RS: every series (one per published slide)',
    access: viewer,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The series as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.series(base(ctx), qido(query))),
  }),
  route({
    method: 'get',
    path: '/dicomweb/instances',
    tag,
    summary: "QIDO-RS: every instance (each published slide's levels and thumbnail)",
    access: viewer,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The instances as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.instances(base(ctx), qido(query))),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series',
    tag,
    summary: "QIDO-RS: a study's series",
    access: viewer,
    params: studyPath,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The series as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ params, query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.series(base(ctx), qido(query), params.study)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/instances',
    tag,
    summary: "QIDO-RS: a study's instances",
    access: viewer,
    params: studyPath,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The instances as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ params, query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.instances(base(ctx), qido(query), params.study)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/instances',
    tag,
    summary: "QIDO-RS: a series' instances: the slide's levels, largest first, then its thumbnail",
    access: viewer,
    params: seriesPath,
    query: qidoQuery,
    before: [searches],
    response: { description: 'The instances as DICOM JSON', contentType: 'application/dicom+json' },
    handle: async ({ params, query }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.instances(base(ctx), qido(query), params.study, params.series)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/metadata',
    tag,
    summary: "WADO-RS: the metadata of every instance of a series, as the exported (or published DICOM) files' attributes",
    description: 'Binary attributes (the ICC profile) are BulkDataURIs; Pixel Data is not listed: frames come from the frames resource. AvailableTransferSyntaxUID names the frames\' transfer syntax.',
    access: viewer,
    params: seriesPath,
    before: [immutable],
    response: { description: 'DICOM JSON, one data set per instance', contentType: 'application/dicom+json' },
    handle: async ({ params }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.metadata(base(ctx), params.study, params.series)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/instances/{instance}/metadata',
    tag,
    summary: "WADO-RS: one instance's metadata",
    access: viewer,
    params: instancePath,
    before: [immutable],
    response: { description: 'DICOM JSON, one data set', contentType: 'application/dicom+json' },
    handle: async ({ params }, ctx) => dicomJson(ctx, await ctx.services.dicomweb.metadata(base(ctx), params.study, params.series, params.instance)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frames}',
    tag,
    summary: 'WADO-RS: frames of an instance, as the exported (or published DICOM) file holds them (stored tiles, not recompressed)',
    description:
      'Accept multipart/related; type="application/octet-stream" (transfer-syntax=* or the stored one), or type="image/jpeg", "image/jp2" or "image/jls" for the stored frames\' own type; each part names its transfer syntax. The frames are never transcoded: another transfer syntax is a 406. At most 1000 frames per request.',
    access: viewer,
    params: framesPath,
    before: [immutable],
    response: { description: 'multipart/related, one part per frame in the order asked', contentType: 'multipart/related' },
    handle: async ({ params }, ctx) => {
      const answer = await ctx.services.dicomweb.frames(params.study, params.series, params.instance, params.frames);
      const type = frameMediaType(ctx.get('Accept') || undefined, answer);
      sendMultipart(ctx, type, answer.transferSyntax, answer.frames);
      ctx.vary('Accept');
    },
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered',
    tag,
    summary: 'WADO-RS: one frame rendered as JPEG, of the tile size',
    access: viewer,
    params: framePath,
    before: [immutable],
    response: { description: 'The frame as JPEG', contentType: 'image/jpeg' },
    handle: async ({ params }, ctx) => sendJpeg(ctx, await ctx.services.dicomweb.renderedFrame(params.study, params.series, params.instance, params.frame)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/instances/{instance}/bulkdata/{path}',
    tag,
    summary: "WADO-RS: a binary attribute of an instance's metadata (its BulkDataURI)",
    access: viewer,
    params: bulkPath,
    before: [immutable],
    response: { description: 'multipart/related with one application/octet-stream part', contentType: 'multipart/related' },
    handle: async ({ params }, ctx) => sendMultipart(ctx, 'application/octet-stream', undefined, [await ctx.services.dicomweb.bulkData(params.study, params.series, params.instance, params.path)]),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/rendered',
    tag,
    summary: "WADO-RS: a series rendered: the slide's thumbnail (its thumbnail instance) as JPEG, never its label",
    access: viewer,
    params: seriesPath,
    before: [immutable],
    response: { description: 'The thumbnail as JPEG, at most 1024 pixels a side', contentType: 'image/jpeg' },
    handle: async ({ params }, ctx) => sendJpeg(ctx, await ctx.services.dicomweb.thumbnailOf(params.study, params.series)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/series/{series}/thumbnail',
    tag,
    summary: "WADO-RS: a series' thumbnail as JPEG",
    access: viewer,
    params: seriesPath,
    before: [immutable],
    response: { description: 'The thumbnail as JPEG, at most 1024 pixels a side', contentType: 'image/jpeg' },
    handle: async ({ params }, ctx) => sendJpeg(ctx, await ctx.services.dicomweb.thumbnailOf(params.study, params.series)),
  }),
  route({
    method: 'get',
    path: '/dicomweb/studies/{study}/thumbnail',
    tag,
    summary: "WADO-RS: a study's thumbnail as JPEG (its one series')",
    access: viewer,
    params: studyPath,
    before: [immutable],
    response: { description: 'The thumbnail as JPEG, at most 1024 pixels a side', contentType: 'image/jpeg' },
    handle: async ({ params }, ctx) => sendJpeg(ctx, await ctx.services.dicomweb.thumbnailOf(params.study)),
  }),
];
