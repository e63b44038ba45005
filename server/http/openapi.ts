import { createDocument, type ZodOpenApiOperationObject, type ZodOpenApiPathsObject } from 'zod-openapi';
import { z } from 'zod';
import { version } from '../package-info.js';
import { describeAccess } from './access.js';
import type { RouteDefinition } from './route.js';

/** The error body every failure has (see middleware/error-handler.ts). */
export const errorBody = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable, machine-readable: what went wrong' }),
      message: z.string().meta({ description: 'For people: what went wrong and what to do' }),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .meta({ id: 'Error' });

const STANDARD_ERRORS: Record<string, string> = {
  '400': 'The input is malformed; the message names the part',
  '401': 'Nobody is logged in (no session cookie and no bearer token)',
  '403': 'Logged in, but the access level or role does not allow this',
  '404': 'Nothing at this address, or an id that names nothing',
};

/**
 * The OpenAPI 3.1 description of the HTTP API, made from the route
 * definitions themselves: paths, parameters, bodies, answers and each
 * route's access (`x-access`, in the words of access.ts).
 */
export function openApiDocument(definitions: readonly RouteDefinition[]): ReturnType<typeof createDocument> {
  const paths: ZodOpenApiPathsObject = {};
  for (const definition of definitions) {
    const item = (paths[definition.path] ??= {});
    item[definition.method] = operation(definition);
  }
  return createDocument({
    openapi: '3.1.0',
    info: {
      title: 'Slidebank',
      version,
      description:
        'The HTTP API of a Slidebank appliance. Authenticate with the session cookie of `POST /api/auth/login` (browsers; writes also need the CSRF token of `GET /api/auth/csrf`) or with `Authorization: Bearer <personal access token>`. `x-access` on each operation says who may call it.',
    },
    components: {
      securitySchemes: {
        session: { type: 'apiKey', in: 'cookie', name: 'slidebank.sid', description: 'The session cookie set by POST /api/auth/login' },
        token: { type: 'http', scheme: 'bearer', description: 'A personal access token made on the account page' },
      },
    },
    paths,
  });
}

function operation(definition: RouteDefinition): ZodOpenApiOperationObject {
  const { response } = definition;
  const contentType = response.contentType ?? (response.schema ? 'application/json' : undefined);
  const success = {
    description: response.description,
    ...(contentType ? { content: { [contentType]: response.schema ? { schema: response.schema } : {} } } : {}),
  };
  const errors = Object.fromEntries(
    Object.entries(STANDARD_ERRORS)
      .filter(([status]) => definition.access.kind !== 'public' || (status !== '401' && status !== '403'))
      .map(([status, description]) => [status, { description, content: { 'application/json': { schema: errorBody } } }]),
  );
  const requestParams = {
    ...(definition.params ? { path: definition.params as z.ZodObject } : {}),
    ...(definition.query ? { query: definition.query as z.ZodObject } : {}),
  };
  return {
    operationId: operationId(definition),
    tags: [definition.tag],
    summary: definition.summary,
    ...(definition.description ? { description: definition.description } : {}),
    'x-access': describeAccess(definition.access),
    security: definition.access.kind === 'public' ? [] : [{ session: [] }, { token: [] }],
    ...(Object.keys(requestParams).length > 0 ? { requestParams } : {}),
    ...(definition.body ? { requestBody: { required: true, content: { 'application/json': { schema: definition.body } } } } : {}),
    responses: { [String(response.status ?? 200)]: success, ...errors },
  };
}

/** `get /api/slides/{id}/thumbnail` → `getApiSlidesIdThumbnail`. */
function operationId({ method, path }: RouteDefinition): string {
  const words = path.split(/[^A-Za-z0-9]+/).filter((word) => word !== '');
  return method + words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('');
}
