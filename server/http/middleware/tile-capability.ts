import type { Context, Middleware } from 'koa';
import { capabilityRequester } from '../../access/levels.js';
import { CAPABILITY_PARAMETER, type CapabilityBinding, type CapabilityClaims, type TileCapabilities } from '../../access/tile-capability.js';
import { SESSION_COOKIE, sessionOf } from './session.js';

/**
 * The paths a tile capability opens, and the slide each names: a slide's Deep
 * Zoom descriptor and tiles, its associated images (label and macro stay
 * staff only: a capability grants no role) and its IIIF images. Not its
 * overlays, whose hidden-truth rule needs the requester's account.
 */
const CAPABILITY_PATH = /^\/(?:tiles\/([1-9]\d{0,15})(?:\.dzi$|_files\/|\/(?:thumbnail|label|macro)$)|iiif\/([1-9]\d{0,15})(?:\/|$))/;

/** `cap=…` in a query string (a capability is base64url and digits: nothing in it needs escaping). */
const CAPABILITY_QUERY = new RegExp(`(?:^|&)${CAPABILITY_PARAMETER}=([^&]*)`);

/**
 * Before the session and authentication: a GET of a slide's pixels that
 * carries `?cap=` is checked against its capability alone — its signature,
 * its expiry, its slide, and the session cookie or bearer token it was issued
 * to — and the requester is the capability's (L1 for this slide, no roles),
 * without reading the database. An invalid capability is refused, never
 * passed on to the session. Other requests, and these without `cap`, go
 * through the session or token as before.
 */
export function tileCapability(capabilities: TileCapabilities): Middleware {
  return (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    // Read straight from the query string: Koa's ctx.query parses all of it into an object on every tile.
    const found = CAPABILITY_QUERY.exec(ctx.querystring);
    const slide = found && CAPABILITY_PATH.exec(ctx.path);
    if (!slide) return next();
    let capability: string;
    try {
      capability = decodeURIComponent(found[1]!);
    } catch {
      capability = ''; // malformed escapes: refused as malformed
    }
    const claims = capabilities.verify(capability, Number(slide[1] ?? slide[2]), presentedBinding(ctx));
    ctx.state.capability = claims;
    ctx.state.requester = capabilityRequester(claims);
    return next();
  };
}

/** Middleware that a request checked by its tile capability skips: the body parser, the session, authentication, CSRF. */
export function unlessCapability(middleware: Middleware): Middleware {
  return (ctx, next) => (capabilityOf(ctx) ? next() : middleware(ctx, next));
}

/** The claims of the capability this request was admitted by, if any. */
export function capabilityOf(ctx: Context): CapabilityClaims | undefined {
  return (ctx.state as { capability?: CapabilityClaims }).capability;
}

/** The credential this request carries, as a capability is bound to it: the bearer token, else the session cookie's id (read unsigned: the capability's MAC covers it). */
function presentedBinding(ctx: Context): CapabilityBinding | undefined {
  const bearer = /^Bearer +([^\s]+) *$/i.exec(ctx.get('Authorization'))?.[1];
  if (bearer) return { kind: 'token', secret: bearer };
  const session = ctx.cookies.get(SESSION_COOKIE, { signed: false });
  return session ? { kind: 'session', secret: session } : undefined;
}

/** The credential of a request that asks for a capability: its bearer token, or its session's id. */
export function issuingBinding(ctx: Context, via: 'session' | 'token'): CapabilityBinding | undefined {
  if (via === 'token') {
    const bearer = /^Bearer +([^\s]+) *$/i.exec(ctx.get('Authorization'))?.[1];
    return bearer ? { kind: 'token', secret: bearer } : undefined;
  }
  const id = sessionOf(ctx)?.externalKey;
  return id ? { kind: 'session', secret: id } : undefined;
}
