import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { deidentifySlide } from '../../../server/ingest/deidentify/deidentify.js';
import { makeSlide } from '../../support/slides.js';

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

for (const bigtiff of [false, true]) {
  test(`hashing the original while copying (${bigtiff ? 'BigTIFF' : 'classic TIFF'}) gives the original's SHA-256 and the same copy as reading only the tiles`, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-deid-hash-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const made = await makeSlide({ width: 3000, height: 2000, seed: 5, out: dir, name: 'case', tileSize: 240, bigtiff });
    const hashed = await deidentifySlide(made.svs, path.join(dir, 'hashed.svs'), { originalName: 'case.svs', hashOriginal: true, blockBytes: 64 * 1024 });
    const plain = await deidentifySlide(made.svs, path.join(dir, 'plain.svs'), { originalName: 'case.svs' });
    t.is(hashed.originalSha256, sha256(await readFile(made.svs)));
    t.is(plain.originalSha256, undefined);
    const [a, b] = [await readFile(path.join(dir, 'hashed.svs')), await readFile(path.join(dir, 'plain.svs'))];
    t.true(a.equals(b), 'the same bytes either way');
    t.is(hashed.sha256, sha256(a));
    t.is(hashed.size, a.length);
  });
}
