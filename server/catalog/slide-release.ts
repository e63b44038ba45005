import type { Database } from '../db/index.js';
import { notFound } from '../errors.js';
import { SlideStatusRepository } from './slide-status.repository.js';

/** A slide whose bytes may not leave this server, and why, as far as the catalog knows. */
export interface WithheldSlide {
  slideId: number;
  /** The slide's status; null when the catalog no longer has it. */
  status: string | null;
  /** The latest withdrawal's reason and time, when the audit log holds one. */
  reason: string | null;
  at: Date | null;
}

/** What the policy reads: slide statuses, and withdrawals (whose reasons live in the audit log). */
export type SlideReleaseReader = Pick<SlideStatusRepository, 'statuses' | 'latestWithdrawals'>;

/**
 * Whether a slide's bytes — its file, its annotation, its thumbnails, and
 * anything a toolbox job derived from them — may leave this server: only while
 * the slide is published. Every path that sends such bytes asks this (files,
 * bundles, manifests, dataset bags and exports, job results, heat-map
 * overlays, thumbnails, annotation files), so withdrawing a slide stops all of
 * them at once. Who may see a slide is a separate question
 * (access/slide-access.ts); this one is whether it may be sent at all.
 *
 * A refused slide answers as one that does not exist, as the tiles and the
 * catalog answer for it, so that a withdrawal's reason stays with the staff.
 */
export class SlideRelease {
  constructor(private readonly slides: SlideReleaseReader) {}

  /** Throws 404 `slide_not_found` unless the slide's bytes may leave. */
  async assertMayLeave(slideId: number): Promise<void> {
    const status = (await this.slides.statuses([slideId])).get(slideId);
    if (!mayLeave(status)) throw notFound('slide_not_found', `There is no published slide ${slideId}`);
  }

  /** Those of `ids` whose bytes may not leave, each with the withdrawal that stopped it when there is one. */
  async withheld(ids: readonly number[]): Promise<Map<number, WithheldSlide>> {
    const statuses = await this.slides.statuses(ids);
    const refused = [...new Set(ids)].filter((id) => !mayLeave(statuses.get(id)));
    const withdrawals = await this.slides.latestWithdrawals(refused.filter((id) => statuses.has(id)));
    return new Map(
      refused.map((slideId) => {
        const withdrawal = withdrawals.get(slideId);
        return [slideId, { slideId, status: statuses.get(slideId) ?? null, reason: withdrawal?.reason ?? null, at: withdrawal?.at ?? null }];
      }),
    );
  }
}

/** The rule itself: published, and nothing else (withdrawn, or gone from the catalog). */
function mayLeave(status: string | undefined): boolean {
  return status === 'published';
}

export function createSlideRelease(db: Database): SlideRelease {
  return new SlideRelease(new SlideStatusRepository(db.knex));
}
