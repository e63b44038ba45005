import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { runCli } from '../support/cli.js';
import { createTestDatabase, testDialect } from '../support/database.js';

/** `slidebank dua …` as operators run it on a fresh installation, on a real database. */

test(`dua publish puts a Markdown file in force from the command line, audited, with re-acceptance on request (${testDialect})`, async (t) => {
  const database = await createTestDatabase();
  t.teardown(database.drop);
  const cwd = await mkdtemp(path.join(os.tmpdir(), 'slidebank-dua-'));
  const run = (args: string[]) => runCli(['dua', ...args], { cwd, env: { DATABASE_URL: database.url } });
  await writeFile(path.join(cwd, 'terms.md'), '# Hospital data use terms\n\nResearch use only.\n');
  await writeFile(path.join(cwd, 'terms-2.md'), '# Hospital data use terms\n\nResearch use only. No re-identification.\n');

  const first = await run(['publish', '--file', 'terms.md']);
  t.is(first.code, 0, first.stderr);
  t.is(first.stdout, 'published version 1: Hospital data use terms\n', 'the title is the first heading; the label the next whole number');

  const second = await run(['publish', '--file', 'terms-2.md', '--require-reacceptance', '--title', 'Terms, second edition']);
  t.is(second.code, 0, second.stderr);
  t.is(second.stdout, 'published version 2: Terms, second edition (current holders must accept it again)\n');

  const taken = await run(['publish', '--file', 'terms.md', '--version', '2']);
  t.is(taken.code, 1);
  t.regex(taken.stderr, /Version 2 exists already/);
  const missing = await run(['publish', '--file', 'nowhere.md']);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /cannot read nowhere\.md: ENOENT/);

  const list = await run(['list']);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, /^2\t\d{4}-\d{2}-\d{2}\tTerms, second edition\t\(re-acceptance required\)\n1\t\d{4}-\d{2}-\d{2}\tHospital data use terms\n$/);

  const rows = await database.db.knex('dua_versions').orderBy('id').select('version', 'requires_reacceptance', 'body');
  t.deepEqual(
    rows.map((r: { version: string; requires_reacceptance: unknown }) => [r.version, Boolean(r.requires_reacceptance)]),
    [
      ['1', false],
      ['2', true],
    ],
  );
  const audit = await database.db.knex('audit_log').where({ action: 'dua.version_published' }).orderBy('id').select('actor_id', 'details');
  t.is(audit.length, 2);
  t.true(audit.every((row: { actor_id: number | null }) => row.actor_id === null), 'the command line acts as the operator');
});
