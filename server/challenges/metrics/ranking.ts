/**
 * Leaderboard ranks: entries ordered by score, then by each tie-breaker in
 * turn, higher first; entries equal on all of them share a rank and the next
 * rank skips as many places (standard competition ranking, 1, 2, 2, 4).
 * A NaN counts below every number. Entries that share a rank keep their
 * given order.
 */
export function rankEntries<T extends { score: number; tieBreakers: number[] }>(entries: T[]): (T & { rank: number })[] {
  const sorted = entries.map((entry, index) => ({ entry, index })).sort((a, b) => compareEntries(a.entry, b.entry) || a.index - b.index);
  const ranked: (T & { rank: number })[] = [];
  sorted.forEach(({ entry }, i) => {
    const previous = sorted[i - 1];
    const rank = previous && compareEntries(previous.entry, entry) === 0 ? ranked[i - 1]!.rank : i + 1;
    ranked.push({ ...entry, rank });
  });
  return ranked;
}

/** Negative when `a` ranks above `b`, 0 when they tie. */
export function compareEntries(a: { score: number; tieBreakers: number[] }, b: { score: number; tieBreakers: number[] }): number {
  const length = Math.max(a.tieBreakers.length, b.tieBreakers.length);
  for (let i = -1; i < length; i++) {
    const x = i < 0 ? a.score : a.tieBreakers[i];
    const y = i < 0 ? b.score : b.tieBreakers[i];
    const order = compareDescending(x, y);
    if (order !== 0) return order;
  }
  return 0;
}

function compareDescending(x: number | undefined, y: number | undefined): number {
  const xv = x === undefined || Number.isNaN(x) ? -Infinity : x;
  const yv = y === undefined || Number.isNaN(y) ? -Infinity : y;
  return xv > yv ? -1 : xv < yv ? 1 : 0;
}
