export type { AuditActor, AuditEvent, AuditLog } from './audit-log.js';
export { AuditRepository, AUDIT_LIMITS, type AuditEntry, type AuditFilters, type AuditListOptions } from './audit.repository.js';
export { AuditService, AUDIT_CSV_COLUMNS, AUDIT_PAGE_SIZE, type AuditPageQuery, type AuditQuery, type CsvDownload } from './audit.service.js';
export { auditEntry, auditPage, type AuditPage } from './views.js';
