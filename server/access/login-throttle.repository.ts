import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

/** The answer to taking an attempt: its number within the window, or until when none is allowed. */
export type Attempt = { allowed: true; number: number } | { allowed: false; until: Date };

interface ThrottleRow {
  key: string;
  /** Attempts counted in the current window (the column predates counting attempts rather than failures). */
  failures: number;
  window_started_at: string;
  locked_until: string | null;
}

/**
 * Every query on login_throttle: attempts counted per key (the hash of an
 * e-mail address, a client address, a mailbox), in the database so that the
 * count holds across app nodes.
 */
export class LoginThrottleRepository {
  constructor(private readonly knex: Knex) {}

  /**
   * Counts one attempt for the key before the work it stands for is done, so
   * that parallel requests cannot all slip under the limit: at most `limit`
   * attempts are allowed per window of `windowMs` (the first attempt after
   * the window, or after a lock, starts a new one), none while the key is
   * locked. Atomic: the row is read and written under the row's lock.
   */
  async take(key: string, now: Date, { limit, windowMs }: { limit: number; windowMs: number }): Promise<Attempt> {
    // The row exists before the transaction locks it: two first attempts inserting at once would otherwise deadlock on MariaDB.
    await this.knex('login_throttle').insert({ key, failures: 0, window_started_at: toDbTime(now), locked_until: null }).onConflict('key').ignore();
    return this.knex.transaction(async (trx) => {
      // A write first takes the row's lock on MariaDB and SQLite's write lock before anything is read, so no other node reads the count in between.
      await trx('login_throttle').where({ key }).update({ failures: trx.raw('??', ['failures']) });
      const row = await trx<ThrottleRow>('login_throttle').where({ key }).first();
      if (!row) throw new Error(`login_throttle row ${key} vanished inside its own transaction`);
      const lockedUntil = row.locked_until ? fromDbTime(row.locked_until) : null;
      if (lockedUntil && lockedUntil.getTime() > now.getTime()) return { allowed: false, until: lockedUntil };
      const windowStart = fromDbTime(row.window_started_at);
      const fresh = lockedUntil !== null || windowStart.getTime() + windowMs <= now.getTime();
      const counted = fresh ? 0 : row.failures;
      if (counted >= limit) return { allowed: false, until: new Date(windowStart.getTime() + windowMs) };
      await trx('login_throttle')
        .where({ key })
        .update({ failures: counted + 1, window_started_at: toDbTime(fresh ? now : windowStart), locked_until: null });
      return { allowed: true, number: counted + 1 };
    });
  }

  /** Locks the key until `until`; the count starts again after it. */
  async lock(key: string, until: Date): Promise<void> {
    await this.knex('login_throttle').where({ key }).update({ failures: 0, locked_until: toDbTime(until) });
  }

  /** Gives back one counted attempt: the work it stood for was not done, or did not count against the key (a right password). */
  async giveBack(key: string): Promise<void> {
    await this.knex('login_throttle').where({ key }).where('failures', '>', 0).decrement('failures', 1);
  }

  async clear(key: string): Promise<void> {
    await this.knex('login_throttle').where({ key }).del();
  }

  /** For the clean-up job: counts whose window and lock are both over. */
  async deleteStale(olderThan: Date): Promise<number> {
    const cutoff = toDbTime(olderThan);
    return this.knex('login_throttle')
      .where('window_started_at', '<', cutoff)
      .where((w) => {
        w.whereNull('locked_until').orWhere('locked_until', '<', cutoff);
      })
      .del();
  }
}
