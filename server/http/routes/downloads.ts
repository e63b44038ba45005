import type { Context } from 'koa';
import { z } from 'zod';
import { MAX_TERMS } from '../../catalog/catalog.service.js';
import { FilterError, parseFilter, type CatalogFilter } from '../../catalog/filter.js';
import { DownloadLinks, manifestTsv, manifestView, type FileKind, type LinkQuery, type Manifest, type Selection } from '../../downloads/index.js';
import { selectionView } from '../../downloads/manifest.js';
import { timestamp } from '../../lib/schema-types.js';
import { atLeast } from '../access.js';
import { AppError } from '../../errors.js';
import { actorOf } from '../actor.js';
import { deliverBundle, sendFile } from '../deliver.js';
import { cacheControl } from '../middleware/cache-control.js';
import { retryAfter } from '../middleware/retry-after.js';
import { idParam, MAX_ID, once } from '../params.js';
import { requesterOf } from '../requester.js';
import { route } from '../route.js';
import { catalogFilterShape, filterOf } from '../schemas/catalog.js';

/**
 * Downloads for researchers at L2 or L3 (staff roles do not count): one
 * file with Range/If-Range (or handed to nginx by X-Accel-Redirect when
 * `downloads.nginxAccelRedirect` is set), a ZIP bundle of a selection, and
 * the manifest `slidebank fetch` downloads from. Each is counted against the
 * user's download limits (413, or 429 with Retry-After) and audited.
 */

const tag = 'Downloads';
const downloader = atLeast('L2');

const MAX_EXPRESSION = 4000;
const BUNDLE_USAGE = 'Send JSON {"slides": [1, 2]} or {"filter": "organ=CO;stain=IHC"}';
const MANIFEST_USAGE = 'Give slides=1,2,3, filter=<expression>, or the catalog search parameters (organ=CO&stain=IHC); format=json (default) or tsv';

/** More words in `q` than a search looks for, or undefined. */
function tooManyWords(filter: CatalogFilter): string | undefined {
  const words = filter.q?.split(' ').length ?? 0;
  return words > MAX_TERMS ? `q has ${words} words; at most ${MAX_TERMS} are searched for` : undefined;
}

/** A filter expression (`organ=CO;stain=IHC;q=adeno`, see catalog/filter.ts); the empty expression selects every published slide. */
function filterExpression(text: z.ZodString) {
  return text
    .max(MAX_EXPRESSION, { error: (issue) => `The filter expression is ${(issue.input as string).length} characters long; at most ${MAX_EXPRESSION} are allowed` })
    .transform((expression, ctx) => {
      try {
        const filter = parseFilter(expression);
        const problem = tooManyWords(filter);
        if (!problem) return filter;
        ctx.addIssue({ code: 'custom', message: problem });
      } catch (error) {
        if (!(error instanceof FilterError)) throw error;
        ctx.addIssue({ code: 'custom', message: error.message });
      }
      return z.NEVER;
    })
    .meta({ description: 'A catalog filter expression, e.g. organ=CO;stain=IHC;q=adeno' });
}

const slideId = z
  .number({ error: 'slides must hold slide ids (whole numbers from 1)' })
  .int('slides must hold slide ids (whole numbers from 1)')
  .min(1, 'slides must hold slide ids (whole numbers from 1)')
  .max(MAX_ID, 'slides must hold slide ids (whole numbers from 1)');

const bundleRequest = z
  .strictObject({
    slides: z
      .array(slideId, { error: `slides must be a list of slide ids. ${BUNDLE_USAGE}` })
      .optional()
      .meta({ description: 'The slides, by id' }),
    filter: filterExpression(z.string({ error: `filter must be a filter expression string. ${BUNDLE_USAGE}` })).optional(),
  })
  .transform((body, ctx): Selection => {
    if (body.slides !== undefined && body.filter !== undefined) ctx.addIssue({ code: 'custom', message: `Give either slides or filter, not both. ${BUNDLE_USAGE}` });
    else if (body.slides !== undefined) return { kind: 'slides', ids: [...new Set(body.slides)] };
    else if (body.filter !== undefined) return { kind: 'filter', filter: body.filter };
    else ctx.addIssue({ code: 'custom', message: `Nothing was selected. ${BUNDLE_USAGE}` });
    return z.NEVER;
  })
  .meta({ id: 'BundleRequest', description: 'Either slides or filter' });

const bundleQuery = z.strictObject({
  format: z
    .enum(['stored', 'dicom'], { error: 'format must be stored (the slide files as published) or dicom (each slide as a DICOM whole-slide series)' })
    .optional()
    .meta({ description: 'stored (default): the slide files as published; dicom: each slide as a DICOM whole-slide series in dicom/<name>/' }),
});

