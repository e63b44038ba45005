import path from 'node:path';
import { AuditRepository } from '../audit/audit.repository.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import type { Logger } from '../logging.js';
import { CatalogRepository } from '../catalog/catalog.repository.js';
import { CatalogService } from '../catalog/catalog.service.js';
import { createSlideRelease } from '../catalog/slide-release.js';
import type { DownloadLimits } from '../downloads/limits.js';
import { loadVocabulary } from '../catalog/vocabulary.js';
import { createDicomExportService } from '../dicom/export/index.js';
import { DatasetsRepository } from './datasets.repository.js';
import { DatasetsService } from './datasets.service.js';
import { ExportService } from './export.service.js';
import { ImportsRepository } from './imports.repository.js';
import { ImportService } from './import.service.js';
import { ExchangeService } from './exchange.service.js';
import type { AuditLog } from '../audit/audit-log.js';
import { ensureSiteKey } from './site-key.js';
import { siteOf } from './site.js';

export { DatasetError, DatasetsService } from './datasets.service.js';
export { ExportService, parseSize, type ExportRequest, type ExportResult } from './export.service.js';
export { ImportError, ImportService, type ImportProgress, type ImportResult, type WithdrawalsResult } from './import.service.js';
export { ensureSiteKey, siteIdentity, SITE_KEY_FILE, type SiteIdentity } from './site-key.js';
export { siteIdentityOf, siteOf } from './site.js';
export { ExchangeService, type BagRequest } from './exchange.service.js';
export type { DatasetList, DatasetSummary, DatasetVersions, HoleyBag, SiteView } from './views.js';
export { mirrorDataset, type MirrorOptions, type MirrorResult } from './mirror.js';
export { METADATA_SCHEMA_VERSION, WITHDRAWN_TAG_FILE, type BagMetadata, type WithdrawnNotice } from './bag-contents.js';

export function createDatasetsService(config: Config, db: Database): DatasetsService {
  const release = createSlideRelease(db);
  return new DatasetsService(new DatasetsRepository(db.knex), new CatalogService(new CatalogRepository(db.knex), loadVocabulary(config.ingest.vocabularies), config.paths.thumbnails, release), release, {
    slidesDir: config.paths.slides,
    releasesDir: path.join(config.paths.data, 'releases'),
  });
}

export function createExportService(config: Config, db: Database): ExportService {
  const dicom = createDicomExportService(config, db);
  return new ExportService(createDatasetsService(config, db), {
    site: siteOf(config),
    key: ensureSiteKey(config.paths.data),
    dicom: {
      async exportSlide(slideId, outDir) {
        const { result } = await dicom.exportSlide(slideId, outDir);
        return { files: result.instances.map((i) => i.file) };
      },
    },
  });
}

export function createImportService(config: Config, db: Database, log: Logger): ImportService {
  return new ImportService(new ImportsRepository(db.knex, new AuditRepository(db.knex)), {
    slidesDir: config.paths.slides,
    thumbnailsDir: config.paths.thumbnails,
    trustedKeys: config.mirror.trustedKeys,
    log,
  });
}

/**
 * The HTTP side of mirroring; the site key is read (or made) on the first
 * export, not when the server starts. `limits`: the download limits the
 * process's other download paths share (services.ts).
 */
export function createExchangeService(config: Config, db: Database, audit: AuditLog, limits: DownloadLimits): ExchangeService {
  let exporter: ExportService | undefined;
  return new ExchangeService(createDatasetsService(config, db), () => (exporter ??= createExportService(config, db)), audit, limits, config.paths.cache);
}
