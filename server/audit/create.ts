import type { Database } from '../db/index.js';
import { AuditRepository } from './audit.repository.js';

/** The audit log in the database, as the services and the command line record into it (and administrators read it). */
export function createAuditLog(db: Database): AuditRepository {
  return new AuditRepository(db.knex);
}
