import { createHmac } from 'node:crypto';
import { sameSecret } from '../access/secrets.js';
import { formatFilter } from '../catalog/filter.js';
import { AppError } from '../errors.js';
import type { Selection } from './selection.js';

/** How long a signed download link may be started; the download it starts may run for as long as it needs. */
export const LINK_LIFETIME_MS = 10 * 60_000;

/** What a link delivers; part of what is signed, so that a link made for one kind never delivers another. */
export type LinkKind = 'zip';

/** The query of a signed link: whose it is, what it selects (slide ids or a filter expression), until when, and the signature. */
export interface LinkQuery {
  user: number;
  slides?: string;
  filter?: string;
  expires: number;
  signature: string;
}

/**
 * Short-lived signed links to a ZIP bundle, so that the browser's own
 * download manager can fetch it with a plain GET (streamed to disk, with
 * its progress), where a fetch() would have to hold the whole archive in
 * the page's memory.
 *
 * The signature is an HMAC-SHA256, under a key derived from each session key
 * (as the anonymous CSRF tokens are), over the user id, the kind, the
 * selection (the slide ids as given, or the canonical filter expression) and
 * the expiry. It proves that this server made the link for that user and
 * selection; it grants nothing by itself: the GET is still made with the
 * user's own session or token and passes the same gate as every download
 * (level and agreement at the time of the GET, limits, withdrawn slides,
 * audit). What it adds over a plain GET is that another site cannot make a
 * logged-in browser start downloads (the session cookie is SameSite=Lax,
 * which top-level GET navigations carry).
 */
export class DownloadLinks {
  private readonly macKeys: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly lifetimeMs = LINK_LIFETIME_MS,
  ) {
    if (keys.length === 0) throw new Error('download links need at least one session key');
    this.macKeys = keys.map((key) => createHmac('sha256', key).update('slidebank download link').digest());
  }

  /** The query of a link for `userId` to the selection, valid for the lifetime from `now`. */
  issue(userId: number, kind: LinkKind, selection: Selection, now: Date): { query: LinkQuery; expiresAt: Date } {
    const expires = Math.floor((now.getTime() + this.lifetimeMs) / 1000);
    const chosen = selection.kind === 'slides' ? { slides: selection.ids.join(',') } : { filter: formatFilter(selection.filter) };
    const unsigned = { user: userId, ...chosen, expires };
    return { query: { ...unsigned, signature: mac(this.macKeys[0]!, signedText(kind, unsigned)) }, expiresAt: new Date(expires * 1000) };
  }

  /**
   * Refuses a link this server did not make or that was changed (403
   * download_link_invalid), one past its expiry (410 download_link_expired),
   * and one made for another account (403 download_link_not_yours).
   */
  verify(kind: LinkKind, query: LinkQuery, requesterId: number, now: Date): void {
    const text = signedText(kind, query);
    if (!this.macKeys.some((key) => sameSecret(mac(key, text), query.signature))) {
      throw new AppError(403, 'download_link_invalid', 'This download link is not valid: it was changed, or not made by this server. Start the download again from the catalog');
    }
    if (query.expires * 1000 <= now.getTime()) {
      throw new AppError(410, 'download_link_expired', `This download link expired at ${new Date(query.expires * 1000).toISOString()}; links work for ${Math.round(this.lifetimeMs / 60_000)} minutes. Start the download again from the catalog`);
    }
    if (query.user !== requesterId) {
      throw new AppError(403, 'download_link_not_yours', 'This download link was made for another account; start the download from the catalog yourself');
    }
  }
}

/** One line per field; the selection's two forms are told apart, so that neither can pass for the other. */
function signedText(kind: LinkKind, query: Omit<LinkQuery, 'signature'>): string {
  const selection = query.slides !== undefined ? `slides=${query.slides}` : `filter=${query.filter ?? ''}`;
  return ['slidebank-download-link-v1', kind, String(query.user), selection, String(query.expires)].join('\n');
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('base64url');
}
