import { randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { OverlayClaimant, OverlayName, OverlayNamesRepository } from './overlay-names.repository.js';
import { isHeld, sameOwner } from './overlay-names.repository.js';

/** A heat map's default overlay name: random, so that nobody can claim it before the job that will use it. */
export function randomOverlayName(): string {
  return `heatmap-${randomBytes(6).toString('hex')}`;
}

/** Who holds a name, as a refusal describes it. */
export interface NameHolder {
  /** Null: the operator. */
  ownerId: number | null;
  ownerEmail: string | null;
  jobId: number | null;
  published: boolean;
}

export type PublishOutcome = { published: true } | { published: false; holder: NameHolder };

/** Staging and swapped-out folders a killed publisher left behind are removed once this old. */
const LEFTOVER_MS = 2 * 24 * 3600 * 1000;

/**
 * Overlays under `<root>/<slide id>/<name>/`, published only by whoever holds
 * the name (see OverlayNamesRepository). Work is rendered into a staging
 * folder beside them (a leading dot keeps it out of the overlay list, the
 * same disk makes publishing a rename), and the name is claimed again at the
 * moment of publishing, so that a publisher that lost the name overwrites
 * nothing.
 *
 * Overlays published before names were claimed have no claim: such a folder
 * belongs to the owner of the job its sidecar names, or to the operator.
 */
export class OverlayPublisher {
  constructor(
    private readonly names: OverlayNamesRepository,
    readonly root: string,
    private readonly jobOwner: (jobId: number) => Promise<number | null | undefined>,
  ) {}

  folder(slideId: number, name: string): string {
    return path.join(this.root, String(slideId), name);
  }

  /** A fresh staging folder for an overlay of `slideId` (not created). */
  stagingFolder(slideId: number, tag: string): string {
    return path.join(this.root, String(slideId), `.staging-${tag}-${randomBytes(4).toString('hex')}`);
  }

  /** Who holds `name` of a slide and would refuse `claimant`, or undefined when the claimant may use it. */
  async holderAgainst(slideId: number, name: string, claimant: OverlayClaimant): Promise<NameHolder | undefined> {
    const claim = await this.names.find(slideId, name);
    if (claim) return isHeld(claim) && !sameOwner(claim.ownerId, claimant.ownerId) ? holderOf(claim) : undefined;
    const unclaimed = await this.unclaimedPublisher(slideId, name);
    return unclaimed !== undefined && !sameOwner(unclaimed.ownerId, claimant.ownerId) ? unclaimed : undefined;
  }

  /**
   * Move `staged` into place as overlay `name` of the slide, when the claimant
   * holds the name (or nobody does; `replace` takes it from whoever does).
   * The name's previous overlay is swapped out and removed.
   */
  async publish(slideId: number, name: string, staged: string, claimant: OverlayClaimant, { replace = false }: { replace?: boolean } = {}): Promise<PublishOutcome> {
    if (!replace) {
      const holder = await this.holderAgainst(slideId, name, claimant);
      if (holder) return { published: false, holder };
    }
    const outcome = await this.names.claim(slideId, name, claimant, { takeOver: replace, publishedAt: new Date() });
    if (!outcome.claimed) return { published: false, holder: holderOf(outcome.holder) };
    const target = this.folder(slideId, name);
    const previous = path.join(path.dirname(target), `.replaced-${name}-${randomBytes(4).toString('hex')}`);
    await rename(target, previous).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await rename(staged, target);
    await rm(previous, { recursive: true, force: true });
    await this.sweep(path.dirname(target));
    return { published: true };
  }

  private async sweep(dir: string): Promise<void> {
    const cutoff = Date.now() - LEFTOVER_MS;
    for (const entry of await readdir(dir).catch(() => [] as string[])) {
      if (!/^\.(staging|replaced)-/.test(entry)) continue;
      const info = await stat(path.join(dir, entry)).catch(() => undefined);
      if (info && info.mtimeMs < cutoff) await rm(path.join(dir, entry), { recursive: true, force: true });
    }
  }

  /** The publisher of an overlay folder that has no claim: undefined when there is no such folder. */
  private async unclaimedPublisher(slideId: number, name: string): Promise<NameHolder | undefined> {
    const folder = this.folder(slideId, name);
    if (!(await stat(folder).catch(() => undefined))) return undefined;
    const sidecar = await readFile(path.join(folder, `${name}.json`), 'utf8').then(
      (text) => JSON.parse(text) as { job?: unknown },
      () => ({}) as { job?: unknown },
    );
    const jobId = typeof sidecar.job === 'number' ? sidecar.job : null;
    const ownerId = jobId === null ? null : ((await this.jobOwner(jobId)) ?? null);
    return { ownerId, ownerEmail: null, jobId, published: true };
  }
}

function holderOf(claim: OverlayName): NameHolder {
  return { ownerId: claim.ownerId, ownerEmail: claim.ownerEmail, jobId: claim.jobId, published: claim.publishedAt !== null };
}
