import type { ScheduledJob } from '../jobs/job.js';
import type { AgreementsService } from './agreements.service.js';

export interface AgreementJobSchedules {
  reminders: string;
  expiry: string;
}

/**
 * The agreement jobs: reminders 30 and 7 days before an L2 (DUA) or L3
 * (membership) runs out, each sent once per expiry; and expiry, which lowers
 * a lapsed user to what they still hold and tells them why and how to renew.
 */
export function agreementJobs(service: AgreementsService, schedules: AgreementJobSchedules): ScheduledJob[] {
  return [
    {
      name: 'dua-reminders',
      description: 'remind users 30 and 7 days before their DUA or membership runs out',
      schedule: schedules.reminders,
      run: ({ now }) => service.sendReminders(now),
    },
    {
      name: 'dua-expiry',
      description: 'drop users whose DUA or membership ran out to the level they still hold, and tell them',
      schedule: schedules.expiry,
      run: ({ now }) => service.expireLevels(now),
    },
  ];
}
