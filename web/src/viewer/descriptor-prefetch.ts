import { request } from '../api';

/**
 * Deep Zoom descriptors asked for ahead of the viewer: the slide page starts
 * the request while the slide's metadata and the viewer's script are still
 * loading, instead of after both (a first screen is a chain of round trips).
 * Each prefetched answer is used once, or dropped when the page goes.
 */
const pending = new Map<string, Promise<string>>();

export function prefetchDescriptor(url: string): void {
  if (pending.has(url)) return;
  const text = request('GET', url).then((response) => response.text());
  // A failure is reported by the viewer when it takes the answer.
  text.catch(() => undefined);
  pending.set(url, text);
}

/** The descriptor's text: the prefetched answer when there is one, else a new request. */
export function fetchDescriptor(url: string): Promise<string> {
  const prefetched = pending.get(url);
  pending.delete(url);
  return prefetched ?? request('GET', url).then((response) => response.text());
}

export function dropDescriptor(url: string): void {
  pending.delete(url);
}
