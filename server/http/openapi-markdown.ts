import type { openApiDocument } from './openapi.js';

type Document = ReturnType<typeof openApiDocument>;
type Schema = { type?: string | string[]; enum?: unknown[]; minimum?: number; maximum?: number; default?: unknown; description?: string; $ref?: string; items?: Schema; anyOf?: Schema[]; const?: unknown; format?: string; properties?: Record<string, Schema>; required?: string[] };
type Parameter = { name: string; in: string; required?: boolean; description?: string; schema?: Schema };
type Operation = {
  summary?: string;
  description?: string;
  tags?: string[];
  'x-access'?: string;
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
};

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete'] as const;

const INTRO = `Every route, what it takes, what it answers and who may call it. Made from the route definitions
(\`server/http/routes/\`) by \`npm run docs\`, as is [openapi.json](openapi.json), the same description in
OpenAPI 3.1 that a running server serves at \`GET /api/openapi.json\`; a test fails when either is out of date.

Answers are JSON unless a route says otherwise. Errors are \`{"error": {"code", "message", "requestId", "details?"}}\`
with a stable \`code\`, never a stack trace: a malformed query is 400 \`invalid_query\` and a malformed body 400
\`invalid_request\`, both with \`details.problems: [{field, message}]\` naming every problem (most routes refuse
parameters and fields they do not know); an id in a path that names nothing is 404 \`<thing>_not_found\`. A 429 or
503 whose \`details.retryAfterSeconds\` says when to come back carries it as \`Retry-After\` too.

**Access** says who may call a route: \`public\` (anyone, L0), \`logged in\` (any account), \`logged-in session\` (a
browser session, not a token), a level (\`L1\` a confirmed e-mail address, \`L2\` an approved data use agreement in
force, \`L3\` a member of a partner institution; staff roles count as L1 but never as L2 or L3), staff roles (\`admin\`,
\`curator\`, \`pathologist\`, \`staff\` for any), or \`operator\` (an address in \`metrics.allow\`, or an administrator).
Not logged in → 401 \`unauthenticated\`; logged in but not allowed → 403 \`level_required\`, \`role_required\`,
\`staff_only\` or \`session_required\` (\`operator\` routes: 403 \`operator_only\`, logged in or not).

**Authenticating**, one of two ways:

- A session. \`POST /api/auth/login\` sets the \`slidebank.sid\` cookie (httpOnly, SameSite=Lax, Secure as
  \`http.secureCookies\` says) and answers with the session's CSRF token, which \`GET /api/auth/csrf\` and
  \`GET /api/auth/me\` also give; every write made with the cookie sends it as \`X-CSRF-Token\`. Anonymous writes to
  \`/api/auth/*\` send the signed token of \`GET /api/auth/csrf\` together with the \`slidebank.csrf\` cookie that answer
  set (httpOnly, SameSite=Strict; nothing is stored on the server). A missing or wrong token is 403
  \`csrf_token_invalid\`. A write from another site (\`Sec-Fetch-Site: cross-site\`, or an \`Origin\` other than this
  server's or \`mail.publicUrl\`'s) is 403 \`cross_site_request\`, with or without a session.
- A personal access token, \`Authorization: Bearer sbk_…\`: it works wherever a session does except making tokens and
  changing the password, needs no CSRF token, and with scope \`read\` may only GET (403 \`token_scope\`). A token that
  is malformed, unknown, revoked or expired, or whose account is disabled, is a 401 (\`invalid_authorization\`,
  \`invalid_token\`, \`token_revoked\`, \`token_expired\`, \`account_disabled\`) with \`WWW-Authenticate: Bearer\`.

**Lists** that page take \`page\` and \`pageSize\` (from 1) or \`offset\` and \`limit\`, as each route's query shows, and
most answer their \`total\` too.

**Withdrawn slides**: a slide's bytes leave the server only while it is published. For a withdrawn slide every route
that would send its files or anything made from them (tiles, thumbnails, \`annotation.geojson\`, annotation versions,
files, bundles, manifests, job results, heat-map overlays) answers 404 \`slide_not_found\`, as for a slide that does not
exist, and dataset bags leave it out.

**CSV and TSV** answers (audit export, manifests, bundle metadata, patch indexes) prefix a text cell that a spreadsheet
would run as a formula (starting with \`=\`, \`+\`, \`-\` or \`@\`, also after a tab or carriage return) with \`'\`.

See [security.md](security.md) for the limits that apply.`;