/** Slide ids separated by commas (`4,2,4`): each once, in the order given. */
const slideIdList = once('slides')
  .transform((text, ctx) => {
    const pieces = text.split(',').map((piece) => piece.trim()).filter((piece) => piece !== '');
    const bad = pieces.filter((piece) => !/^[1-9]\d{0,9}$/.test(piece) || Number(piece) > MAX_ID);
    if (bad.length === 0) return [...new Set(pieces.map(Number))];
    ctx.addIssue({ code: 'custom', message: `slides must be slide ids separated by commas; not ${bad.slice(0, 5).map((b) => `"${b}"`).join(', ')}` });
    return z.NEVER;
  })
  .meta({ description: 'Slide ids separated by commas' });

const manifestQuery = z
  .strictObject({
    slides: slideIdList.optional(),
    filter: filterExpression(once('filter')).optional(),
    format: once('format')
      .pipe(z.enum(['json', 'tsv'], { error: 'format must be json or tsv' }))
      .optional()
      .meta({ description: 'json (the default) or tsv: one line per file, for wget, aria2c or a spreadsheet' }),
    // The catalog search's own parameters, so that a search page's URL carries over.
    ...catalogFilterShape,
  })
  .transform((query, ctx): { selection: Selection; format: 'json' | 'tsv' } => {
    const { slides, filter, format = 'json', ...search } = query;
    const searched = Object.values(search).some((value) => value !== undefined);
    const forms = [slides !== undefined, filter !== undefined, searched].filter(Boolean).length;
    if (forms !== 1) {
      ctx.addIssue({ code: 'custom', message: forms === 0 ? `Nothing was selected. ${MANIFEST_USAGE}` : `Give one of slides, filter or the search parameters. ${MANIFEST_USAGE}` });
      return z.NEVER;
    }
    if (slides !== undefined) return { selection: { kind: 'slides', ids: slides }, format };
    const chosen = filter ?? filterOf(search);
    const problem = tooManyWords(chosen);
    if (!problem) return { selection: { kind: 'filter', filter: chosen }, format };
    ctx.addIssue({ code: 'custom', path: ['q'], message: problem });
    return z.NEVER;
  });

/** The longest link made: well inside what servers and proxies accept in a request line (8 KiB is common). */
const MAX_LINK = 7000;
const LINK_USAGE = 'Make the link with POST /api/downloads/links; it works for its own account only, for a few minutes';
const SLIDE_IDS_TEXT = /^[1-9]\d{0,9}(,[1-9]\d{0,9})*$/;

/** The query of a signed ZIP link exactly as POST /api/downloads/links wrote it: the signature covers these texts. */
const linkQuery = z
  .strictObject({
    user: once('user')
      .regex(/^[1-9]\d{0,9}$/, `user must be an account id. ${LINK_USAGE}`)
      .transform(Number)
      .meta({ description: 'The account the link was made for' }),
    slides: once('slides')
      .max(MAX_LINK)
      .regex(SLIDE_IDS_TEXT, `slides must be slide ids separated by commas. ${LINK_USAGE}`)
      .optional()
      .meta({ description: 'Slide ids separated by commas' }),
    filter: once('filter').max(MAX_EXPRESSION).optional().meta({ description: 'A catalog filter expression' }),
    expires: once('expires')
      .regex(/^\d{1,12}$/, `expires must be a time in seconds since 1970. ${LINK_USAGE}`)
      .transform(Number)
      .meta({ description: 'When the link stops working, in seconds since 1970 (UTC)' }),
    signature: once('signature')
      .regex(/^[A-Za-z0-9_-]{43}$/, `signature is not a signature this server makes. ${LINK_USAGE}`)
      .meta({ description: 'The HMAC-SHA256 of the fields above, base64url' }),
  })
  .refine((query) => (query.slides === undefined) !== (query.filter === undefined), `Give either slides or filter. ${LINK_USAGE}`);

const downloadLinkView = z
  .object({
    selection: selectionView,
    slides: z.number().int().meta({ description: 'Published slides in the selection' }),
    files: z.number().int().meta({ description: 'Slide and annotation files' }),
    totalBytes: z.number().int().meta({ description: 'Bytes of those files (the ZIP adds metadata, checksums and a README: a few KiB)' }),
    zip: z
      .object({
        href: z.string().meta({ description: 'The signed GET /api/downloads/zip route, relative to the server' }),
        url: z.string().meta({ description: 'The same as an absolute URL' }),
        expiresAt: timestamp,
      })
      .nullable()
      .meta({ description: 'The signed link; null when a ZIP of the selection would be refused (see zipRefusal)' }),
    zipRefusal: z
      .object({ status: z.number().int(), code: z.string(), message: z.string() })
      .nullable()
      .meta({ description: 'Why a ZIP of the selection would be refused now (bundle_too_large, exceeds_daily_allowance, daily_allowance_used, as the ZIP route would answer; selection_too_long_for_link: more slide ids than a link holds, select by filter instead); the manifest and slidebank fetch still work' }),
  })
  .meta({ id: 'DownloadLink' });

