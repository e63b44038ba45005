import openapiTS, { astToString, COMMENT_HEADER } from 'openapi-typescript';

/**
 * The portal's API types (web/src/api/schema.ts): `paths` and
 * `components['schemas']` of the API description as TypeScript, made by
 * openapi-typescript from the same JSON text as docs/openapi.json.
 */
export async function portalTypes(descriptionJson: string): Promise<string> {
  const nodes = await openapiTS(descriptionJson, { silent: true });
  return COMMENT_HEADER + astToString(nodes);
}
