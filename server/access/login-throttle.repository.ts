import type { Knex } from 'knex';
import { fromDbTime, toDbTime } from '../db/index.js';

export interface ThrottleState {
  failures: number;
  lockedUntil: Date | null;
}

interface ThrottleRow {
  key: string;
  failures: number;
  window_started_at: string;
  locked_until: string | null;
}

/** Every query on login_throttle: failed logins counted per key (an e-mail's or an address's hash). */
export class LoginThrottleRepository {
  constructor(private readonly knex: Knex) {}

  /** When a key is locked until, if it is locked at `now`. */
  async lockedUntil(keys: string[], now: Date): Promise<Date | null> {
    const rows = await this.knex<ThrottleRow>('login_throttle').whereIn('key', keys).where('locked_until', '>', toDbTime(now)).select('locked_until');
    const times = rows.map((row) => fromDbTime(row.locked_until!).getTime());
    return times.length > 0 ? new Date(Math.max(...times)) : null;
  }

  /**
   * Counts one failure for the key within a window of `windowMs` (a failure
   * after the window starts a new count) and locks the key for `lockMs` when
   * the count reaches `limit`. Returns the state after this failure.
   */
  async recordFailure(key: string, now: Date, { limit, windowMs, lockMs }: { limit: number; windowMs: number; lockMs: number }): Promise<ThrottleState> {
    return this.knex.transaction(async (trx) => {
      const row = await trx<ThrottleRow>('login_throttle').where({ key }).forUpdate().first();
      const fresh = !row || fromDbTime(row.window_started_at).getTime() + windowMs <= now.getTime();
      const failures = fresh ? 1 : row.failures + 1;
      const lockedUntil = failures >= limit ? new Date(now.getTime() + lockMs) : null;
      const values = {
        failures: lockedUntil ? 0 : failures,
        window_started_at: toDbTime(fresh ? now : fromDbTime(row.window_started_at)),
        locked_until: lockedUntil ? toDbTime(lockedUntil) : (row?.locked_until ?? null),
      };
      if (row) await trx('login_throttle').where({ key }).update(values);
      else await trx('login_throttle').insert({ key, ...values });
      return { failures, lockedUntil };
    });
  }

  async clear(key: string): Promise<void> {
    await this.knex('login_throttle').where({ key }).del();
  }

  /** For the clean-up job: counts whose window and lock are both over. */
  async deleteStale(olderThan: Date): Promise<number> {
    const cutoff = toDbTime(olderThan);
    return this.knex('login_throttle')
      .where('window_started_at', '<', cutoff)
      .where((w) => w.whereNull('locked_until').orWhere('locked_until', '<', cutoff))
      .del();
  }
}
