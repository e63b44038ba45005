import { createRequire } from 'node:module';
import zlib from 'node:zlib';

type Crc32Buf = (data: Uint8Array, seed?: unknown) => number;
interface Crc32Module {
  buf: Crc32Buf;
}

let applied: boolean | undefined;

/**
 * archiver computes every entry's CRC-32 with the pure-JavaScript `crc-32`
 * package (through crc32-stream and compress-commons): measured here at
 * ~850 MB per CPU-second against ~1,900 for reading the file, which made it
 * the most expensive step of a STOREd bundle. Node 20.15+ has zlib's native
 * `crc32`, the same function: this points `crc-32`'s `buf` (the one archiver
 * calls) at it. Same arguments, same result: the starting value is the
 * previous CRC and the result a signed 32-bit integer; a starting value that is
 * not a number (crc32-stream starts with a Buffer) counts as 0, as it does in
 * `crc-32`.
 *
 * Nothing changes unless zlib has `crc32`, the module archiver loads is found,
 * and both agree on test vectors first. Returns whether the native one is in use.
 */
export function useNativeCrc32(): boolean {
  if (applied !== undefined) return applied;
  applied = false;
  const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
  if (typeof native !== 'function') return applied;
  let crc: Crc32Module;
  try {
    // The instance crc32-stream itself loads (a nested copy would be another module).
    const fromArchiver = createRequire(createRequire(import.meta.url).resolve('crc32-stream'));
    crc = fromArchiver('crc-32') as Crc32Module;
  } catch {
    return applied;
  }
  const original = crc.buf;
  const replacement: Crc32Buf = (data, seed) => native(data, typeof seed === 'number' ? seed >>> 0 : 0) | 0;
  const vectors = [Buffer.from('123456789'), Buffer.alloc(0), Buffer.from(Array.from({ length: 4099 }, (_, i) => (i * 7) & 0xff))];
  for (const data of vectors) {
    for (const seed of [undefined, 0, -1, 0x12345678, -889275714, Buffer.alloc(4)]) {
      if (replacement(data, seed) !== original(data, seed as number)) return applied;
    }
  }
  crc.buf = replacement;
  applied = true;
  return applied;
}
