import type { AuditLog } from '../audit/audit-log.js';
import type { CatalogService } from '../catalog/catalog.service.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { loadVocabulary } from '../ingest/vocabulary.js';
import type { Logger } from '../logging.js';
import { DownloadsRepository } from './downloads.repository.js';
import { DownloadsService, type DuaReference } from './downloads.service.js';
import { DownloadLimits } from './limits.js';

/** The downloads service from configuration: its repository, the catalog for filters, limits, and the audit log it records into. */
export function createDownloadsService(
  config: Config,
  db: Database,
  log: Logger,
  { catalog, audit, duaReference }: { catalog: Pick<CatalogService, 'search'>; audit: AuditLog; duaReference?: DuaReference },
): DownloadsService {
  const { nginxAccelRedirect, ...limits } = config.downloads;
  return new DownloadsService({
    slides: new DownloadsRepository(db.knex),
    catalog,
    vocabulary: loadVocabulary(config.ingest.vocabularies),
    audit,
    limits: new DownloadLimits(limits),
    slidesDir: config.paths.slides,
    nginxAccelRedirect,
    log,
    ...(duaReference ? { duaReference } : {}),
  });
}
