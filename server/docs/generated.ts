import path from 'node:path';
import { configurationMarkdown } from '../config/reference.js';
import { apiMarkdown } from '../http/openapi-markdown.js';
import { openApiDocument } from '../http/openapi.js';
import { apiRoutes } from '../http/routes/index.js';
import { packageRoot } from '../package-info.js';

/** The pages of docs/ made from the code, by path relative to the package: what `npm run docs` writes and a test compares. */
export function generatedDocs(): Record<string, string> {
  const description = openApiDocument(apiRoutes);
  return {
    'docs/configuration.md': configurationMarkdown(path.join(packageRoot, 'config')),
    'docs/openapi.json': `${JSON.stringify(description, null, 2)}\n`,
    'docs/api.md': apiMarkdown(description),
  };
}
