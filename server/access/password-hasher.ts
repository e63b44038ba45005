import { AppError } from '../errors.js';
import { hashPassword, verifyPassword } from './password.js';

export interface HashingLimits {
  /** Password hashes computed at once (each takes 32 MiB and a thread of the pool that also reads tiles). */
  concurrent: number;
  /** Hashes that may wait for a turn; a request beyond them is refused with 503 and Retry-After. */
  queued: number;
}

/** What a refused request is told to wait: about what a full queue takes to clear. */
export const BUSY_RETRY_AFTER_SECONDS = 2;

/**
 * Password hashing and checking for requests, a bounded number at a time, so
 * that a burst of logins or registrations can neither exhaust memory nor
 * starve the thread pool: work beyond `concurrent` waits in a queue of at
 * most `queued`, and what does not fit is refused at once rather than
 * queued without end.
 */
export class PasswordHasher {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limits: HashingLimits) {}

  hash(password: string): Promise<string> {
    return this.run(() => hashPassword(password));
  }

  verify(password: string, stored: string): Promise<boolean> {
    return this.run(() => verifyPassword(password, stored));
  }

  /** Hashes running and waiting now. */
  get load(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrent) {
      if (this.waiting.length >= this.limits.queued) {
        throw new AppError(503, 'server_busy', `Too many password checks at once; try again in ${BUSY_RETRY_AFTER_SECONDS} seconds`, {
          expose: true,
          details: { retryAfterSeconds: BUSY_RETRY_AFTER_SECONDS },
        });
      }
      // The finishing hash hands its turn over directly (running stays the same), so nobody can overtake the queue.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}
