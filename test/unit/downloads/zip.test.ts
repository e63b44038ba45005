import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { useNativeCrc32 } from '../../../server/downloads/native-crc32.js';
import { streamZip, type ZipEntry } from '../../../server/downloads/zip.js';

/** The ZIP builder below the bundle route: entries in, a STOREd archive out, checked by Debian's unzip. */

const UNZIP = '/usr/bin/unzip';
const run = promisify(execFile);

async function scratch(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-zip-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Files under `dir` this process has open (tests run side by side, so only a test's own folder is looked at). */
async function openFds(dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return targets.filter((target) => target.startsWith(dir));
}

test('a STOREd archive of buffers and files passes unzip -t and unpacks to the same bytes', async (t) => {
  const dir = await scratch(t);
  const big = path.join(dir, 'big.bin');
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
  await writeFile(big, bytes);
  const when = new Date('2026-03-04T05:06:08Z');
  const zip = streamZip([
    { name: 'README.txt', source: Buffer.from('hello\n') },
    { name: 'slides/big.svs', source: () => createReadStream(big), date: when },
    { name: 'empty.txt', source: Buffer.alloc(0) },
  ]);
  const out = path.join(dir, 'out.zip');
  await pipeline(zip.stream, createWriteStream(out));
  const outcome = await zip.done;
  t.true(outcome.complete);
  t.is(outcome.entries, 3);
  t.is(outcome.bytes, (await readFile(out)).length);

  const tested = await run(UNZIP, ['-t', out]);
  t.regex(tested.stdout, /No errors detected/);
  const listing = await run(UNZIP, ['-v', out]);
  t.regex(listing.stdout, /Stored\s+.*slides\/big\.svs/, 'every entry is STOREd');
  t.notRegex(listing.stdout, /Defl/);
  await run(UNZIP, ['-q', out, '-d', path.join(dir, 'x')]);
  t.deepEqual(await readFile(path.join(dir, 'x', 'slides', 'big.svs')), bytes);
  t.is(await readFile(path.join(dir, 'x', 'README.txt'), 'utf8'), 'hello\n');
});

test('ZIP64: 65,537 entries (past the 65,535 of a plain ZIP) pass unzip -t with every entry listed', async (t) => {
  const dir = await scratch(t);
  const count = 65_537;
  function* entries(): Generator<ZipEntry> {
    for (let i = 0; i < count; i++) yield { name: `tiny/${String(i).padStart(5, '0')}.txt`, source: Buffer.from(`${i}\n`) };
  }
  const zip = streamZip(entries());
  const out = path.join(dir, 'many.zip');
  await pipeline(zip.stream, createWriteStream(out));
  const outcome = await zip.done;
  t.true(outcome.complete);
  t.is(outcome.entries, count);

  const archive = await readFile(out);
  // The ZIP64 end of central directory record and its locator (APPNOTE 4.3.14, 4.3.15) precede the classic end record.
  t.true(archive.includes(Buffer.from([0x50, 0x4b, 0x06, 0x06])), 'ZIP64 end of central directory record');
  t.true(archive.includes(Buffer.from([0x50, 0x4b, 0x06, 0x07])), 'ZIP64 end of central directory locator');
  const end = archive.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  t.is(archive.readUInt16LE(end + 10), 0xffff, 'the classic record defers the entry count to ZIP64');

  const tested = await run(UNZIP, ['-tq', out], { maxBuffer: 64 * 1024 * 1024 });
  t.regex(tested.stdout, /No errors detected/);
  const listed = await run(UNZIP, ['-Z1', out], { maxBuffer: 64 * 1024 * 1024 });
  const names = listed.stdout.trim().split('\n');
  t.is(names.length, count);
  t.is(names.at(-1), 'tiny/65536.txt');
  const last = await run(UNZIP, ['-p', out, 'tiny/65536.txt']);
  t.is(last.stdout, '65536\n');
});

test('abort while a file is being read closes it, and the outcome says how far it got', async (t) => {
  const dir = await scratch(t);
  const big = path.join(dir, 'big.bin');
  await writeFile(big, Buffer.alloc(32 * 1024 * 1024, 1));
  const before = await openFds(dir);
  let opened = 0;
  const zip = streamZip([
    { name: 'a.txt', source: Buffer.from('a') },
    ...[1, 2, 3].map((n) => ({
      name: `big-${n}.bin`,
      source: () => {
        opened++;
        return createReadStream(big);
      },
    })),
  ]);
  // A slow reader: take 4 MiB, then stop reading (the client stalls), then go away.
  let taken = 0;
  await new Promise<void>((resolve) => {
    zip.stream.on('data', (chunk: Buffer) => {
      taken += chunk.length;
      if (taken >= 4 * 1024 * 1024) {
        zip.stream.pause();
        resolve();
      }
    });
  });
  t.true((await openFds(dir)).includes(big), 'the first big file is open while it is read');
  zip.abort();
  zip.abort();
  const outcome = await zip.done;
  t.false(outcome.complete);
  t.is(outcome.entries, 1, 'only the small entry was written whole');
  t.true(outcome.bytes >= 4 * 1024 * 1024 && outcome.bytes <= taken, `bytes handed on: ${outcome.bytes}, read: ${taken}`);
  t.is(outcome.error, undefined, 'an abort is not an error');
  t.is(opened, 1, 'later files were never opened');
  for (let i = 0; i < 50 && (await openFds(dir)).includes(big); i++) await sleep(10);
  t.deepEqual(await openFds(dir), before, 'no file is left open');
});

test('a source that fails part-way stops the archive with its error and closes nothing twice', async (t) => {
  const failing = new Readable({
    read() {
      this.push(Buffer.alloc(1024, 2));
      this.destroy(new Error('EIO: the disk said no'));
    },
  });
  const zip = streamZip([
    { name: 'ok.txt', source: Buffer.from('fine') },
    { name: 'bad.bin', source: () => failing },
    { name: 'never.txt', source: Buffer.from('never') },
  ]);
  const sink = new Writable({ write: (_chunk, _enc, done) => done() });
  await t.throwsAsync(pipeline(zip.stream, sink));
  const outcome = await zip.done;
  t.false(outcome.complete);
  t.is(outcome.entries, 1);
  t.regex(outcome.error?.message ?? '', /EIO/);
});

test('backpressure: a file source is read no faster than the archive is consumed', async (t) => {
  const dir = await scratch(t);
  const big = path.join(dir, 'big.bin');
  await writeFile(big, Buffer.alloc(64 * 1024 * 1024, 3));
  const source = createReadStream(big, { highWaterMark: 1 << 20 });
  const zip = streamZip([{ name: 'big.bin', source: () => source }]);
  const stalled = new PassThrough({ highWaterMark: 1 << 20 });
  zip.stream.pipe(stalled); // nobody reads `stalled`
  await sleep(300);
  t.true(source.bytesRead < 8 * 1024 * 1024, `read ${source.bytesRead} bytes of 64 MiB with nobody reading`);
  zip.abort();
  await zip.done;
  t.true(source.destroyed);
  const handle = await open(big, 'r');
  await handle.close();
});

test('archives are deterministic for the same entries and dates (so a resumed manifest check is meaningful)', async (t) => {
  const date = new Date('2026-01-01T00:00:00Z');
  const build = async () => {
    const zip = streamZip([{ name: 'x.txt', source: Buffer.from('x'), date }]);
    const chunks: Buffer[] = [];
    for await (const chunk of zip.stream) chunks.push(chunk as Buffer);
    return createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
  };
  t.is(await build(), await build());
});

/** CRC-32 (IEEE) bit by bit: the reference the native replacement is held to. */
function referenceCrc32(data: Uint8Array, seed = 0): number {
  let crc = ~seed >>> 0;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ~crc | 0;
}

test('archiver\'s CRC-32 runs natively (zlib) and gives what crc-32 gives, seeds included', (t) => {
  t.true(useNativeCrc32(), 'Node 20.15+ has zlib.crc32');
  const crc = createRequire(createRequire(import.meta.url).resolve('crc32-stream'))('crc-32') as { buf(data: Uint8Array, seed?: unknown): number };
  t.is(crc.buf(Buffer.from('123456789')) >>> 0, 0xcbf43926, 'the check value of CRC-32/ISO-HDLC');
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 131) & 0xff));
  t.is(crc.buf(data), referenceCrc32(data));
  const first = crc.buf(data.subarray(0, 3333));
  t.is(crc.buf(data.subarray(3333), first), referenceCrc32(data), 'continued from a previous CRC, as crc32-stream does chunk by chunk');
  t.is(crc.buf(data, Buffer.alloc(4)), referenceCrc32(data), 'crc32-stream\'s first seed, a Buffer, counts as 0');
});
