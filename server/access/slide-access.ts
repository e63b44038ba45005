import type { Context } from 'koa';
import type { AssociatedName } from '../wsi/index.js';
import { AppError } from '../errors.js';
import { ANONYMOUS, assertLevel, isStaff, type Requester } from './levels.js';

/**
 * Who may see a slide's pixels. Every tile, descriptor and associated image
 * route asks this before touching the file.
 */
export interface SlideAccessPolicy {
  /** Throws a 401/403 AppError when the requester may not view the slide. */
  assertCanView(ctx: Context, slideId: number): Promise<void> | void;
  /** Label and macro images can identify a patient: staff only. */
  assertCanViewAssociated(ctx: Context, slideId: number, name: AssociatedName): Promise<void> | void;
}

/** The requester the authenticate middleware resolved; anonymous if it did not run, so a miswired app fails closed. */
function requester(ctx: Context): Requester {
  return (ctx.state as { requester?: Requester }).requester ?? ANONYMOUS;
}

/** A tile capability opens one slide only (the capability middleware checks this too; this holds whatever route is reached). */
function assertCapabilitySlide(who: Requester, slideId: number): void {
  if (who.via === 'capability' && who.capability?.slideId !== slideId) {
    throw new AppError(403, 'capability_wrong_slide', `The tile capability is for slide ${who.capability?.slideId}, not slide ${slideId}`);
  }
}

/**
 * The access levels (docs/domain.md): viewing slides (descriptor, tiles, IIIF,
 * thumbnails) needs L1 — a confirmed account — or a staff role; the label and
 * macro images, which can identify a patient, are for staff only. Every
 * published slide is viewable at L1; per-dataset restrictions would go here.
 */
export const levelSlideAccess: SlideAccessPolicy = {
  assertCanView(ctx, slideId) {
    const who = requester(ctx);
    assertCapabilitySlide(who, slideId);
    assertLevel(who, 'L1');
  },
  assertCanViewAssociated(ctx, slideId, name) {
    const who = requester(ctx);
    assertCapabilitySlide(who, slideId);
    assertLevel(who, 'L1');
    if ((name === 'label' || name === 'macro') && !isStaff(who)) {
      throw new AppError(403, 'staff_only', `The ${name} image may identify a patient; only staff may see it`);
    }
  },
};
