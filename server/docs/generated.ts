import path from 'node:path';
import { configurationMarkdown } from '../config/reference.js';
import { apiMarkdown } from '../http/openapi-markdown.js';
import { openApiDocument } from '../http/openapi.js';
import { apiRoutes } from '../http/routes/index.js';
import { packageRoot } from '../package-info.js';
import { portalTypes } from './portal-types.js';

/**
 * The files made from the code, by path relative to the package: the pages of docs/ and the portal's API types.
 * What `npm run docs` writes and a test compares.
 */
export async function generatedDocs(): Promise<Record<string, string>> {
  const description = openApiDocument(apiRoutes);
  const descriptionJson = `${JSON.stringify(description, null, 2)}\n`;
  return {
    'docs/configuration.md': configurationMarkdown(path.join(packageRoot, 'config')),
    'docs/openapi.json': descriptionJson,
    'docs/api.md': apiMarkdown(description),
    'web/src/api/schema.ts': await portalTypes(descriptionJson),
  };
}
