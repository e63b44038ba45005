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
\`invalid_request\`, both with \`details.problems: [{field, message}]\` naming every problem; an id in a path that
names nothing is 404 \`<thing>_not_found\`.

**Access** says who may call a route: \`public\` (anyone, L0), \`logged in\` (any account), \`logged-in session\` (a
browser session, not a token), a level (\`L1\` a confirmed e-mail address, \`L2\` an approved data use agreement in
force, \`L3\` a member of a partner institution; staff roles count as L1 but never as L2 or L3), staff roles (\`admin\`,
\`curator\`, \`pathologist\`, \`staff\` for any), or \`operator\` (an address in \`metrics.allow\`, or an administrator).
Not logged in → 401 \`unauthenticated\`; logged in but not allowed → 403.

**Authenticating**: a session (\`POST /api/auth/login\` sets the \`slidebank.sid\` cookie; writes made with it send the
CSRF token of \`GET /api/auth/csrf\` as \`X-CSRF-Token\`, and anonymous writes to \`/api/auth/*\` send the signed token
of that route together with the \`slidebank.csrf\` cookie it set), or a personal access token
(\`Authorization: Bearer sbk_…\`), which works wherever a session does except making tokens and changing the password.
See [security.md](security.md) for the limits that apply.`;

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
  for (const [tag, operations] of byTag) {
    lines.push(`## ${tag}`, '', '| route | access | what it does |', '| --- | --- | --- |');
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
