import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { SCAN_BLOCK, scanBytes } from '../../../server/ingest/deidentify/verify.js';

const MiB = 1024 * 1024;

async function fileWith(t: { teardown(fn: () => Promise<void>): void }, size: number, plants: [number, Buffer][]): Promise<{ file: string; bytes: Buffer }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-scan-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Random bytes, as compressed tiles look.
  const bytes = randomBytes(size);
  for (const [at, value] of plants) value.copy(bytes, at);
  const file = path.join(dir, 'copy.svs');
  await writeFile(file, bytes);
  return { file, bytes };
}

const identifiers = {
  scanned: [
    { source: 'Aperio Filename', value: 'KIM_MINJI' },
    { source: 'Aperio User', value: '0b1e2c3d-0000-4000-8000-00000000beef' },
    { source: 'TIFF DateTime', value: '2024:01:02 10:11:12' },
  ],
  tooShort: [],
};

test('a value straddling the boundary between two read blocks is found, wherever it is cut, in Latin-1 and UTF-16', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-scan-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clean = randomBytes(SCAN_BLOCK + MiB);
  const file = path.join(dir, 'copy.svs');
  for (const encoding of ['latin1', 'utf16le'] as const) {
    const value = Buffer.from('KIM_MINJI', encoding);
    for (let cut = 1; cut < value.length; cut++) {
      const bytes = Buffer.from(clean);
      value.copy(bytes, SCAN_BLOCK - cut);
      await writeFile(file, bytes);
      t.deepEqual((await scanBytes(file, identifiers)).found, ['Aperio Filename'], `${encoding}, cut after ${cut} bytes`);
    }
  }
});

test('a value planted anywhere in a file is found: random places, both encodings, every value', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-scan-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const clean = randomBytes(2 * SCAN_BLOCK + 12_345);
  const file = path.join(dir, 'copy.svs');
  for (let round = 0; round < 12; round++) {
    const item = identifiers.scanned[round % identifiers.scanned.length]!;
    const value = Buffer.from(item.value, round % 2 === 0 ? 'latin1' : 'utf16le');
    const at = Math.floor(Math.random() * (clean.length - value.length + 1));
    const bytes = Buffer.from(clean);
    value.copy(bytes, at);
    await writeFile(file, bytes);
    t.deepEqual((await scanBytes(file, identifiers)).found, [item.source], `${item.source} at ${at}`);
  }
});

test('values at the very start and the very end, and in UTF-16, are found; the hash and size are the file’s', async (t) => {
  const user = Buffer.from('0b1e2c3d-0000-4000-8000-00000000beef', 'utf16le');
  const date = Buffer.from('2024:01:02 10:11:12', 'latin1');
  const { file, bytes } = await fileWith(t, 5 * MiB + 17, [
    [0, date],
    [5 * MiB + 17 - user.length, user],
  ]);
  const result = await scanBytes(file, identifiers);
  t.deepEqual(result.found.sort(), ['Aperio User', 'TIFF DateTime']);
  t.is(result.bytes, bytes.length);
  t.is(result.sha256, createHash('sha256').update(bytes).digest('hex'));
});

test('a clean file reports nothing, and a value cut short is not a match', async (t) => {
  const { file } = await fileWith(t, 3 * MiB, [[MiB, Buffer.from('KIM_MINJ', 'latin1')]]);
  t.deepEqual((await scanBytes(file, identifiers)).found, []);
});
