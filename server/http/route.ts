import Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import type { z } from 'zod';
import { AppError } from '../errors.js';
import { accessGuard, type Access, type GuardOptions } from './access.js';
import './context.js';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** The answer a route gives when it succeeds, for the API description. */
export interface SuccessResponse {
  /** 200 unless said otherwise. */
  status?: number;
  description: string;
  /** A JSON body's shape; omit for bodies that are not JSON (then give `contentType`) or for no body. */
  schema?: z.ZodType;
  /** Default `application/json` when `schema` is given. */
  contentType?: string;
}

type Shape = z.ZodType | undefined;
type Parsed<S extends Shape> = S extends z.ZodType ? z.output<S> : Record<string, never>;

export interface RouteInput<P extends Shape, Q extends Shape, B extends Shape> {
  params: Parsed<P>;
  query: Parsed<Q>;
  body: Parsed<B>;
}

/**
 * One route: where it is, who may call it, what it takes and what it answers.
 * Input is parsed here, at the edge, by the schemas; the handler receives it
 * typed and calls a service. What the handler returns becomes the JSON body,
 * unless it set the body itself (files, streams, redirects).
 */
export interface RouteDefinition<P extends Shape = Shape, Q extends Shape = Shape, B extends Shape = Shape> {
  method: Method;
  /** The path as the API description writes it: `/api/slides/{id}`. */
  path: string;
  /**
   * For paths a template cannot express (`/tiles/{slide}_files/{level}/{col}_{row}.{format}`):
   * the pattern the router matches, whose named groups are the path parameters.
   */
  pattern?: RegExp;
  tag: string;
  summary: string;
  description?: string;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  response: SuccessResponse;
  /** Middleware that runs after the guard and before the handler (headers, limits). */
  before?: Middleware[];
  handle(input: RouteInput<P, Q, B>, ctx: Context): unknown;
}

/** Declares a route with its input types inferred from its schemas. */
export function route<P extends Shape = undefined, Q extends Shape = undefined, B extends Shape = undefined>(
  definition: RouteDefinition<P, Q, B>,
): RouteDefinition {
  return definition as unknown as RouteDefinition;
}

/** A route definition, bound to the services it calls. */
export type RouteFactory<D> = (dependencies: D) => RouteDefinition[];

/** The mounted routes: their middleware and the 405/501 answers for paths they know under other methods. */
export interface RouteTable {
  routes(): Middleware;
  allowedMethods(): Middleware;
}

/**
 * Mounts routes: each gets the guard its access declares, then its input
 * parsed, then its handler. One router per first path segment (`/api`,
 * `/tiles`, `/dicomweb`, …), picked by a map lookup: a router tries every
 * route's pattern in turn, and a tile should not be matched against the
 * hundred-odd routes of the API first.
 */
export function mountRoutes(definitions: readonly RouteDefinition[], options: GuardOptions): RouteTable {
  const routers = new Map<string, Router>();
  for (const definition of definitions) {
    const segment = firstSegment(definition.path);
    if (/[{:]/.test(segment)) throw new Error(`${definition.method} ${definition.path}: a route's first path segment is fixed text`);
    let router = routers.get(segment);
    if (!router) routers.set(segment, (router = new Router()));
    const path = definition.pattern ?? koaPath(definition.path);
    const handler: Middleware = async (ctx) => {
      const pathParams = definition.pattern ? { ...definition.pattern.exec(ctx.path)?.groups } : ctx.params;
      const input = {
        params: parse(definition.params, pathParams, 'path'),
        query: parse(definition.query, ctx.query, 'query'),
        body: parse(definition.body, ctx.request.body, 'body'),
      };
      const result = await definition.handle(input, ctx);
      if (result !== undefined) answer(ctx, result);
      // Koa's status is 404 until a body is set, 200 after: either means the handler chose none of its own.
      const chosen = !(ctx.status === 200 || (ctx.status === 404 && ctx.body == null));
      if (definition.response.status !== undefined && !chosen) ctx.status = definition.response.status;
    };
    const chain = [accessGuard(definition.access, options), ...(definition.before ?? []), handler];
    router.register(path, [definition.method.toUpperCase()], chain, { name: `${definition.method} ${definition.path}`, pathAsRegExp: definition.pattern !== undefined });
  }
  const bySegment = (make: (router: Router) => Middleware): Middleware => {
    const middleware = new Map([...routers].map(([segment, router]) => [segment, make(router)]));
    return (ctx, next) => {
      const chosen = middleware.get(firstSegment(ctx.path));
      return chosen ? chosen(ctx, next) : next();
    };
  };
  return {
    // The routers stay reachable from the application, for the tests that compare what is served with what is described.
    routes: () => Object.assign(bySegment((router) => router.routes() as unknown as Middleware), { routers: [...routers.values()] }),
    allowedMethods: () => bySegment((router) => router.allowedMethods() as unknown as Middleware),
  };
}

/** `/tiles/12_files/3/0_0.jpeg` → `/tiles`; lower-cased, as the routers match paths without regard to case. */
function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return (end === -1 ? path : path.slice(0, end)).toLowerCase();
}

