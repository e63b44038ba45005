import { AppError } from '../errors.js';
import type { Requester } from '../access/levels.js';
import type { ChallengesRepository } from './challenges.repository.js';

/** Who is asking, as far as the hidden truth goes: administrators see it, nobody else. */
export type TruthViewer = Pick<Requester, 'roles'> | { userId: number | null };

/** Reads whether a user is an administrator (for services that know the actor by id only). */
export type AdminLookup = (userId: number) => Promise<boolean>;

/**
 * The hidden truth of challenges: while a challenge's truth is not
 * published, the annotations of its test release's slides — and anything
 * made from them — are for administrators only. Every path that serves an
 * annotation or something derived from one asks this: the annotation files
 * and GeoJSON, the review routes, download bundles and manifests, dataset
 * bags, heat-map overlays, and toolbox jobs that read annotations. A hidden
 * annotation answers 403 `truth_hidden`, or is left out of an archive.
 */
export class HiddenTruth {
  constructor(
    private readonly repository: Pick<ChallengesRepository, 'hiddenTruthReleaseIds' | 'releaseSlideIds' | 'datasetSlideIds'>,
    private readonly isAdmin: AdminLookup,
  ) {}

  /** The slides whose annotations are hidden now. */
  async hiddenSlides(): Promise<Set<number>> {
    const releases = await this.repository.hiddenTruthReleaseIds();
    if (releases.length === 0) return new Set();
    return new Set([...(await this.repository.releaseSlideIds(releases)).values()].flat());
  }

  /** Those of `ids` whose annotations `who` may not see; empty for administrators. */
  async hiddenFor(who: TruthViewer, ids: readonly number[]): Promise<Set<number>> {
    if (await this.admin(who)) return new Set();
    const hidden = await this.hiddenSlides();
    return new Set(ids.filter((id) => hidden.has(id)));
  }

  /** Throws 403 `truth_hidden` when the slide's annotation is hidden from `who`. */
  async assertVisible(who: TruthViewer, slideId: number): Promise<void> {
    if ((await this.hiddenFor(who, [slideId])).size > 0) {
      throw new AppError(403, 'truth_hidden', `The annotation of slide ${slideId} is the hidden truth of a challenge; it is published when the challenge ends`);
    }
  }

  /** Throws 403 `truth_hidden` when a release of the dataset holds a hidden annotation: its bags would carry it. */
  async assertDatasetVisible(who: TruthViewer, dataset: string): Promise<void> {
    if ((await this.hiddenFor(who, await this.repository.datasetSlideIds(dataset))).size > 0) {
      throw new AppError(403, 'truth_hidden', `Dataset ${dataset} holds the hidden truth of a challenge; its bags are given out when the challenge ends`);
    }
  }

  private async admin(who: TruthViewer): Promise<boolean> {
    if ('roles' in who) return who.roles.includes('admin');
    return who.userId !== null && (await this.isAdmin(who.userId));
  }
}
