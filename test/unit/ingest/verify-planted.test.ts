import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { deidentifySlide } from '../../../server/ingest/deidentify/deidentify.js';
import { verifyDeidentified } from '../../../server/ingest/deidentify/verify.js';
import type { SlideTruth } from '../../../server/wsi/generate/index.js';
import { makeSlide } from '../../support/slides.js';

/** A generated slide de-identified into a copy, with what the verification expects of it. */
async function deidentified(t: { teardown(fn: () => Promise<void>): void }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-verify-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const made = await makeSlide({ width: 4000, height: 3000, seed: 3, out: dir, name: 'KIM-MINJI-0042', tileSize: 240 });
  const truth = JSON.parse(await readFile(made.truth, 'utf8')) as SlideTruth;
  const copy = path.join(dir, 'copy.svs');
  const result = await deidentifySlide(made.svs, copy, { originalName: 'KIM-MINJI-0042.svs' });
  const expected = { identifiers: result.identifiers, levels: result.expectedLevels, sha256: result.sha256, size: result.size };
  return { copy, truth, result, expected };
}

test('the de-identified copy passes; the same copy with an identifying value written over its tile data anywhere fails, naming the value’s source', async (t) => {
  const { copy, result, expected } = await deidentified(t);
  const clean = await verifyDeidentified(copy, expected);
  t.true(clean.passed, JSON.stringify(clean.checks.filter((c) => !c.passed)));
  t.is(clean.bytesScanned, result.size);

  const original = await readFile(copy);
  const user = result.identifiers.scanned.find((v) => v.source === 'Aperio User');
  t.truthy(user, 'the generated slide has an Aperio User to search for');
  const plants = [
    { source: 'Aperio User', bytes: Buffer.from(user!.value, 'latin1') },
    { source: 'file name without extension', bytes: Buffer.from('KIM-MINJI-0042', 'utf16le') },
  ];
  // In the middle of the data, near the end, and at the very last byte.
  for (const plant of plants) {
    for (const at of [Math.floor(result.size / 2) + 1, result.size - 4097, result.size - plant.bytes.length]) {
      const handle = await open(copy, 'r+');
      await handle.write(plant.bytes, 0, plant.bytes.length, at);
      await handle.close();
      const verification = await verifyDeidentified(copy, expected);
      const check = verification.checks.find((c) => c.name === 'no identifying value anywhere in the file')!;
      t.false(verification.passed, `${plant.source} at ${at}`);
      t.false(check.passed);
      t.regex(check.detail, new RegExp(`found the original's .*${plant.source}`));
      const restore = await open(copy, 'r+');
      await restore.write(original, 0, original.length, 0);
      await restore.close();
    }
  }
});
