import type { FetchableFile } from '../manifest.js';

/** Why `slidebank fetch` could not start: the server unreachable, a refusal, or a usage mistake. */
export class FetchError extends Error {
  override name = 'FetchError';
  constructor(
    message: string,
    readonly kind: 'network' | 'refused' | 'usage',
  ) {
    super(message);
  }
}

const USER_AGENT = 'slidebank-fetch/1';

export function baseUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new FetchError(`--server must be a URL such as https://slidebank.hospital.example, not "${server}"`, 'usage');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FetchError(`--server must be an http:// or https:// URL, not "${server}"`, 'usage');
  return url;
}

/** The URL of a manifest file on the server; the token must never go anywhere else. */
export function fileUrl(file: FetchableFile, server: URL): URL {
  if (file.href) {
    const url = new URL(file.href, server);
    if (url.origin !== server.origin) throw new Error(`the manifest points outside ${server.origin} (${url.origin}); not fetched`);
    return url;
  }
  const given = new URL(file.url!, server);
  // A manifest written by the same server under another name (behind a proxy, say): its path on --server.
  return given.origin === server.origin ? given : new URL(given.pathname + given.search, server);
}

export function authHeaders(token: string): Record<string, string> {
  return { Authorization: `Bearer ${token}`, 'User-Agent': USER_AGENT };
}

/** Retry-After as milliseconds (delta-seconds or an HTTP-date), or null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

/** The reason a server gave: its JSON error's message, else the start of the body, else the status text. */
export async function serverMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const message = (JSON.parse(text) as { error?: { message?: string } }).error?.message;
    if (message) return message;
  } catch {
    // not the server's JSON error
  }
  return text.trim().slice(0, 200) || response.statusText || 'no reason given';
}

export function describeNetworkError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message ?? String(error);
}
