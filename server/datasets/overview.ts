import type { Dataset, Release, Withdrawal } from './release.js';
import type { DatasetSummary } from './views.js';

/** A dataset as the portal lists it. `withheld`: by release id, how many of its slides its bags now leave out (DatasetsService.withheld). */
export function summariseDataset(dataset: Dataset & { members: number }, releases: readonly Release[], withdrawals: readonly Withdrawal[], withheld: ReadonlyMap<number, number>): DatasetSummary {
  return {
    name: dataset.name,
    description: dataset.description,
    createdAt: dataset.createdAt,
    members: dataset.members,
    withdrawals: withdrawals.length,
    releases: releases.map((release) => {
      return {
        version: release.version,
        releasedAt: release.createdAt,
        slides: release.slides.length,
        slideBytes: release.slides.reduce((sum, s) => sum + s.size, 0),
        annotations: release.slides.filter((s) => s.annotation !== null).length,
        withdrawals: withdrawals.filter((w) => w.createdAt <= release.createdAt).length,
        withdrawnAfter: withheld.get(release.id) ?? 0,
      };
    }),
  };
}
