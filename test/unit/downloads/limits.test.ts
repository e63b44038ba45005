import test from 'ava';
import { DownloadLimitError, DownloadLimits, formatBytes } from '../../../server/downloads/limits.js';

const settings = { maxBundleSlides: 3, maxBundleBytes: 1000, concurrentPerUser: 2, bytesPerDay: 0 };

function refusal(fn: () => unknown): DownloadLimitError {
  try {
    fn();
  } catch (error) {
    if (error instanceof DownloadLimitError) return error;
    throw error;
  }
  throw new Error('not refused');
}

test('bundles: 413 past the slide count or the byte bound; 0 turns a bound off', (t) => {
  const limits = new DownloadLimits(settings);
  t.notThrows(() => limits.checkBundle(3, 1000));
  t.like(refusal(() => limits.checkBundle(4, 10)), { status: 413, code: 'bundle_too_large', retryAfterSeconds: null });
  const bytes = refusal(() => limits.checkBundle(1, 1001));
  t.like(bytes, { status: 413, code: 'bundle_too_large' });
  t.regex(bytes.message, /1001 bytes; a ZIP bundle holds at most 1000 bytes/);
  t.notThrows(() => new DownloadLimits({ ...settings, maxBundleSlides: 0, maxBundleBytes: 0 }).checkBundle(1e6, 1e15));
});

test('concurrency: 429 with Retry-After once a user has the configured number running; settling frees a slot; users are separate', (t) => {
  const limits = new DownloadLimits(settings);
  const a = limits.admit('user:1', 10);
  const b = limits.admit('user:1', 10);
  const busy = refusal(() => limits.admit('user:1', 10));
  t.like(busy, { status: 429, code: 'too_many_downloads', retryAfterSeconds: 30 });
  t.like(busy.details, { running: 2, concurrentPerUser: 2, retryAfterSeconds: 30 });
  t.notThrows(() => limits.admit('user:2', 10).settle(10));
  a.settle(5);
  a.settle(5); // a second settle changes nothing
  t.like(limits.snapshot('user:1'), { running: 1, sentToday: 5, reserved: 10 });
  t.notThrows(() => limits.admit('user:1', 10));
  b.settle(10);
  t.like(limits.snapshot('user:1'), { running: 1, sentToday: 15 });
});

test('bytes per day: reserved while running, charged what was sent, 429 until midnight UTC, 413 for more than a whole day', (t) => {
  let now = new Date('2026-11-29T23:00:00Z');
  const limits = new DownloadLimits({ ...settings, concurrentPerUser: 0, bytesPerDay: 100 }, () => now);
  const first = limits.admit('user:1', 60);
  const parallel = refusal(() => limits.admit('user:1', 50));
  t.like(parallel, { status: 429, code: 'daily_allowance_used', retryAfterSeconds: 3600 });
  first.settle(30); // cut off after 30 bytes: only those count
  t.notThrows(() => limits.admit('user:1', 70).settle(70));
  t.like(refusal(() => limits.admit('user:1', 1)), { status: 429 });
  t.like(refusal(() => limits.admit('user:1', 101)), { status: 413, code: 'exceeds_daily_allowance', retryAfterSeconds: null });
  now = new Date('2026-11-30T00:00:01Z');
  t.notThrows(() => limits.admit('user:1', 100).settle(100), 'a new UTC day');
});

test('a delivery running over midnight keeps its slot and is charged to the day it ends in', (t) => {
  let now = new Date('2026-11-29T23:59:00Z');
  const limits = new DownloadLimits({ ...settings, concurrentPerUser: 1, bytesPerDay: 100 }, () => now);
  const running = limits.admit('user:1', 80);
  now = new Date('2026-11-30T00:01:00Z');
  t.like(refusal(() => limits.admit('user:1', 10)), { code: 'too_many_downloads' });
  running.settle(80);
  t.like(limits.snapshot('user:1'), { running: 0, reserved: 0, sentToday: 80 });
});

test('formatBytes', (t) => {
  t.is(formatBytes(0), '0 bytes');
  t.is(formatBytes(1023), '1023 bytes');
  t.is(formatBytes(1536), '1.5 KiB');
  t.is(formatBytes(549755813888), '512.0 GiB');
});
