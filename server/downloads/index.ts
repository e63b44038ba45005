/** Downloads: single files with ranges, ZIP bundles, manifests, limits; and the fetch client's shared pieces. */
export {
  DownloadsService,
  MAX_MANIFEST_SLIDES,
  placeholderDuaReference,
  type BundleDelivery,
  type DownloadsServiceOptions,
  type DuaReference,
  type FileAnswer,
  type FileFacts,
  type FileRequest,
  type SelectionSummary,
  type Settle,
} from './downloads.service.js';
export { DownloadLinks, LINK_LIFETIME_MS, type LinkKind, type LinkQuery } from './links.js';
export { DownloadsRepository, type DownloadableSlide } from './downloads.repository.js';
export { DownloadLimitError, DownloadLimits, limitKey, type DownloadLimitSettings, type DownloadTicket } from './limits.js';
export { parseManifest, manifestTsv, manifestView, isSafeRelativePath, type FileKind, type Manifest, type ManifestFile } from './manifest.js';
export { parseRange, decideRange, ifRangeAllows, type ByteRange, type RangeDecision } from './range.js';
export { describeSelection, type Selection } from './selection.js';
export { streamZip, type ZipEntry, type ZipOutcome, type ZipStream } from './zip.js';
export { createDownloadLimits, createDownloadsService } from './create.js';
