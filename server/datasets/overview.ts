import type { Dataset, Release, Withdrawal } from './release.js';

/** One release as the portal lists it (`GET /api/datasets`). */
export interface ReleaseSummary {
  version: string;
  releasedAt: string;
  slides: number;
  /** The slide files' total size: what a full bag of the release carries, annotations aside. */
  slideBytes: number;
  /** Slides with a released annotation. */
  annotations: number;
  /** Withdrawals recorded up to the release: those its full bag lists. */
  withdrawals: number;
  /** Slides of this release withdrawn after it (from the dataset or from the catalog): its bags leave them out and tell mirrors to withdraw them. */
  withdrawnAfter: number;
}

export interface DatasetSummary {
  name: string;
  description: string | null;
  createdAt: string;
  /** Slides in the working set (what the next release would hold). */
  members: number;
  /** Every withdrawal from the dataset. */
  withdrawals: number;
  /** Oldest first. */
  releases: ReleaseSummary[];
}

/** `withheld`: by release id, how many of its slides its bags now leave out (DatasetsService.withheld). */
export function summariseDataset(dataset: Dataset & { members: number }, releases: readonly Release[], withdrawals: readonly Withdrawal[], withheld: ReadonlyMap<number, number>): DatasetSummary {
  return {
    name: dataset.name,
    description: dataset.description,
    createdAt: dataset.createdAt.toISOString(),
    members: dataset.members,
    withdrawals: withdrawals.length,
    releases: releases.map((release) => {
      return {
        version: release.version,
        releasedAt: release.createdAt.toISOString(),
        slides: release.slides.length,
        slideBytes: release.slides.reduce((sum, s) => sum + s.size, 0),
        annotations: release.slides.filter((s) => s.annotation !== null).length,
        withdrawals: withdrawals.filter((w) => w.createdAt <= release.createdAt).length,
        withdrawnAfter: withheld.get(release.id) ?? 0,
      };
    }),
  };
}
