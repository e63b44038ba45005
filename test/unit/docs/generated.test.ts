import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { generatedDocs } from '../../../server/docs/generated.js';
import { packageRoot } from '../../../server/package-info.js';

// The configuration reference and the API description are made from the code; a change to either without `npm run docs` fails here.
for (const [file, expected] of Object.entries(generatedDocs())) {
  test(`${file} is what npm run docs makes from the code`, async (t) => {
    const committed = await readFile(path.join(packageRoot, file), 'utf8').catch(() => '');
    t.true(committed === expected, `${file} is out of date: run npm run docs and commit the result`);
  });
}
