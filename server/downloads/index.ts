/** Downloads: single files with ranges, ZIP bundles, manifests, limits; and the fetch client's shared pieces. */
export {
  DownloadsService,
  MAX_MANIFEST_SLIDES,
  placeholderDuaReference,
  type BundleDelivery,
  type DownloadRequester,
  type DownloadsServiceOptions,
  type DuaReference,
  type FileDelivery,
  type FileRequest,
  type ManifestResponse,
  type Settle,
} from './downloads.service.js';
export { DownloadsRepository, type DownloadableSlide } from './downloads.repository.js';
export { DownloadLimitError, DownloadLimits, limitKey, type DownloadLimitSettings, type DownloadTicket } from './limits.js';
export { parseManifest, manifestTsv, isSafeRelativePath, type FileKind, type Manifest, type ManifestFile } from './manifest.js';
export { parseRange, decideRange, ifRangeAllows, type RangeDecision } from './range.js';
export { streamZip, type ZipEntry, type ZipOutcome, type ZipStream } from './zip.js';
export { createDownloadLimits, createDownloadsService } from './create.js';
