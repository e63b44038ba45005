import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { FIXTURES, fixture, fixtureTest, fixturesDir, fixturesStatus, type FixtureName } from '../support/fixtures.js';

test('a missing fixtures folder skips by default and fails when SLIDEBANK_REQUIRE_FIXTURES=1', (t) => {
  const absent = path.join(os.tmpdir(), 'no-such-fixtures-folder');
  t.is(fixturesStatus(absent, {}), 'missing');
  t.is(fixturesStatus(absent, { SLIDEBANK_REQUIRE_FIXTURES: '1' }), 'required-but-missing');
  t.is(fixturesStatus(path.dirname(absent), { SLIDEBANK_REQUIRE_FIXTURES: '1' }), 'present');
});

// Reads ../shared/fixtures: every pinned file is there with its pinned content.
fixtureTest(`the fixtures in ${fixturesDir} match their pinned SHA-256`, async (t) => {
  for (const [name, sha256] of Object.entries(FIXTURES)) {
    const digest = createHash('sha256').update(await readFile(fixture(name as FixtureName))).digest('hex');
    t.is(digest, sha256, name);
  }
});
