import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { AppError, badRequest } from '../errors.js';
import { SLIDE_STATUSES, WITHDRAWN_ACTION, type ManagedSlide, type SlideStatus, type SlideStatusRepository } from './slide-status.repository.js';
import { wholeParam } from '../query-params.js';

export const REASON_MAX = 500;
const PAGE = { default: 50, max: 500 } as const;

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

  async list(query: Record<string, unknown>): Promise<{ items: ManagedSlide[]; total: number; limit: number; offset: number }> {
    const status = query.status;
    if (status !== undefined && status !== '' && !SLIDE_STATUSES.includes(status as SlideStatus)) {
      throw badRequest('invalid_query', `status must be one of ${SLIDE_STATUSES.join(', ')}`);
    }
    const name = query.q;
    if (name !== undefined && (typeof name !== 'string' || name.length > 200)) throw badRequest('invalid_query', 'q must be one text of at most 200 characters');
    const limit = wholeParam(query.limit, PAGE.default, 1, PAGE.max, 'limit');
    const offset = wholeParam(query.offset, 0, 0, Number.MAX_SAFE_INTEGER, 'offset');
    const found = await this.slides.list({ ...(status ? { status: status as SlideStatus } : {}), ...(name ? { name } : {}), limit, offset });
    return { ...found, limit, offset };
  }

  async withdraw(idText: string | undefined, body: unknown, actor: AuditActor): Promise<ManagedSlide> {
    const id = slideId(idText);
    const reason = reasonOf(body);
    return this.change(id, 'published', 'withdrawn', actor, { action: WITHDRAWN_ACTION, details: { reason } });
  }

  async publish(idText: string | undefined, actor: AuditActor): Promise<ManagedSlide> {
    return this.change(slideId(idText), 'withdrawn', 'published', actor, { action: 'slide.republished', details: {} });
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

function slideId(text: string | undefined): number {
  if (!text || !/^[1-9]\d{0,9}$/.test(text) || Number(text) > 2 ** 31 - 1) {
    throw badRequest('invalid_slide_id', `"${text ?? ''}" is not a slide id (a positive whole number)`);
  }
  return Number(text);
}

function reasonOf(body: unknown): string {
  const reason = (body as { reason?: unknown } | undefined)?.reason;
  if (typeof reason !== 'string' || reason.trim() === '') throw badRequest('invalid_reason', 'A withdrawal needs a reason (a non-empty text)');
  if (reason.length > REASON_MAX) throw badRequest('invalid_reason', `The reason may have at most ${REASON_MAX} characters`);
  return reason.trim();
}

