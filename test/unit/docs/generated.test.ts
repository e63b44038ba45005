import { readFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { generatedDocs } from '../../../server/docs/generated.js';
import { packageRoot } from '../../../server/package-info.js';

// The configuration reference, the API description and the portal's API types are made from the code;
// a change to any without `npm run docs` fails here.
for (const [file, expected] of Object.entries(await generatedDocs())) {
  test(`${file} is what npm run docs makes from the code`, async (t) => {
    const committed = await readFile(path.join(packageRoot, file), 'utf8').catch(() => '');
    t.true(committed === expected, `${file} is out of date: run npm run docs and commit the result`);
  });
}
