import test from 'ava';
import { contentRange, decideRange, ifRangeAllows, parseRange, unsatisfiedRange } from '../../../server/downloads/range.js';

/** Range parsing against a 1000-byte file, one case per rule of range.ts's table. */
const SIZE = 1000;

const partial = (start: number, end: number) => ({ kind: 'partial', start, end });

const cases: [string, string | undefined, object][] = [
  // no header
  ['absent', undefined, { kind: 'full', reason: 'absent' }],
  ['empty', '', { kind: 'full', reason: 'absent' }],
  ['blank', '   ', { kind: 'full', reason: 'absent' }],
  // one satisfiable range
  ['first-last', 'bytes=0-99', partial(0, 99)],
  ['one byte', 'bytes=0-0', partial(0, 0)],
  ['the last byte', 'bytes=999-999', partial(999, 999)],
  ['open-ended', 'bytes=100-', partial(100, 999)],
  ['open-ended from 0', 'bytes=0-', partial(0, 999)],
  ['last-pos past the end is clipped', 'bytes=900-5000', partial(900, 999)],
  ['a huge last-pos is clipped', 'bytes=10-99999999999999999999999', partial(10, 999)],
  ['suffix', 'bytes=-100', partial(900, 999)],
  ['suffix of one byte', 'bytes=-1', partial(999, 999)],
  ['suffix longer than the file is the whole file', 'bytes=-5000', partial(0, 999)],
  ['huge suffix', 'bytes=-99999999999999999999', partial(0, 999)],
  ['unit is case-insensitive', 'Bytes=0-9', partial(0, 9)],
  ['white space around the range', 'bytes= 5-9 ', partial(5, 9)],
  ['leading zeros', 'bytes=0010-0019', partial(10, 19)],
  ['empty list elements are ignored', 'bytes=, 5-9 ,', partial(5, 9)],
  // unknown unit: ignored
  ['other unit', 'items=0-5', { kind: 'full', reason: 'unit' }],
  ['no unit at all', '0-5', { kind: 'full', reason: 'unit' }],
  ['garbage', 'garbage', { kind: 'full', reason: 'unit' }],
  // several ranges: ignored, whole file
  ['two ranges', 'bytes=0-9,20-29', { kind: 'full', reason: 'multiple' }],
  ['overlapping ranges', 'bytes=0-500,100-600', { kind: 'full', reason: 'multiple' }],
  ['a range and a suffix', 'bytes=0-0,-1', { kind: 'full', reason: 'multiple' }],
  ['two ranges past the end', 'bytes=5000-,6000-', { kind: 'full', reason: 'multiple' }],
];

for (const [title, header, expected] of cases) {
  test(`Range ${title}: ${JSON.stringify(header)}`, (t) => {
    t.like(parseRange(header, SIZE), expected);
  });
}

const malformed: [string, string][] = [
  ['no range after =', 'bytes='],
  ['only commas', 'bytes=,,'],
  ['letters', 'bytes=abc'],
  ['letters in a position', 'bytes=1a-5'],
  ['reversed', 'bytes=500-100'],
  ['negative first', 'bytes=--5'],
  ['fraction', 'bytes=0.5-9'],
  ['no dash', 'bytes=5'],
  ['just a dash', 'bytes=-'],
  ['two dashes', 'bytes=1-2-3'],
  ['a bad range among good ones', 'bytes=0-9,x-y'],
  ['a reversed range among good ones', 'bytes=0-9,9-0'],
];

for (const [title, header] of malformed) {
  test(`Range ${title} is malformed: 416`, (t) => {
    const decision = parseRange(header, SIZE);
    t.is(decision.kind, 'unsatisfiable');
    t.like(decision, { reason: 'malformed' });
    t.regex((decision as { message: string }).message, /byte range/);
  });
}

const beyond: [string, string, number][] = [
  ['starts at the size', 'bytes=1000-', SIZE],
  ['starts past the end', 'bytes=1500-2000', SIZE],
  ['starts at a huge position', 'bytes=99999999999999999999-', SIZE],
  ['huge first and last', 'bytes=99999999999999999999-999999999999999999999', SIZE],
  ['zero-length suffix', 'bytes=-0', SIZE],
  ['any range of an empty file', 'bytes=0-0', 0],
  ['a suffix of an empty file', 'bytes=-10', 0],
];

for (const [title, header, size] of beyond) {
  test(`Range ${title}: 416`, (t) => {
    t.like(parseRange(header, size), { kind: 'unsatisfiable', reason: 'beyond-end' });
  });
}

test('Range is ignored on anything but GET (HEAD answers as the plain GET would)', (t) => {
  t.like(parseRange('bytes=0-9', SIZE, 'HEAD'), { kind: 'full', reason: 'method' });
  t.like(parseRange('bytes=0-9', SIZE, 'POST'), { kind: 'full', reason: 'method' });
  t.like(parseRange('bytes=0-9', SIZE, 'GET'), partial(0, 9));
});

const ETAG = '"sha256-abc"';
const MODIFIED = new Date('2026-11-29T10:20:30.456Z');
const current = { etag: ETAG, lastModified: MODIFIED };

test('If-Range: the same strong ETag matches, anything else does not', (t) => {
  t.true(ifRangeAllows(undefined, current));
  t.true(ifRangeAllows(ETAG, current));
  t.true(ifRangeAllows(` ${ETAG} `, current));
  t.false(ifRangeAllows('"sha256-other"', current));
  t.false(ifRangeAllows(`W/${ETAG}`, current), 'a weak tag never matches (strong comparison)');
  t.false(ifRangeAllows('sha256-abc', current), 'an unquoted tag is not an entity tag');
  t.false(ifRangeAllows(ETAG, { etag: null, lastModified: MODIFIED }), 'no tag of our own: nothing matches');
});

test('If-Range: an HTTP-date matches Last-Modified to the second', (t) => {
  t.true(ifRangeAllows(MODIFIED.toUTCString(), current));
  t.false(ifRangeAllows(new Date(MODIFIED.getTime() + 1000).toUTCString(), current));
  t.false(ifRangeAllows(new Date(MODIFIED.getTime() - 1000).toUTCString(), current));
  t.false(ifRangeAllows('2026-11-29', current), 'not an HTTP-date');
  t.false(ifRangeAllows('yesterday', current));
});

test('decideRange: a mismatching If-Range means the whole file, even for a range that would be refused', (t) => {
  t.like(decideRange({ method: 'GET', range: 'bytes=10-19', ifRange: ETAG }, SIZE, current), partial(10, 19));
  t.like(decideRange({ method: 'GET', range: 'bytes=10-19', ifRange: '"old"' }, SIZE, current), { kind: 'full', reason: 'if-range' });
  t.like(decideRange({ method: 'GET', range: 'bytes=5000-', ifRange: '"old"' }, SIZE, current), { kind: 'full', reason: 'if-range' });
  t.like(decideRange({ method: 'GET', range: 'bytes=5000-', ifRange: ETAG }, SIZE, current), { kind: 'unsatisfiable' });
  t.like(decideRange({ method: 'GET', ifRange: '"old"' }, SIZE, current), { kind: 'full', reason: 'absent' }, 'If-Range without Range is ignored');
});

test('Content-Range values', (t) => {
  t.is(contentRange(0, 99, 1000), 'bytes 0-99/1000');
  t.is(unsatisfiedRange(1000), 'bytes */1000');
});
