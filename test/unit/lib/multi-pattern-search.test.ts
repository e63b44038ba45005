import { randomBytes } from 'node:crypto';
import test from 'ava';
import { MultiPatternSearch, type PatternMatch } from '../../../server/lib/multi-pattern-search.js';

/** Every (pattern, end) by comparing each pattern at each position: the answer the automaton must give. */
function naive(patterns: Uint8Array[], haystack: Uint8Array): string[] {
  const found: string[] = [];
  const bytes = Buffer.from(haystack.buffer, haystack.byteOffset, haystack.length);
  patterns.forEach((pattern, id) => {
    for (let at = bytes.indexOf(pattern); at >= 0; at = bytes.indexOf(pattern, at + 1)) found.push(`${id}@${at + pattern.length}`);
  });
  return found.sort();
}

function flatten(matches: PatternMatch[]): string[] {
  return matches.flatMap((m) => m.patterns.map((id) => `${id}@${m.end}`)).sort();
}

/** A small, deterministic random source, so a failure can be reproduced from its seed. */
function generator(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
}

/** A haystack over a small alphabet (so patterns recur and overlap), with some patterns planted. */
function haystackWith(random: (n: number) => number, length: number, alphabet: number, patterns: Uint8Array[], plants: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = 97 + random(alphabet);
  for (let p = 0; p < plants; p++) {
    const pattern = patterns[random(patterns.length)]!;
    if (pattern.length <= length) bytes.set(pattern, random(length - pattern.length + 1));
  }
  return bytes;
}

function randomPatterns(random: (n: number) => number, count: number, alphabet: number, maxLength: number): Uint8Array[] {
  return Array.from({ length: count }, () => Uint8Array.from({ length: 1 + random(maxLength) }, () => 97 + random(alphabet)));
}

test('on random data over small alphabets, every match equals a naive search’s, in one buffer and in the four-lane scan', (t) => {
  for (let seed = 1; seed <= 25; seed++) {
    const random = generator(seed);
    const alphabet = 2 + random(4);
    const patterns = randomPatterns(random, 1 + random(12), alphabet, 9);
    const search = new MultiPatternSearch(patterns);
    // Small haystacks use one lane; those past 64 KiB the interleaved lanes.
    for (const length of [0, 1, 50, 1000, 70_000 + random(5000)]) {
      const haystack = haystackWith(random, length, alphabet, patterns, 5);
      // Compared as one string: ava's deep comparison of many thousand matches is slow.
      t.is(flatten(search.findAll(haystack)).join(' '), naive(patterns, haystack).join(' '), `seed ${seed}, length ${length}`);
    }
  }
});

test('patterns spanning the boundaries between the chunks of a stream, and between the lanes of a chunk, are found', (t) => {
  for (let seed = 100; seed < 120; seed++) {
    const random = generator(seed);
    const patterns = randomPatterns(random, 6, 3, 40);
    const search = new MultiPatternSearch(patterns);
    const haystack = haystackWith(random, 400_000, 3, patterns, 200);
    const scanner = search.scanner();
    const matches: PatternMatch[] = [];
    // Chunk sizes from 1 byte to past the lane threshold, so boundaries fall everywhere, including inside patterns.
    for (let at = 0; at < haystack.length; ) {
      const size = [1, 7, 39, 1000, 70_001, 130_000][random(6)]!;
      scanner.push(haystack.subarray(at, at + size), (m) => matches.push(m));
      at += size;
    }
    t.is(scanner.bytes, haystack.length);
    t.is(flatten(matches).join(' '), naive(patterns, haystack).join(' '), `seed ${seed}`);
  }
});

test('a pattern planted across every chunk boundary is found, and found() lists what was found', (t) => {
  const value = Buffer.from('KIM_MINJI-2024', 'latin1');
  const search = new MultiPatternSearch([value, Buffer.from('not there at all', 'latin1')]);
  const chunk = 128 * 1024;
  for (let cut = 1; cut < value.length; cut++) {
    const data = randomBytes(4 * chunk);
    value.copy(data, 2 * chunk - cut);
    const scanner = search.scanner();
    for (let at = 0; at < data.length; at += chunk) scanner.push(data.subarray(at, at + chunk));
    t.deepEqual(scanner.found(), [0], `cut after ${cut} bytes`);
  }
});

test('overlapping and nested patterns are each reported where they end', (t) => {
  const patterns = ['he', 'she', 'his', 'hers', 'ushers', 'aaa', 'aa'].map((p) => Buffer.from(p, 'latin1'));
  const haystack = Buffer.from('ushers shehis aaaa', 'latin1');
  const search = new MultiPatternSearch(patterns);
  t.deepEqual(flatten(search.findAll(haystack)), naive(patterns, haystack));
  // ushers: she and he end at 4, hers and ushers at 6; aaaa holds aa three times and aaa twice.
  t.deepEqual(
    flatten(search.findAll(haystack)).filter((m) => m.startsWith('5@') || m.startsWith('6@')),
    ['5@17', '5@18', '6@16', '6@17', '6@18'],
  );
});

test('UTF-16 forms are found as their own byte strings, and case is exact', (t) => {
  const value = 'Kim Minji';
  const search = new MultiPatternSearch([Buffer.from(value, 'latin1'), Buffer.from(value, 'utf16le')]);
  const haystack = Buffer.concat([randomBytes(1000), Buffer.from(value, 'utf16le'), randomBytes(1000), Buffer.from('KIM MINJI', 'latin1')]);
  t.deepEqual(search.scanner().found(), []);
  const scanner = search.scanner();
  scanner.push(haystack);
  t.deepEqual(scanner.found(), [1]);
});

test('a search needs patterns, none of them empty', (t) => {
  t.throws(() => new MultiPatternSearch([]), { message: 'a search needs at least one pattern' });
  t.throws(() => new MultiPatternSearch([Buffer.from('abc'), new Uint8Array(0)]), { message: 'pattern 1 is empty' });
});
