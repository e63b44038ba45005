/**
 * Writes the generated reference pages: docs/configuration.md (from the
 * configuration schema, its descriptions and defaults), docs/openapi.json and
 * docs/api.md (from the route definitions), and the portal's API types
 * web/src/api/schema.ts (from that description). `npm run docs`; with
 * `--check`, writes nothing and exits 1 when a file is out of date
 * (test/unit/docs/generated.test.ts does the same in the suite).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generatedDocs } from '../server/docs/generated.js';
import { packageRoot } from '../server/package-info.js';

const check = process.argv.includes('--check');
let stale = 0;
for (const [file, text] of Object.entries(await generatedDocs())) {
  const target = path.join(packageRoot, file);
  const current = (() => {
    try {
      return readFileSync(target, 'utf8');
    } catch {
      return undefined;
    }
  })();
  if (current === text) continue;
  if (check) {
    console.error(`${file} is out of date: run npm run docs`);
    stale++;
  } else {
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
    console.log(`wrote ${file}`);
  }
}
process.exitCode = stale > 0 ? 1 : 0;
