import type { ReviewRepository } from './review.repository.js';
import { COMPARE_CELLS, compareVersions, type ReviewService } from './review.service.js';

export interface OrganStatistics {
  organ: string | null;
  /** Published slides whose outline was drawn by hand (M) or with AI assistance (A): the seed's Table 2. */
  manual: number;
  aiAssisted: number;
  manualRate: number;
  aiAssistedRate: number;
  /** AI proposals against the version the pathologist confirmed from them. */
  proposals: { compared: number; meanMiou: number | null; byRound: { round: number; compared: number; meanMiou: number }[] };
}

export interface AnnotationStatistics {
  organs: OrganStatistics[];
  /** How the comparisons were rasterised: each slide on a grid of at most this many cells. */
  comparisonCells: number;
}

/**
 * Agreement figures per organ (issue 9, "Statistics"): how many released
 * outlines are manual or AI-assisted, and how well the AI's proposals agreed
 * (mIoU) with what the pathologist confirmed, per organ and per review round.
 * A confirmation is compared with the newest AI proposal of its slide made
 * before it. Computed on request: every pair is rasterised once.
 */
export async function annotationStatistics(repository: ReviewRepository, review: ReviewService): Promise<AnnotationStatistics> {
  const organs = new Map<string | null, OrganStatistics>();
  const organOf = (organ: string | null) => {
    let entry = organs.get(organ);
    if (!entry) {
      entry = { organ, manual: 0, aiAssisted: 0, manualRate: 0, aiAssistedRate: 0, proposals: { compared: 0, meanMiou: null, byRound: [] } };
      organs.set(organ, entry);
    }
    return entry;
  };
  for (const row of await repository.releasedMethods()) {
    const entry = organOf(row.organ);
    if (row.method === 'A') entry.aiAssisted += row.slides;
    else entry.manual += row.slides;
  }

  const events = await repository.eventsOf(['propose', 'confirm']);
  const lastProposal = new Map<number, number>();
  const sums = new Map<string | null, Map<number, { total: number; count: number }>>();
  for (const event of events) {
    if (event.versionId === null) continue;
    if (event.action === 'propose') {
      // The method is in the row; the outline itself is read only when it is compared.
      const version = await repository.version(event.slideId, event.versionId);
      if (version?.method === 'ai') lastProposal.set(event.slideId, version.id);
      continue;
    }
    const proposal = lastProposal.get(event.slideId);
    if (proposal === undefined) continue;
    const slide = await repository.slide(event.slideId);
    if (!slide || slide.status !== 'published') continue;
    const [a, b] = await Promise.all([review.versionDocument(slide.id, proposal), review.versionDocument(slide.id, event.versionId)]);
    const { agreement } = compareVersions(slide, a, b);
    const byRound = sums.get(slide.organ) ?? new Map<number, { total: number; count: number }>();
    sums.set(slide.organ, byRound);
    const cell = byRound.get(event.round) ?? { total: 0, count: 0 };
    cell.total += agreement.miou;
    cell.count += 1;
    byRound.set(event.round, cell);
    organOf(slide.organ);
  }

  for (const entry of organs.values()) {
    const total = entry.manual + entry.aiAssisted;
    entry.manualRate = total === 0 ? 0 : entry.manual / total;
    entry.aiAssistedRate = total === 0 ? 0 : entry.aiAssisted / total;
    const rounds = [...(sums.get(entry.organ) ?? new Map<number, { total: number; count: number }>()).entries()].sort((x, y) => x[0] - y[0]);
    const compared = rounds.reduce((n, [, c]) => n + c.count, 0);
    entry.proposals = {
      compared,
      meanMiou: compared === 0 ? null : rounds.reduce((s, [, c]) => s + c.total, 0) / compared,
      byRound: rounds.map(([round, c]) => ({ round, compared: c.count, meanMiou: c.total / c.count })),
    };
  }
  return {
    organs: [...organs.values()].sort((x, y) => String(x.organ).localeCompare(String(y.organ))),
    comparisonCells: COMPARE_CELLS,
  };
}
