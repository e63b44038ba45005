/**
 * The API description against the server that serves it: every route the
 * application answers is described, and every route refuses exactly the
 * requesters its documented access (`x-access`) excludes.
 */
import test from 'ava';
import type Koa from 'koa';
import { openApiDocument } from '../../server/http/openapi.js';
import { apiRoutes } from '../../server/http/routes/index.js';
import type { Level, StaffRole } from '../../server/access/users.repository.js';
import { signedIn, type Client } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';

type Operation = { 'x-access'?: string };
type Description = { openapi: string; paths: Record<string, Record<string, Operation>> };

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Koa's dispatch functions of @koa/router carry the router they serve; the route table's carry its routers. */
interface RouterLike {
  stack: { methods: string[]; path: string | RegExp; name?: string | null }[];
}

function servedRoutes(app: Koa): { methods: string[]; path: string; name: string | null }[] {
  const routers = app.middleware.flatMap((fn) => {
    const { router, routers: table } = fn as { router?: RouterLike; routers?: RouterLike[] };
    return table ?? (router ? [router] : []);
  });
  return routers.flatMap((router) => router.stack.map((layer) => ({ methods: layer.methods, path: String(layer.path), name: layer.name ?? null })));
}

test(`GET /api/openapi.json is an OpenAPI 3.1 description of every route the application serves (${testDialect})`, async (t) => {
  const target = await startTestApp(t);
  const answer = await fetch(target.url('/api/openapi.json'));
  t.is(answer.status, 200);
  const served = (await answer.json()) as Description;
  t.is(served.openapi, '3.1.0');
  t.deepEqual(served, JSON.parse(JSON.stringify(openApiDocument(apiRoutes))) as Description);

  const described = new Set(Object.entries(served.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method} ${path}`)));
  const layers = servedRoutes(target.app).filter((layer) => layer.methods.length > 0);
  t.true(layers.length >= described.size, 'the application mounts the described routes');
  for (const layer of layers) {
    t.truthy(layer.name, `${layer.methods.join(',')} ${layer.path} is served without a route definition, so it is not described`);
    if (layer.name) t.true(described.has(layer.name), `${layer.name} is served but not in the description`);
  }
  for (const operation of described) t.true(layers.some((layer) => layer.name === operation), `${operation} is described but not served`);
});

/** A value for each kind of path parameter, so that a request reaches the route's access guard. */
const SAMPLE: Record<string, string> = { level: '0', col: '0', row: '0', format: 'jpeg', image: 'thumbnail', slug: 'x', name: 'x', file: 'default.jpg' };

function samplePath(template: string): string {
  return template.replace(/\{(\w+)\}/g, (_whole, name: string) => SAMPLE[name] ?? '999999');
}

interface Who {
  label: string;
  level: Level;
  roles: StaffRole[];
  client?: Client;
}

/** Whether a documented access admits a requester, read from the words the description uses. */
function documentedAdmits(access: string, who: Who): boolean {
  if (access === 'public' || access === 'operator') return true; // operator: the test calls from loopback, which metrics.allow admits
  if (!who.client) return false;
  if (access === 'logged in') return true;
  if (access === 'logged-in session') return false; // the clients below authenticate with tokens
  const rank = (level: string) => ['L0', 'L1', 'L2', 'L3'].indexOf(level);
  const effective = who.roles.length > 0 && rank(who.level) < 1 ? 'L1' : who.level;
  return access.split(' or ').some((alternative) => {
    if (/^L[0-3]$/.test(alternative)) return rank(effective) >= rank(alternative);
    if (alternative === 'staff') return who.roles.length > 0;
    return who.roles.includes(alternative as StaffRole);
  });
}

const REFUSALS = new Set(['unauthenticated', 'level_required', 'role_required', 'staff_only', 'session_required', 'operator_only', 'forbidden']);

test(`every route refuses exactly whom its documented access excludes (${testDialect})`, async (t) => {
  const target = await startTestApp(t);
  const description = openApiDocument(apiRoutes) as unknown as Description;
  const people: Who[] = [{ label: 'anonymous', level: 'L0', roles: [] }];
  for (const [label, level, roles] of [
    ['L1', 'L1', []],
    ['L2', 'L2', []],
    ['L3', 'L3', []],
    ['curator', 'L1', ['curator']],
    ['pathologist', 'L1', ['pathologist']],
    ['admin', 'L1', ['admin']],
  ] as [string, Level, StaffRole[]][]) {
    const { token } = await signedIn(target, { level, roles });
    people.push({ label, level, roles, client: token });
  }
  let checked = 0;
  for (const [template, item] of Object.entries(description.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const access = operation['x-access'] ?? 'public';
      const path = samplePath(template);
      for (const who of people) {
        const init = { method: method.toUpperCase(), headers: { 'content-type': 'application/json' }, body: method === 'get' ? undefined : '{}' };
        const answer = who.client
          ? await who.client.request(init.method, path, { body: method === 'get' ? undefined : {} })
          : await fetch(target.url(path), init).then(async (response) => ({ status: response.status, body: await response.json().catch(() => ({})) }));
        const code = (answer.body as { error?: { code?: string } } | undefined)?.error?.code;
        const refused = (answer.status === 401 || answer.status === 403) && REFUSALS.has(code ?? '');
        const expected = !documentedAdmits(access, who);
        // Anonymous writes to public routes meet the CSRF check first; that is a refusal of its own, not the route's access.
        if (!who.client && method !== 'get' && code?.startsWith('csrf')) continue;
        t.is(refused, expected, `${method.toUpperCase()} ${path} (${access}) as ${who.label}: ${answer.status} ${code ?? ''}`);
        checked++;
      }
    }
  }
  t.true(checked > 0);
});
