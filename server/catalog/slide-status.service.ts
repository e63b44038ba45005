import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { AppError } from '../errors.js';
import { WITHDRAWN_ACTION, type ManagedSlideQuery, type SlideStatus, type SlideStatusRepository } from './slide-status.repository.js';
import type { ManagedSlide, ManagedSlideList } from './views.js';

/** A withdrawal's reason is kept in the audit log and shown to curators: one short text. */
export const REASON_MAX = 500;
export const MANAGED_PAGE = { default: 50, max: 500 } as const;

/** What else holds a slide's status for a while and must forget it at once (the tile server's row cache). */
export interface SlideStatusListener {
  forgetSlide(slideId: number): void;
}

/**
 * Withdrawing a published slide and publishing it again, for administrators
 * and curators. A withdrawn slide leaves the catalog, the tiles, the
 * overlays and the downloads at once: the catalog and the tiles ask for
 * published slides (and the tile server's short-lived cache is told to
 * forget the row), and every path that sends the slide's bytes or anything
 * made from them asks SlideRelease (slide-release.ts). Each change
 * is audited in the same transaction; the withdrawal's event carries the
 * reason, which the list reads back.
 */
export class SlideStatusService {
  constructor(
    private readonly slides: SlideStatusRepository,
    private readonly audit: AuditLog,
    private readonly listeners: SlideStatusListener[],
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Slides of every status, by name; `name` matches part of it. */
  async list(query: ManagedSlideQuery): Promise<ManagedSlideList> {
    const found = await this.slides.list(query);
    return { ...found, limit: query.limit, offset: query.offset };
  }

  /** Take a published slide out of every path at once; `reason` (trimmed, non-empty) goes into the audit event. */
  async withdraw(id: number, reason: string, actor: AuditActor): Promise<ManagedSlide> {
    return this.change(id, 'published', 'withdrawn', actor, { action: WITHDRAWN_ACTION, details: { reason } });
  }

  async publish(id: number, actor: AuditActor): Promise<ManagedSlide> {
    return this.change(id, 'withdrawn', 'published', actor, { action: 'slide.republished', details: {} });
  }

  private async change(id: number, from: SlideStatus, to: SlideStatus, actor: AuditActor, event: { action: string; details: Record<string, unknown> }): Promise<ManagedSlide> {
    const slide = await this.slides.transaction(async (trx) => {
      if (!(await this.slides.transition(id, from, to, this.clock(), trx))) {
        const current = await this.slides.find(id, trx);
        if (!current) throw new AppError(404, 'slide_not_found', `No slide ${id}`);
        throw new AppError(409, 'slide_status_conflict', `Slide ${id} is ${current.status}; only a ${from} slide can be ${to === 'withdrawn' ? 'withdrawn' : 'published again'}`);
      }
      await this.audit.record({ action: event.action, actorId: actor.actorId, subjectType: 'slide', subjectId: id, ip: actor.ip ?? null, details: { ...event.details, from, to } }, trx);
      return id;
    });
    for (const listener of this.listeners) listener.forgetSlide(slide);
    return (await this.slides.find(slide))!;
  }
}
