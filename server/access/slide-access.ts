import type { Context } from 'koa';
import { AppError } from '../errors.js';
import type { AssociatedName } from '../wsi/index.js';

/**
 * Who may see a slide's pixels. Every tile, descriptor and associated image
 * route asks this before touching the file. The accounts issue replaces the
 * interim policy with one based on levels (L1+ view) and staff roles.
 */
export interface SlideAccessPolicy {
  /** Throws a 401/403 AppError when the requester may not view the slide. */
  assertCanView(ctx: Context, slideId: number): Promise<void> | void;
  /** Label and macro images can identify a patient: staff only. */
  assertCanViewAssociated(ctx: Context, slideId: number, name: AssociatedName): Promise<void> | void;
}

/**
 * Until accounts exist there is nobody to identify: slides are viewable, and
 * label and macro images are refused to everyone, since no one can yet prove
 * to be staff.
 */
export const interimSlideAccess: SlideAccessPolicy = {
  assertCanView() {},
  assertCanViewAssociated(_ctx, _slideId, name) {
    if (name === 'label' || name === 'macro') {
      throw new AppError(403, 'staff_only', `The ${name} image may identify a patient; only staff may see it`);
    }
  },
};
