import type { AuditLog } from '../audit/audit-log.js';
import type { CatalogService } from '../catalog/catalog.service.js';
import { createSlideRelease } from '../catalog/slide-release.js';
import type { Config } from '../config/index.js';
import type { Database } from '../db/index.js';
import { loadVocabulary } from '../catalog/vocabulary.js';
import type { Logger } from '../logging.js';
import { DownloadsRepository } from './downloads.repository.js';
import { DownloadsService, type DownloadsServiceOptions, type DuaReference } from './downloads.service.js';
import { DownloadLimits } from './limits.js';
import { createDicomExportService } from '../dicom/export/index.js';

/** The per-user download limits of configuration: make one per process and give it to every path that sends files (services.ts). */
export function createDownloadLimits(config: Config): DownloadLimits {
  const { nginxAccelRedirect: _offload, ...limits } = config.downloads;
  return new DownloadLimits(limits);
}

/** The downloads service from configuration: its repository, the catalog for filters, the limits it shares, and the audit log it records into. */
export function createDownloadsService(
  config: Config,
  db: Database,
  log: Logger,
  {
    catalog,
    audit,
    duaReference,
    limits,
    hiddenAnnotations,
  }: { catalog: Pick<CatalogService, 'publishedIds'>; audit: AuditLog; duaReference?: DuaReference; limits?: DownloadLimits; hiddenAnnotations?: DownloadsServiceOptions['hiddenAnnotations'] },
): DownloadsService {
  const dicomExport = createDicomExportService(config, db);
  return new DownloadsService({
    slides: new DownloadsRepository(db.knex),
    release: createSlideRelease(db),
    catalog,
    vocabulary: loadVocabulary(config.ingest.vocabularies),
    audit,
    limits: limits ?? createDownloadLimits(config),
    slidesDir: config.paths.slides,
    nginxAccelRedirect: config.downloads.nginxAccelRedirect,
    log,
    dicom: {
      scratch: config.paths.cache,
      exportSlide: async (slideId, outDir) => (await dicomExport.exportSlide(slideId, outDir)).result.instances.map((i) => i.file),
    },
    ...(duaReference ? { duaReference } : {}),
    ...(hiddenAnnotations ? { hiddenAnnotations } : {}),
  });
}
