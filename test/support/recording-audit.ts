import type { Knex } from 'knex';
import type { AuditEvent, AuditLog } from '../../server/audit/audit-log.js';

/**
 * A test double of the AuditLog that keeps events in memory, with the real
 * log's one rule that matters to callers: an event recorded inside a
 * transaction exists only if that transaction commits.
 */
export class RecordingAudit implements AuditLog {
  readonly events: AuditEvent[] = [];

  async record(event: AuditEvent, trx?: Knex): Promise<void> {
    const copy = structuredClone(event);
    const transaction = trx as Knex.Transaction | undefined;
    if (transaction?.isTransaction) {
      transaction.executionPromise.then(
        () => this.events.push(copy),
        () => {},
      );
    } else {
      this.events.push(copy);
    }
  }

  actions(): string[] {
    return this.events.map((event) => event.action);
  }

  of(action: string): AuditEvent[] {
    return this.events.filter((event) => event.action === action);
  }
}
