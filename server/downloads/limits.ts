import { AppError } from '../errors.js';

/** `downloads.*` limits from configuration; 0 turns a limit off. */
export interface DownloadLimitSettings {
  /** Slides in one ZIP bundle (413 beyond). */
  maxBundleSlides: number;
  /** Bytes of slide and annotation files in one ZIP bundle (413 beyond). */
  maxBundleBytes: number;
  /** Deliveries (single files and bundles) one user may have running at once (429 beyond). */
  concurrentPerUser: number;
  /** Bytes one user may be sent per UTC day (429 until midnight UTC; 413 for one request larger than the whole allowance). */
  bytesPerDay: number;
}

/** How long a client refused for having too many downloads running should wait before it asks again. */
export const BUSY_RETRY_AFTER_SECONDS = 30;

/** A refusal that tells the client when to come back: the HTTP layer turns `retryAfterSeconds` into `Retry-After`. */
export class DownloadLimitError extends AppError {
  constructor(
    status: 413 | 429,
    code: string,
    message: string,
    readonly retryAfterSeconds: number | null,
    details: Record<string, unknown>,
  ) {
    super(status, code, message, { details: retryAfterSeconds === null ? details : { ...details, retryAfterSeconds } });
  }
}

/** Whom a delivery is counted against: the user, or the address of a requester without an account. */
export function limitKey(who: { userId: number | null; ip: string | null }): string {
  return who.userId === null ? `ip:${who.ip ?? 'unknown'}` : `user:${who.userId}`;
}

/** A running delivery's hold on its user's limits; settle it exactly once, when the response has ended. */
export interface DownloadTicket {
  /** Frees the concurrency slot and charges the bytes actually sent in place of the reservation. */
  settle(bytesSent: number): void;
}

interface Usage {
  day: string;
  /** Bytes sent by finished deliveries today. */
  sent: number;
  /** Bytes reserved by running deliveries. */
  reserved: number;
  running: number;
}

/**
 * Per-user download limits, counted in this process's memory. One instance
 * is the gate of every download path of a process (single files, bundles,
 * dataset bags, toolbox job results; see services.ts), so that together they
 * stay within one user's allowance.
 *
 * Counted in memory: a restart
 * forgets the day's bytes, and each node of a multi-node installation
 * counts its own deliveries. (A shared count needs a table; the audit log
 * already holds every delivery's bytes for reports.)
 *
 * A delivery reserves the bytes it may send when it starts, so that
 * parallel requests cannot pass the daily allowance together, and is charged
 * what it actually sent when it ends.
 */
export class DownloadLimits {
  private readonly usage = new Map<string, Usage>();

  constructor(
    readonly settings: DownloadLimitSettings,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** 413 when a bundle is larger than the configured bounds. */
  checkBundle(slides: number, bytes: number): void {
    const { maxBundleSlides, maxBundleBytes } = this.settings;
    if (maxBundleSlides > 0 && slides > maxBundleSlides) {
      throw new DownloadLimitError(
        413,
        'bundle_too_large',
        `The selection has ${slides} slides; a ZIP bundle holds at most ${maxBundleSlides}. Narrow the selection, or fetch it file by file with the manifest (slidebank fetch)`,
        null,
        { slides, maxBundleSlides },
      );
    }
    if (maxBundleBytes > 0 && bytes > maxBundleBytes) {
      throw new DownloadLimitError(
        413,
        'bundle_too_large',
        `The selection is ${formatBytes(bytes)}; a ZIP bundle holds at most ${formatBytes(maxBundleBytes)}. Narrow the selection, or fetch it file by file with the manifest (slidebank fetch)`,
        null,
        { bytes, maxBundleBytes },
      );
    }
  }

  /** Admit a delivery of up to `bytes` for `user`, or refuse it with 429 (or 413 when it can never fit in a day). */
  admit(user: string, bytes: number): DownloadTicket {
    const refusal = this.refusal(user, bytes);
    if (refusal) throw refusal;
    const usage = this.current(user, this.clock());
    usage.running += 1;
    usage.reserved += bytes;
    let settled = false;
    return {
      settle: (bytesSent: number) => {
        if (settled) return;
        settled = true;
        // Charged to the day the delivery ends in.
        const current = this.current(user, this.clock());
        current.running -= 1;
        current.reserved -= bytes;
        current.sent += bytesSent;
      },
    };
  }

  /** Why a delivery of `bytes` for `user` would be refused now, or null when `admit` would let it start: for telling before a download starts. */
  refusal(user: string, bytes: number): DownloadLimitError | null {
    const { concurrentPerUser, bytesPerDay } = this.settings;
    const now = this.clock();
    const usage = this.current(user, now);
    if (concurrentPerUser > 0 && usage.running >= concurrentPerUser) {
      return new DownloadLimitError(
        429,
        'too_many_downloads',
        `You already have ${usage.running} download(s) running; at most ${concurrentPerUser} may run at once. Try again when one has finished`,
        BUSY_RETRY_AFTER_SECONDS,
        { running: usage.running, concurrentPerUser },
      );
    }
    if (bytesPerDay > 0) {
      if (bytes > bytesPerDay) {
        return new DownloadLimitError(
          413,
          'exceeds_daily_allowance',
          `This download is ${formatBytes(bytes)}, more than the daily allowance of ${formatBytes(bytesPerDay)}; ask for fewer slides (or a byte range) at a time`,
          null,
          { bytes, bytesPerDay },
        );
      }
      const used = usage.sent + usage.reserved;
      if (used + bytes > bytesPerDay) {
        const retryAfter = secondsToNextUtcDay(now);
        return new DownloadLimitError(
          429,
          'daily_allowance_used',
          `You have used ${formatBytes(used)} of today's ${formatBytes(bytesPerDay)}; this download (${formatBytes(bytes)}) would pass it. The allowance renews at midnight UTC`,
          retryAfter,
          { used, bytes, bytesPerDay },
        );
      }
    }
    return null;
  }

  /** For tests and operators: what a user has running and has been sent today. */
  snapshot(user: string): { running: number; sentToday: number; reserved: number } {
    const usage = this.current(user, this.clock());
    return { running: usage.running, sentToday: usage.sent, reserved: usage.reserved };
  }

  /** The user's entry, its day's count started afresh at midnight UTC (running deliveries keep their reservations). */
  private current(user: string, now: Date): Usage {
    const day = now.toISOString().slice(0, 10);
    let usage = this.usage.get(user);
    if (!usage) {
      usage = { day, sent: 0, reserved: 0, running: 0 };
      this.usage.set(user, usage);
    } else if (usage.day !== day) {
      usage.day = day;
      usage.sent = 0;
    }
    return usage;
  }
}

function secondsToNextUtcDay(now: Date): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return Math.max(1, Math.ceil((next - now.getTime()) / 1000));
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
