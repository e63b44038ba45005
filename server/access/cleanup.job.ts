import type { AuditLog } from '../audit/audit-log.js';
import type { ScheduledJob } from '../jobs/job.js';
import type { AuthTokensRepository } from './auth-tokens.repository.js';
import type { LoginThrottleRepository } from './login-throttle.repository.js';
import type { SessionsRepository } from './sessions.repository.js';
import type { UsersRepository } from './users.repository.js';

const DAY = 24 * 60 * 60 * 1000;

export interface CleanupDependencies {
  users: UsersRepository;
  sessions: SessionsRepository;
  authTokens: AuthTokensRepository;
  throttle: LoginThrottleRepository;
  audit: AuditLog;
  unconfirmedDays: number;
  schedule: string;
}

/** Nightly: expired sessions and mailed links, finished throttling records, and accounts never confirmed. */
export function cleanupJob(deps: CleanupDependencies): ScheduledJob {
  return {
    name: 'account-cleanup',
    description: `remove expired sessions and links, and accounts unconfirmed after ${deps.unconfirmedDays} days`,
    schedule: deps.schedule,
    async run({ now }) {
      const sessions = await deps.sessions.deleteExpired(now);
      const links = await deps.authTokens.deleteExpired(now);
      const throttles = await deps.throttle.deleteStale(new Date(now.getTime() - DAY));
      const removed = await deps.users.deleteUnconfirmedBefore(new Date(now.getTime() - deps.unconfirmedDays * DAY));
      for (const id of removed) {
        await deps.audit.record({ action: 'user.removed_unconfirmed', actorId: null, subjectType: 'user', subjectId: id, details: { afterDays: deps.unconfirmedDays } });
      }
      return { sessions, links, throttles, unconfirmedAccounts: removed.length };
    },
  };
}