/** `/api/slides/{id}` → `/api/slides/:id`. */
export function koaPath(template: string): string {
  return template.replace(/\{(\w+)\}/g, ':$1');
}

/**
 * A handler's answer; an object or array as the JSON bytes Koa would send: Koa keeps an object
 * body as it is and stringifies it anew each time its length is asked for
 * (compression asks, then the answer is written), which for a catalog page
 * is a good part of its cost.
 */
function answer(ctx: Context, result: unknown): void {
  const json = result !== null && typeof result === 'object' && !(result instanceof Uint8Array) && typeof (result as { pipe?: unknown }).pipe !== 'function';
  if (!json) {
    ctx.body = result;
    return;
  }
  // A type the handler chose (DICOM JSON, GeoJSON) is kept, as Koa keeps it for an object.
  const typed = Boolean(ctx.response.get('Content-Type'));
  ctx.body = Buffer.from(JSON.stringify(result));
  if (!typed) ctx.type = 'application/json';
}

function parse(schema: z.ZodType | undefined, value: unknown, where: 'path' | 'query' | 'body'): unknown {
  if (!schema) return {};
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const first = result.error.issues[0]!;
  if (where === 'path') {
    // A path that names nothing that could exist is not found: the code its parameter declares (idParam).
    const field = (schema as z.ZodObject).shape?.[String(first.path[0])];
    const code = field?.meta()?.['x-not-found'];
    throw new AppError(404, typeof code === 'string' ? code : 'not_found', first.message);
  }
  const problems = describeProblems(result.error.issues, value, where);
  throw new AppError(400, where === 'query' ? 'invalid_query' : 'invalid_request', problems.map((p) => p.message).join('; '), {
    details: { problems },
  });
}

/**
 * Every problem at once, each naming its field: an unknown field, a missing one, or what is wrong with a given one.
 * A nested field's path leads its message (`parameters.size must be at least 1`) unless the message names it already.
 */
function describeProblems(issues: z.core.$ZodIssue[], value: unknown, where: 'query' | 'body'): { field: string; message: string }[] {
  const given = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const noun = where === 'query' ? 'parameter' : 'field';
  return issues.flatMap((issue) => {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: [...path, key].join('.'), message: `${[...path, key].join('.')} is not a ${noun} here` }));
    }
    if (path.length === 0 && issue.code === 'invalid_type') {
      return [{ field: where, message: where === 'body' ? 'The request body must be a JSON object' : issue.message }];
    }
    const field = path.join('.');
    if (path.length > 0 && isMissing(given, path)) return [{ field, message: `${field} is missing` }];
    const named = path.length <= 1 || issue.message.startsWith(path.at(-1)!) ? issue.message : `${field} ${issue.message}`;
    return [{ field: field || where, message: named }];
  });
}

/** Whether the last key of `path` is absent from an object that is there. */
function isMissing(given: Record<string, unknown>, path: string[]): boolean {
  let parent: unknown = given;
  for (const key of path.slice(0, -1)) parent = typeof parent === 'object' && parent !== null ? (parent as Record<string, unknown>)[key] : undefined;
  return typeof parent === 'object' && parent !== null && !Array.isArray(parent) && !(path.at(-1)! in parent);
}
