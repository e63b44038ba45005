import { randomBytes } from 'node:crypto';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ImplementationFn } from 'ava';
import { nativeTest as sharedNativeTest } from '../support/native.js';
import { RandomAccessFile } from '../../server/wsi/tiff/file.js';
import { PAGE_CACHE_READ_MAX, pageCacheReadUnavailable, readCached } from '../../server/wsi/tiff/page-cache.js';

/**
 * Reads served from the page cache on the calling thread (native/page-cache):
 * the same bytes as a read through the thread pool, or undefined, never
 * anything else. A file just written is in the page cache, so its reads are
 * served; what cannot be read at once (past the end, a closed handle, a device
 * with nothing to give) is undefined, and the caller reads the usual way.
 */
const nativeTest = (title: string, implementation: ImplementationFn<[]>) => sharedNativeTest(pageCacheReadUnavailable(), title, implementation);

const dir = mkdtemp(path.join(os.tmpdir(), 'slidebank-page-cache-'));
const content = randomBytes(3 * 1024 * 1024 + 17);
const file = dir.then(async (d) => {
  const name = path.join(d, 'bytes.bin');
  await writeFile(name, content);
  return name;
});
test.after.always(async () => rm(await dir, { recursive: true, force: true }));

nativeTest('a cached range comes back byte for byte, wherever it lies', async (t) => {
  const handle = await open(await file, 'r');
  t.teardown(() => handle.close());
  for (const [position, length] of [
    [0, 1],
    [0, 4096],
    [4095, 2],
    [1_000_003, 65_537],
    [content.length - 100, 100],
  ] as const) {
    const bytes = readCached(handle.fd, position, length);
    t.truthy(bytes, `${length} bytes at ${position}`);
    t.true(bytes!.equals(content.subarray(position, position + length)), `${length} bytes at ${position}`);
  }
});

nativeTest('what cannot be read at once is undefined: past the end, a larger read, a closed handle, a device with nothing to give', async (t) => {
  const handle = await open(await file, 'r');
  const fd = handle.fd;
  t.is(readCached(fd, content.length - 10, 11), undefined, 'one byte past the end');
  t.is(readCached(fd, content.length + 4096, 10), undefined);
  t.is(readCached(fd, 0, PAGE_CACHE_READ_MAX + 1), undefined, 'larger reads go to the thread pool');
  await handle.close();
  t.is(readCached(handle.fd, 0, 10), undefined, 'a closed FileHandle (fd -1)');
  const devNull = await open('/dev/null', 'r');
  t.teardown(() => devNull.close());
  t.is(readCached(devNull.fd, 0, 10), undefined, '/dev/null has nothing to give');
});

nativeTest('nonsense arguments are refused with a reason', async (t) => {
  const { loadAddon } = await import('../../server/wsi/native-addon.js');
  const addon = loadAddon<{ readCached(...args: unknown[]): unknown }>('page-cache', 'page_cache.node').addon!;
  const handle = await open(await file, 'r');
  t.teardown(() => handle.close());
  for (const args of [[handle.fd, -1, 10], [handle.fd, 0, 0], [handle.fd, 0, 5 * 1024 * 1024], ['x', 0, 10], [handle.fd, 0], [-1, 0, 10]]) {
    t.throws(() => addon.readCached(...args), { instanceOf: TypeError, message: /^readCached\(fd, position, length\)/ }, JSON.stringify(args));
  }
});

test('RandomAccessFile reads the same bytes by either path, and still refuses reads past the end', async (t) => {
  const slideFile = await RandomAccessFile.open(await file);
  t.teardown(() => slideFile.close());
  for (const [position, length] of [
    [10, 1000],
    [123_457, PAGE_CACHE_READ_MAX],
    [5, PAGE_CACHE_READ_MAX + 1],
    [0, content.length],
  ] as const) {
    t.true((await slideFile.read(position, length, 'a range')).equals(content.subarray(position, position + length)), `${length} bytes at ${position}`);
  }
  t.is((await slideFile.read(7, 0, 'nothing')).length, 0);
  await t.throwsAsync(slideFile.read(content.length - 5, 10, 'the last tile'), { message: /the last tile lies past the end of the file/ });
});