/**
 * Text under an area's heading: what holds for every route of the area. Each key is a route tag; a tag that no
 * route has any more is an error, so that no text is silently left out.
 */
const SECTIONS: Record<string, string> = {
  Accounts: `Passwords have at least 12 characters, are not the e-mail address and not a common password (400
\`weak_password\` naming each problem). Names and institutions are plain text: \`<\`, \`>\` and control characters are
refused (400). Registrations, confirmation resends and reset requests share one limit per client address
(\`auth.accountRequests.*\`: 429 \`too_many_requests\`); a route that hashes a password answers 503 \`server_busy\` when
more hashes wait than \`auth.passwordHashing.queued\` allows. Answers are never cached (\`Cache-Control: no-store\`).`,
  Downloads: `Every download — single files, bundles, dataset bags and toolbox job results — passes one set of per-user
limits, counted in each server process's memory: at most \`downloads.concurrentPerUser\` at once (429
\`too_many_downloads\`, \`Retry-After: 30\`) and \`downloads.bytesPerDay\` bytes per UTC day (429 \`daily_allowance_used\`,
with \`Retry-After\` until midnight UTC; 413 \`exceeds_daily_allowance\` for one download larger than a whole day's
allowance). Files and bundles are audited when they end, with the bytes sent and whether they completed; users see
their own in \`GET /api/account/downloads\`. A filter expression selects slides as the catalog's parameters do:
\`organ=CO,LV;stain=IHC;q=adeno\` — \`;\` between clauses, \`,\` between values (OR-ed), clauses AND-ed; \`%\`, \`;\` and \`,\`
inside a value are percent-encoded; the empty expression selects every published slide.`,
  'Toolbox jobs': `The five toolbox tools as background jobs, run by worker processes (\`queue.workers\` of them, or
\`slidebank worker\` services); how they are claimed, retried, stopped and cancelled is in
[toolbox.md](toolbox.md#toolbox-jobs). A job is visible to its owner and to administrators; to anyone else it is a 404
\`job_not_found\`. In a job, \`owner\` is null for jobs the \`preprocess\` schedule queued, \`log\` keeps the last 8000
characters over all attempts, and \`results\` (files under \`<paths.data>/results/<id>/\`) are listed once the job has
succeeded. A job whose input is bad or whose disk filled fails at once with the reason in \`error\`; other failures are
retried up to \`queue.maxAttempts\` times; an attempt running longer than \`queue.maxRunMinutes\` fails, not to be
retried, with \`exceeded the run time limit of N minutes\`. A failed, cancelled or interrupted attempt leaves no results.`,
  'Annotation review': `Every outline of a slide is kept as a version (\`manual\`, \`ai\` — a model's proposal — or
\`corrected\`); one workflow per slide says where its review stands: \`to-annotate\`, \`proposed\`, \`in-review\`,
\`cross-check\`, \`released\` ([toolbox.md](toolbox.md#annotation-review)). The released version is written as the slide's
annotation file, which the viewer, \`annotation.geojson\` and downloads serve. A slide's workflow starts on first use,
with its ingested outline as the released baseline. Edits, confirmations and cross-checks are for pathologists (403
\`pathologist_only\` for other staff). Every write names the workflow \`revision\` it was made against; an older one is
409 \`stale_revision\` (reload and redo). An outline is refused with 400 \`invalid_annotation\`, naming the layer and
region, when a polygon crosses itself, a hole lies outside every shape, or the outline leaves the slide or is empty;
so is an outline of more than 100,000 vertices, or a layer whose holes would take more than 10 million point-in-shape
vertex tests to place; at most 50 problems are listed, the rest counted. Outlines are read, checked and compared on worker
threads, off the event loop. Each step is audited as \`annotation.<action>\`.`,
};

