import { get } from '../api';

/** `GET /api/slides/{id}/tile-capability`. */
interface TileCapabilityAnswer {
  slide: number;
  capability: string;
  parameter: string;
  expiresAt: string;
  lifetimeSeconds: number;
}

/** Not used in its last seconds, so that a tile asked for just before the expiry does not arrive just after it. */
const MARGIN_MS = 15_000;
/** After a failed renewal, try again this much later (meanwhile tiles go through the session). */
const RETRY_MS = 60_000;

/**
 * A slide's tile capability, kept current for as long as the viewer shows the
 * slide: tile URLs that carry it (`?cap=`) are checked by the server without
 * reading its database, where each tile through the session costs a session
 * and a user look-up. Renewed when four fifths of its life have passed. While
 * there is none (not yet, a failed renewal, a throttled background tab that
 * slept past its expiry) `query()` is empty and the tiles go through the
 * session cookie as before.
 */
export class TileCapability {
  private current: { query: string; expiresAt: number } | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;

  constructor(private readonly slideId: number | string) {}

  /** Gets the first capability; resolves (without one) also when the server refuses it. */
  start(): Promise<void> {
    return this.renew();
  }

  /** What to add to a tile URL: `?cap=…`, or nothing while no capability is current. */
  query(): string {
    if (!this.current) return '';
    if (Date.now() > this.current.expiresAt - MARGIN_MS) {
      this.current = null;
      this.schedule(0);
      return '';
    }
    return this.current.query;
  }

  /** `url` with the capability added, when there is one. */
  url(url: string): string {
    return `${url}${this.query()}`;
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private async renew(): Promise<void> {
    if (this.stopped) return;
    try {
      const answer = await get<TileCapabilityAnswer>(`/api/slides/${encodeURIComponent(String(this.slideId))}/tile-capability`);
      const expiresAt = Date.parse(answer.expiresAt);
      this.current = { query: `?${answer.parameter}=${encodeURIComponent(answer.capability)}`, expiresAt };
      this.schedule(Math.max(1000, (expiresAt - Date.now()) * 0.8));
    } catch {
      this.current = null;
      this.schedule(RETRY_MS);
    }
  }

  private schedule(delay: number): void {
    clearTimeout(this.timer);
    if (!this.stopped) this.timer = setTimeout(() => void this.renew(), delay);
  }
}
