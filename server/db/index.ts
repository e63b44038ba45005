export { openDatabase, waitForDatabase, type Database } from './connect.js';
export {
  migrateToLatest,
  migrationStatus,
  rollbackLatest,
  migrationLockHeld,
  releaseMigrationLock,
  type MigrationStatus,
  type MigrateOptions,
} from './migrate.js';
export { checkDatabase, type DatabaseHealth } from './health.js';
export { toDbTime, fromDbTime, fromDbJson, isUniqueViolation, dialectOf, collationKey, type DialectName } from './dialect.js';
export { retryIdempotent, retryTransaction, isTransactionConflict, isConnectionLost, type RetryPolicy } from './transaction.js';
export type { Queryable, Transaction } from './transaction.js';