/** The API description as the Markdown page `docs/api.md`. */
export function apiMarkdown(document: Document): string {
  const byTag = new Map<string, { method: string; path: string; operation: Operation }[]>();
  for (const [path, item] of Object.entries(document.paths ?? {})) {
    for (const method of METHODS) {
      const operation = (item as Record<string, Operation | undefined>)[method];
      if (!operation) continue;
      const tag = operation.tags?.[0] ?? 'Other';
      byTag.set(tag, [...(byTag.get(tag) ?? []), { method, path, operation }]);
    }
  }
  const lines = ['# Slidebank HTTP API', '', INTRO, ''];
  lines.push('| area | routes |', '| --- | ---: |');
  for (const [tag, operations] of byTag) lines.push(`| [${tag}](#${anchor(tag)}) | ${operations.length} |`);
  lines.push('');
  const unknown = Object.keys(SECTIONS).filter((tag) => !byTag.has(tag));
  if (unknown.length > 0) throw new Error(`openapi-markdown: section text for ${unknown.join(', ')}, which no route has as its tag`);
  for (const [tag, operations] of byTag) {
    lines.push(`## ${tag}`, '');
    if (SECTIONS[tag]) lines.push(SECTIONS[tag], '');
    lines.push('| route | access | what it does |', '| --- | --- | --- |');
    for (const { method, path, operation } of operations) {
      lines.push(`| \`${method.toUpperCase()} ${path}\` | ${operation['x-access'] ?? ''} | ${cell(operation.summary ?? '')} |`);
    }
    lines.push('');
    for (const { method, path, operation } of operations) lines.push(...details(method, path, operation));
  }
  return `${lines.join('\n').trimEnd()}\n`;
}

function details(method: string, path: string, operation: Operation): string[] {
  const out = [`### \`${method.toUpperCase()} ${path}\``, ''];
  out.push(`${operation.summary ?? ''}. Access: ${operation['x-access'] ?? 'public'}.`, '');
  if (operation.description) out.push(operation.description, '');
  const parameters = operation.parameters ?? [];
  for (const where of ['path', 'query'] as const) {
    const listed = parameters.filter((parameter) => parameter.in === where);
    if (listed.length === 0) continue;
    out.push(`${where === 'path' ? 'Path' : 'Query'}: ${listed.map((p) => `\`${p.name}\` (${typeText(p.schema)}${p.required && where === 'query' ? ', required' : ''}${p.description ? `: ${p.description}` : ''})`).join('; ')}.`, '');
  }
  const body = operation.requestBody?.content;
  if (body) {
    for (const [type, { schema }] of Object.entries(body)) out.push(`Body (\`${type}\`): ${typeText(schema)}.`, '');
  }
  const success = Object.entries(operation.responses ?? {}).filter(([status]) => status.startsWith('2') || status.startsWith('3'));
  for (const [status, response] of success) {
    const content = Object.entries(response.content ?? {});
    const what = content.map(([type, { schema }]) => (schema ? `${typeText(schema)} as \`${type}\`` : `\`${type}\``)).join(', ');
    out.push(`Answer: ${status}, ${response.description ?? ''}${what ? ` — ${what}` : ''}.`, '');
  }
  return out;
}

function typeText(schema: Schema | undefined): string {
  if (!schema) return 'any';
  if (schema.$ref) {
    const name = schema.$ref.split('/').pop()!;
    return `[${name}](openapi.json)`;
  }
  if (schema.anyOf) return schema.anyOf.map(typeText).join(' or ');
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return `one of ${schema.enum.map((value) => `\`${String(value)}\``).join(', ')}`;
  const type = Array.isArray(schema.type) ? schema.type.join(' or ') : (schema.type ?? 'any');
  if (type === 'array') return `list of ${typeText(schema.items)}`;
  if (type === 'object' && schema.properties) {
    const required = new Set(schema.required ?? []);
    return `{${Object.entries(schema.properties).map(([name, property]) => `${name}${required.has(name) ? '' : '?'}: ${typeText(property)}`).join(', ')}}`;
  }
  const bounds = [
    schema.minimum !== undefined && schema.maximum !== undefined ? `${schema.minimum}–${schema.maximum}` : '',
    schema.default !== undefined ? `default ${JSON.stringify(schema.default)}` : '',
  ].filter((part) => part !== '');
  return bounds.length > 0 ? `${type} ${bounds.join(', ')}` : type;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** GitHub's heading anchors: lower case, spaces to hyphens, most punctuation dropped. */
function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-');
}