/** One signer per set of session keys (the keys live as long as the services). */
const signers = new WeakMap<readonly string[], DownloadLinks>();
function linksOf(ctx: Context): DownloadLinks {
  const keys = ctx.services.access.sessionKeys;
  let links = signers.get(keys);
  if (!links) signers.set(keys, (links = new DownloadLinks(keys)));
  return links;
}

const slidePath = z.strictObject({ id: idParam('slide') });

/** This server as the client reached it (behind a proxy: as the proxy says, when http.trustProxy is on). */
function origin(ctx: Context): string {
  return `${ctx.protocol}://${ctx.host}`;
}

/** The request as far as the choice of bytes goes: HEAD or GET, and the Range with its If-Range precondition. */
function fileRequest(ctx: Context) {
  const range = ctx.get('Range');
  const ifRange = ctx.get('If-Range');
  return { method: ctx.method === 'HEAD' ? ('HEAD' as const) : ('GET' as const), ...(range ? { range } : {}), ...(ifRange ? { ifRange } : {}) };
}

function sendManifest(ctx: Context, manifest: Manifest, format: 'json' | 'tsv'): Manifest | undefined {
  if (format === 'json') return manifest;
  ctx.type = 'text/tab-separated-values; charset=utf-8';
  ctx.set('Content-Disposition', 'inline; filename="manifest.tsv"');
  ctx.body = manifestTsv(manifest);
  return undefined;
}

function fileRoute(kind: FileKind, summary: string, contentType: string) {
  return route({
    method: 'get',
    path: `/api/slides/{id}/files/${kind}`,
    tag,
    summary,
    description:
      'HEAD answers the same without the bytes. `Range: bytes=a-b` (or `a-`, `-n`; one range) gets 206; a range that starts past the end, or does not parse, is 416 range_not_satisfiable with `Content-Range: bytes */size`; several ranges, or an `If-Range` that no longer matches, get the whole file. The strong ETag is `"sha256-<hex>"`; `Repr-Digest`, `Digest` and `X-Checksum-SHA256` give the SHA-256 of the whole file, also on a 206; `Content-Disposition` names the file by its nomenclature name. With downloads.nginxAccelRedirect the answer carries `X-Accel-Redirect` and nginx sends the bytes. Counted against the download limits (413, or 429 with Retry-After) and audited with the bytes sent.',
    access: downloader,
    params: slidePath,
    before: [retryAfter],
    response: { description: 'The file (206: the range asked for)', contentType },
    handle: async ({ params }, ctx) => {
      sendFile(ctx, await ctx.services.downloads.file(actorOf(ctx), params.id, kind, fileRequest(ctx)));
    },
  });
}

