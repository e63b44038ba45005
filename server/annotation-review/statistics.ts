import { COMPARE_CELLS } from './comparison.js';
import type { StatisticsRow } from './review.repository.js';
import type { AnnotationStatistics, OrganStatistics } from './views.js';

/**
 * Agreement figures per organ: how many released outlines are manual or
 * AI-assisted, and how well the AI's proposals agreed (mIoU) with what the
 * pathologist confirmed, per organ and per review round. A confirmation is
 * compared with the newest AI proposal of its slide made before it; the
 * figures are stored when it is confirmed, so this only adds them up.
 */
export function annotationStatistics(rows: readonly StatisticsRow[]): AnnotationStatistics {
  const organs = new Map<string | null, OrganStatistics & { rounds: Map<number, { total: number; count: number }> }>();
  const organOf = (organ: string | null) => {
    let entry = organs.get(organ);
    if (!entry) {
      entry = { organ, organName: organ, manual: 0, aiAssisted: 0, manualRate: 0, aiAssistedRate: 0, proposals: { compared: 0, pending: 0, meanMiou: null, byRound: [] }, rounds: new Map() };
      organs.set(organ, entry);
    }
    return entry;
  };
  for (const row of rows) {
    const entry = organOf(row.organ);
    if (row.kind === 'method') {
      if (row.method === 'A') entry.aiAssisted += row.slides;
      else entry.manual += row.slides;
      continue;
    }
    entry.proposals.pending += row.pending;
    if (row.compared > 0) entry.rounds.set(row.round, { total: row.miouSum, count: row.compared });
  }

  return {
    organs: [...organs.values()]
      .map(({ rounds, ...entry }) => {
        const total = entry.manual + entry.aiAssisted;
        const byRound = [...rounds.entries()].sort((x, y) => x[0] - y[0]);
        const compared = byRound.reduce((n, [, c]) => n + c.count, 0);
        return {
          ...entry,
          manualRate: total === 0 ? 0 : entry.manual / total,
          aiAssistedRate: total === 0 ? 0 : entry.aiAssisted / total,
          proposals: {
            compared,
            pending: entry.proposals.pending,
            meanMiou: compared === 0 ? null : byRound.reduce((s, [, c]) => s + c.total, 0) / compared,
            byRound: byRound.map(([round, c]) => ({ round, compared: c.count, meanMiou: c.total / c.count })),
          },
        };
      })
      .sort((x, y) => String(x.organ).localeCompare(String(y.organ))),
    comparisonCells: COMPARE_CELLS,
  };
}
