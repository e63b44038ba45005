import { createHmac, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { AppError } from '../errors.js';

/**
 * Tile capabilities: short-lived signed grants to view one slide's pixels,
 * which the viewer carries in its tile URLs (`?cap=`) so that a tile request
 * is checked without reading the database (no session row, no user row).
 *
 * A capability names the user and the slide and when it expires, and is
 * signed (HMAC-SHA256) with a key derived from the session secret over those
 * and the credential it was issued to: the session id (the session cookie's
 * value) or the personal access token. It is only good together with that
 * credential, so a copied tile URL is worth nothing without the cookie, and a
 * capability of another user (another session) is refused.
 *
 * The price of not reading the database: a withdrawn slide, a disabled
 * account or a lowered level stops a capability issued before only when it
 * expires, so its lifetime (tiles.capabilityMinutes, at most
 * MAX_CAPABILITY_MINUTES) bounds how long revocation takes. Issuing one reads
 * the user as every request does.
 */

/** The query parameter that carries a capability. */
export const CAPABILITY_PARAMETER = 'cap';
/** The longest lifetime the configuration may give a capability. */
export const MAX_CAPABILITY_MINUTES = 60;
const VERSION = 'v1';
const SHAPE = /^v1\.([1-9]\d{0,15})\.([1-9]\d{0,15})\.(\d{10,12})\.([A-Za-z0-9_-]{43})$/;

export interface CapabilityClaims {
  userId: number;
  slideId: number;
  /** When it stops working, in seconds since the epoch. */
  expiresAt: number;
}

export interface IssuedCapability extends CapabilityClaims {
  /** The text to carry in the `cap` query parameter. */
  capability: string;
}

/** The credential a capability is bound to: `session` and the session id, or `token` and the bearer token. */
export interface CapabilityBinding {
  kind: 'session' | 'token';
  secret: string;
}

export class TileCapabilities {
  /** One MAC key per session key: the first signs, all verify (so rotating the session secret rotates these too). */
  private readonly macKeys: Buffer[];
  /**
   * Capabilities whose signature checked out, with the credential they came
   * with: a viewer sends the same one with hundreds of tiles, and a look-up
   * costs less than the HMAC. Only the exact same text and credential hit;
   * expiry and slide are checked on every request.
   */
  private readonly verified = new LRUCache<string, CapabilityClaims>({ max: 10_000 });

  constructor(
    sessionKeys: readonly string[],
    /** How long a capability lives, in seconds. */
    readonly lifetimeSeconds: number,
    private readonly clock: () => number = Date.now,
  ) {
    if (sessionKeys.length === 0) throw new Error('tile capabilities need at least one session key');
    if (!(lifetimeSeconds > 0 && lifetimeSeconds <= MAX_CAPABILITY_MINUTES * 60)) throw new Error(`a tile capability lives 1 s to ${MAX_CAPABILITY_MINUTES} minutes, not ${lifetimeSeconds} s`);
    // A key of its own, so that a capability's MAC can never be taken for a cookie's or a CSRF token's.
    this.macKeys = sessionKeys.map((key) => createHmac('sha256', key).update('slidebank tile capability').digest());
  }

  /** A capability for this user, slide and credential; `now` (ms) lets tests issue one in the past. */
  issue(userId: number, slideId: number, binding: CapabilityBinding, now = this.clock()): IssuedCapability {
    const expiresAt = Math.floor(now / 1000) + this.lifetimeSeconds;
    const claims = `${VERSION}.${userId}.${slideId}.${expiresAt}`;
    return { userId, slideId, expiresAt, capability: `${claims}.${mac(this.macKeys[0]!, claims, binding)}` };
  }

  /**
   * The claims of a capability presented for `slideId` with this credential,
   * or an AppError: 401 capability_expired (ask for a new one), 403
   * capability_invalid (malformed, tampered with, or issued to another
   * session or token) or 403 capability_wrong_slide.
   */
  verify(capability: string, slideId: number, binding: CapabilityBinding | undefined): CapabilityClaims {
    const memo = binding ? `${binding.kind}\u0000${binding.secret}\u0000${capability}` : undefined;
    const result = (memo && this.verified.get(memo)) || this.checkSignature(capability, binding);
    if (memo) this.verified.set(memo, result);
    const now = this.clock() / 1000;
    // One that claims to outlive the lifetime configured now (issued before the setting was lowered) counts as expired.
    if (result.expiresAt <= now || result.expiresAt > now + this.lifetimeSeconds + 1) {
      throw new AppError(401, 'capability_expired', `The tile capability expired at ${new Date(result.expiresAt * 1000).toISOString()}; get a new one from GET /api/slides/${result.slideId}/tile-capability`);
    }
    if (result.slideId !== slideId) {
      throw new AppError(403, 'capability_wrong_slide', `The tile capability is for slide ${result.slideId}, not slide ${slideId}`);
    }
    return result;
  }

  /** The claims of a capability whose MAC matches this credential under one of the keys. */
  private checkSignature(capability: string, binding: CapabilityBinding | undefined): CapabilityClaims {
    const parts = SHAPE.exec(capability);
    if (!parts) throw invalid('it is malformed');
    const claims = capability.slice(0, capability.lastIndexOf('.'));
    const given = Buffer.from(parts[4]!, 'utf8');
    if (!binding || !this.macKeys.some((key) => timingSafeEqual(Buffer.from(mac(key, claims, binding), 'utf8'), given))) {
      throw invalid(binding ? 'its signature does not match: it was altered, or issued to another session or token' : 'it was issued to a session or token this request does not carry');
    }
    return { userId: Number(parts[1]), slideId: Number(parts[2]), expiresAt: Number(parts[3]) };
  }
}

function mac(key: Buffer, claims: string, binding: CapabilityBinding): string {
  return createHmac('sha256', key).update(`${claims}\u0000${binding.kind}\u0000${binding.secret}`).digest('base64url');
}

function invalid(why: string): AppError {
  return new AppError(403, 'capability_invalid', `The tile capability is not valid: ${why}. Get a new one from GET /api/slides/{id}/tile-capability, or leave out ${CAPABILITY_PARAMETER} to use the session`);
}