export const downloadRoutes = [
  fileRoute('slide', "Download a published slide's file", 'application/octet-stream'),
  fileRoute('annotation', "Download a published slide's annotation XML", 'application/xml'),
  route({
    method: 'post',
    path: '/api/downloads',
    tag,
    summary: 'Download the selected slides, their annotations, metadata, checksums and a README as one ZIP, streamed',
    description:
      'Body `{"slides": [12, 15]}` or `{"filter": "organ=CO;stain=IHC"}`. The ZIP (entries STOREd, ZIP64 as needed) holds `slides/`, `annotations/`, `metadata.csv`, `metadata.json`, `manifest-sha256.txt` (for `sha256sum -c`) and `README.txt`, which names the licence (CC BY-NC 4.0) and the requester\'s data use agreement. More than downloads.maxBundleSlides slides or downloads.maxBundleBytes bytes is a 413 bundle_too_large (fetch such a selection file by file with the manifest); an id that names no published slide is a 404 slide_not_found (`details.missing`), a selection that matches none a 400 empty_selection. Counted against the download limits (429 with Retry-After) and audited when it ends. With `?format=dicom` each slide comes as a DICOM whole-slide series in `dicom/<name>/` (`level-<N>.dcm`, `thumbnail.dcm`; tiles copied, not recompressed, as `slidebank dicom export` writes them) instead of `slides/`; the series are written on the server before the first byte is sent, and the limits count the stored files\' bytes. A slide that cannot be written as DICOM is a 500 dicom_export_failed.',
    access: downloader,
    query: bundleQuery,
    body: bundleRequest,
    before: [retryAfter],
    response: { description: 'The ZIP archive', contentType: 'application/zip' },
    handle: async ({ query, body }, ctx) => {
      deliverBundle(ctx, await ctx.services.downloads.bundle(actorOf(ctx), body, origin(ctx), query.format ?? 'stored'));
    },
  }),
  route({
    method: 'post',
    path: '/api/downloads/links',
    tag,
    summary: 'The size of a selection, and a short-lived signed link that downloads it as a ZIP with a plain GET',
    description:
      'Body as for `POST /api/downloads`. Answers the number of slides and files and their bytes, and `zip`: the signed `GET /api/downloads/zip` link for this account, valid for 10 minutes (a browser\'s own download manager can fetch it: streamed to disk, with progress). When a ZIP would be refused now (past downloads.maxBundleSlides or downloads.maxBundleBytes, or past the daily allowance), or the slide ids are more than a link holds (about a thousand: select by filter instead), `zip` is null and `zipRefusal` says why. Ids and empty selections are refused as for a bundle; at most 10,000 slides (413 manifest_too_large). Makes no download and counts against no limit.',
    access: downloader,
    body: bundleRequest,
    response: { description: 'The selection\'s size and the link', schema: downloadLinkView },
    handle: async ({ body }, ctx) => {
      const actor = actorOf(ctx);
      const summary = await ctx.services.downloads.summary(actor, body);
      if (summary.zipRefusal !== null) return { ...summary, zip: null };
      const { query, expiresAt } = linksOf(ctx).issue(requesterOf(ctx).user!.id, 'zip', body, new Date());
      const search = new URLSearchParams(Object.entries(query).map(([key, value]): [string, string] => [key, String(value)]));
      const href = `/api/downloads/zip?${search.toString()}`;
      if (href.length > MAX_LINK) {
        const message = `A download link holds about a thousand slide ids; this selection has ${summary.slides}. Select the slides by filter ("all results"), or download them with the manifest (slidebank fetch)`;
        return { ...summary, zip: null, zipRefusal: { status: 413, code: 'selection_too_long_for_link', message } };
      }
      return { ...summary, zip: { href, url: `${origin(ctx)}${href}`, expiresAt } };
    },
  }),
  route({
    method: 'get',
    path: '/api/downloads/zip',
    tag,
    summary: 'Download a selection as one ZIP through a signed link from POST /api/downloads/links',
    description:
      'The same ZIP as `POST /api/downloads`, for a plain GET (a browser\'s download manager). The request is made with the account\'s own session or token, and passes the same checks as every download at the time of the GET: the level and data use agreement (403 level_required), the bundle bounds and download limits (413, or 429 with Retry-After), withdrawn slides (404 slide_not_found), audited when it ends. A link that was changed or not made by this server is 403 download_link_invalid, one past its time 410 download_link_expired, one made for another account 403 download_link_not_yours.',
    access: downloader,
    query: linkQuery,
    before: [retryAfter],
    response: { description: 'The ZIP archive', contentType: 'application/zip' },
    handle: async ({ query }, ctx) => {
      linksOf(ctx).verify('zip', query as LinkQuery, requesterOf(ctx).user!.id, new Date());
      if (ctx.method === 'HEAD') {
        // Nothing is built, counted or audited for a HEAD: the archive exists only as it is sent.
        ctx.status = 200;
        ctx.type = 'application/zip';
        return;
      }
      let selection: Selection;
      if (query.slides !== undefined) selection = { kind: 'slides', ids: [...new Set(query.slides.split(',').map(Number))] };
      else {
        try {
          selection = { kind: 'filter', filter: parseFilter(query.filter!) };
        } catch (error) {
          if (error instanceof FilterError) throw new AppError(400, 'invalid_query', error.message);
          throw error;
        }
      }
      deliverBundle(ctx, await ctx.services.downloads.bundle(actorOf(ctx), selection, origin(ctx)));
    },
  }),
  route({
    method: 'get',
    path: '/api/downloads/manifest',
    tag,
    summary: 'Every file of a selection with its URL, size and SHA-256, for slidebank fetch or a download script',
    description:
      'Select with one of `slides=1,2,3`, `filter=<expression>` or the catalog search\'s own parameters (so a search page\'s query carries over). With format=tsv the columns are url, size, sha256, path, slide_id, kind and slide. At most 10,000 slides (413 manifest_too_large); ids and empty selections are refused as for a bundle. Asking for a manifest downloads nothing, so it counts against no limit.',
    access: downloader,
    query: manifestQuery,
    before: [cacheControl('private, no-store')],
    response: { description: 'The manifest as JSON, or with format=tsv as tab-separated text (text/tab-separated-values)', schema: manifestView },
    handle: async ({ query }, ctx) => sendManifest(ctx, await ctx.services.downloads.manifest(query.selection, origin(ctx), actorOf(ctx)), query.format),
  }),
];
