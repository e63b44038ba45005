import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import pLimit from 'p-limit';
import type { AuditActor, AuditEvent, AuditLog } from '../audit/audit-log.js';
import type { CatalogService } from '../catalog/catalog.service.js';
import type { SlideRelease } from '../catalog/slide-release.js';
import type { CatalogFilter } from '../catalog/filter.js';
import { AppError, badRequest, notFound } from '../errors.js';
import type { Vocabulary } from '../ingest/types.js';
import type { Logger } from '../logging.js';
import {
  BUNDLE_PATHS,
  bundlePath,
  LICENCE,
  metadataCsv,
  metadataJson,
  metadataRecords,
  readme,
  sha256Manifest,
  type BundleDescription,
  type SelectedFile,
  type SelectedSlide,
} from './bundle-contents.js';
import { sha256File } from '../lib/hashing.js';
import { FileChecksums, normalizeSha256 } from './checksums.js';
import type { DownloadableSlide, DownloadsRepository } from './downloads.repository.js';
import { DownloadLimitError, limitKey, type DownloadLimits } from './limits.js';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type FileKind, type Manifest } from './manifest.js';
import { decideRange, etagFor, type ByteRange } from './range.js';
import { describeSelection, type Selection } from './selection.js';
import { streamZip, type ZipEntry } from './zip.js';

/** What of a GET or HEAD the service needs: the method and the range it asks for, with its If-Range precondition. */
export interface FileRequest {
  method: 'GET' | 'HEAD';
  range?: string;
  ifRange?: string;
}

/** How a response ended, as the HTTP layer saw it: `finished` when every byte was handed to the connection. */
export type Settle = (finished: boolean) => Promise<void>;

/** A file as its answer describes it; the HTTP layer makes the headers (type, name, validators, checksums) from this. */
export interface FileFacts {
  kind: FileKind;
  /** The name to save it under. */
  name: string;
  size: number;
  lastModified: Date;
  /** Lower-case hex; null when the catalog has none for the slide (then it has no ETag and no digest). */
  sha256: string | null;
}

/**
 * What a GET or HEAD of one file is answered with, as the service decided it:
 * - `unsatisfiable`: the Range cannot be served (416), and why;
 * - `bytes`: the whole file (`range` null) or one range of it, with the
 *   bytes for a GET (`body`: the stream, and `settle` to call exactly once
 *   when the response is over, finished or cut off); no body for a HEAD;
 * - `offload`: nginx sends the bytes (X-Accel-Redirect to `uri`) and answers the Range itself.
 */
export type FileAnswer =
  | { kind: 'unsatisfiable'; file: FileFacts; message: string }
  | { kind: 'bytes'; file: FileFacts; range: ByteRange | null; body: { stream: Readable; settle: Settle } | null }
  | { kind: 'offload'; file: FileFacts; uri: string };

/** A ZIP archive made on the fly (a download bundle, a bag): its file name, its bytes, and `settle` to call once when the response is over. */
export interface BundleDelivery {
  fileName: string;
  body: Readable;
  settle: Settle;
}

/** The text the README gives as the data use agreement a download falls under. The DUA work supplies the real one. */
export type DuaReference = (userId: number | null) => string | Promise<string>;

export const placeholderDuaReference: DuaReference = (userId) =>
  userId === null
    ? 'the data use agreement of the requesting user (not identified)'
    : `the data use agreement of Slidebank user #${userId} (see your account page for its reference and validity)`;

export interface DownloadsServiceOptions {
  slides: DownloadsRepository;
  /** Whether a slide's files may leave at all (published, not withdrawn). */
  release: Pick<SlideRelease, 'assertMayLeave' | 'withheld'>;
  /** For selections by catalog filter: the same slides the catalog search shows. */
  catalog: Pick<CatalogService, 'publishedIds'>;
  vocabulary: Vocabulary;
  audit: AuditLog;
  limits: DownloadLimits;
  /** The slide store (config paths.slides): relative file paths are under it. */
  slidesDir: string;
  /** config downloads.nginxAccelRedirect: '' serves files from this process; an internal location prefix hands them to nginx. */
  nginxAccelRedirect: string;
  log: Logger;
  duaReference?: DuaReference;
  /** The slides among `ids` whose annotations are hidden from this actor (a challenge's truth): left out of every delivery. */
  hiddenAnnotations?: (who: AuditActor, ids: readonly number[]) => Promise<Set<number>>;
  /** Writes a published slide as a DICOM series (server/dicom/export), for bundles in the DICOM form; `scratch` is where the series are made (paths.cache). */
  dicom?: { exportSlide(slideId: number, outDir: string): Promise<string[]>; scratch: string };
  clock?: () => Date;
}

/** How a bundle carries the slides: the stored files, or each slide as a DICOM series. */
export type BundleFormat = 'stored' | 'dicom';

/** Scratch folders of DICOM bundles a stopped server left behind are removed once this old. */
const DICOM_SCRATCH_MAX_AGE_MS = 2 * 24 * 3600 * 1000;

/** What a selection holds, before anything is downloaded; `zipRefusal` says why a ZIP of it would be refused now, or is null. */
export interface SelectionSummary {
  selection: { filter: string } | { slides: number[] };
  slides: number;
  files: number;
  totalBytes: number;
  zipRefusal: { status: number; code: string; message: string } | null;
}

/** A manifest lists at most this many slides; beyond, narrow the filter (a bundle's bound is configured). */
export const MAX_MANIFEST_SLIDES = 10_000;
/**
 * Files read from this process are read in chunks this large. A download
 * beside busy tile clients gets about one chunk per turn of the event loop:
 * 1 MiB chunks held it to a tenth of nginx's rate, 4 MiB to a quarter, 16 MiB
 * to a third but took a quarter of the tiles' rate (docs/benchmarks.md).
 */
const READ_CHUNK = 4 << 20;

/**
 * Downloads of published slides for L2/L3 researchers (the routes check the
 * level): single files with HTTP ranges, streamed ZIP bundles of a
 * selection, and manifests for the fetch client. Every delivery is audited
 * with the bytes it sent and whether it was complete, and counted against
 * the user's limits.
 */
export class DownloadsService {
  private readonly checksums = new FileChecksums();
  private readonly slidesDir: string;
  private readonly duaReference: DuaReference;
  private readonly clock: () => Date;
  /** Bytes delivered since start, by what and by whom (`nginx`: handed to nginx by X-Accel-Redirect); read by the metrics at scrape time. */
  readonly bytesSent = { file: { app: 0, nginx: 0 }, bundle: { app: 0, nginx: 0 } };

  constructor(private readonly options: DownloadsServiceOptions) {
    this.slidesDir = path.resolve(options.slidesDir);
    this.duaReference = options.duaReference ?? placeholderDuaReference;
    this.clock = options.clock ?? (() => new Date());
  }

  /** `GET`/`HEAD /api/slides/{id}/files/slide|annotation`: what to answer, decided from the file and the request's Range and If-Range. */
  async file(who: AuditActor, slideId: number, kind: FileKind, request: FileRequest): Promise<FileAnswer> {
    await this.options.release.assertMayLeave(slideId);
    const slide = await this.options.slides.findPublished(slideId);
    if (!slide) throw notFound('slide_not_found', `There is no published slide ${slideId}`);
    if (kind === 'annotation' && slide.annotationPath === null) {
      throw notFound('annotation_not_found', `Slide ${slideId} has no annotation file`);
    }
    if (kind === 'annotation' && (await this.hidden(who, [slideId])).size > 0) {
      throw new AppError(403, 'truth_hidden', `The annotation of slide ${slideId} is the hidden truth of a challenge; it is published when the challenge ends`);
    }
    const stored = kind === 'slide' ? slide.filePath : slide.annotationPath!;
    const file = this.resolve(stored, slide.id);
    const offload = this.offloadUri(stored);
    const opens = request.method === 'GET' && offload === null;

    let handle: FileHandle | undefined;
    try {
      let stats: Stats;
      try {
        handle = opens ? await open(file, 'r') : undefined;
        stats = handle ? await handle.stat() : await stat(file);
      } catch (error) {
        throw this.fileProblem(slide, kind, error);
      }
      if (stats.isDirectory()) {
        throw new AppError(409, 'slide_is_series', `Slide ${slideId} is a DICOM series (a folder of instances, one per level): download it in a bundle (POST /api/downloads), which holds every instance`);
      }
      const sha256 = kind === 'slide' ? this.slideChecksum(slide, stats) : await this.checksums.sha256(file, stats, handle);
      const size = stats.size;
      const facts: FileFacts = { kind, name: path.posix.basename(bundlePath(slide, kind)), size, lastModified: stats.mtime, sha256 };

      const decision = decideRange(request, size, { etag: sha256 === null ? null : etagFor(sha256), lastModified: stats.mtime });
      if (decision.kind === 'unsatisfiable') return { kind: 'unsatisfiable', file: facts, message: decision.message };
      const range = decision.kind === 'partial' ? { start: decision.start, end: decision.end } : null;
      const length = range ? range.end - range.start + 1 : size;
      if (request.method !== 'GET') return { kind: 'bytes', file: facts, range, body: null };

      const ticket = this.options.limits.admit(limitKey({ userId: who.actorId, ip: who.ip ?? null }), length);
      const record = (bytes: number, complete: boolean | null, via: 'app' | 'nginx') => this.recordFile(who, slide, facts, range, { bytes, complete, via });

      if (offload !== null) {
        // nginx sends the bytes (and answers Range itself): the app has checked access; what nginx then sends it cannot see.
        ticket.settle(length);
        this.bytesSent.file.nginx += length;
        await record(length, null, 'nginx');
        return { kind: 'offload', file: facts, uri: offload };
      }

      // An empty file has no byte range to read (a read stream cannot end before it starts).
      const start = range?.start ?? 0;
      const stream = length === 0 ? Readable.from([]) : handle!.createReadStream({ start, end: start + length - 1, highWaterMark: READ_CHUNK, autoClose: true });
      if (length > 0) handle = undefined; // the stream owns it now and closes it when it ends or is destroyed
      const settle = once(async (finished) => {
        const bytes = Math.max(0, ((stream as { bytesRead?: number }).bytesRead ?? 0) - stream.readableLength);
        stream.destroy();
        ticket.settle(bytes);
        this.bytesSent.file.app += bytes;
        await record(bytes, finished && bytes === length, 'app');
      });
      return { kind: 'bytes', file: facts, range, body: { stream, settle } };
    } finally {
      await handle?.close();
    }
  }

  /** Audit one file's delivery: how much of it went, and whether all that was asked for (null: nginx sent it, unseen). */
  private recordFile(
    who: AuditActor,
    slide: DownloadableSlide,
    file: FileFacts,
    range: ByteRange | null,
    sent: { bytes: number; complete: boolean | null; via: 'app' | 'nginx' },
  ): Promise<void> {
    return this.audit({
      action: file.kind === 'slide' ? 'download.slide' : 'download.annotation',
      actorId: who.actorId,
      subjectType: 'slide',
      subjectId: slide.id,
      ip: who.ip ?? null,
      details: {
        slideIds: [slide.id],
        file: bundlePath(slide, file.kind),
        size: file.size,
        range: range ? `${range.start}-${range.end}` : null,
        status: range ? 206 : 200,
        ...sent,
      },
    });
  }

  /** `POST /api/downloads`: a ZIP of the selected slides, their annotations, metadata, checksums and README. `origin`: this server as the client reached it. */
  async bundle(who: AuditActor, selection: Selection, origin: string, format: BundleFormat = 'stored'): Promise<BundleDelivery> {
    const { limits } = this.options;
    const slides = await this.select(selection, limits.settings.maxBundleSlides > 0 ? limits.settings.maxBundleSlides : MAX_MANIFEST_SLIDES, 'bundle', who);
    const selected = await this.gather(slides, { statSlides: true });
    const files = selected.flatMap((s) => s.files);
    const payloadBytes = files.reduce((sum, f) => sum + f.size, 0);
    limits.checkBundle(selected.length, payloadBytes);
    const ticket = limits.admit(limitKey({ userId: who.actorId, ip: who.ip ?? null }), payloadBytes);

    let entries: ZipEntry[];
    const createdAt = this.clock();
    let scratch: string | undefined;
    try {
      const description: BundleDescription = {
        selection: describeSelection(selection),
        createdAt,
        userId: who.actorId,
        duaReference: await this.duaReference(who.actorId),
        origin,
      };
      let dicom: SelectedFile[] | undefined;
      if (format === 'dicom') {
        scratch = await this.dicomScratch();
        dicom = await this.dicomSeries(selected, scratch, createdAt);
      }
      entries = this.bundleEntries(selected, description, dicom);
    } catch (error) {
      ticket.settle(0);
      if (scratch) await rm(scratch, { recursive: true, force: true });
      throw error;
    }

    const zip = streamZip(entries);
    const stamp = createdAt.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-');
    const slideIds = selected.map((s) => s.slide.id);
    return {
      fileName: `slidebank-${stamp}-${selected.length}-slides${format === 'dicom' ? '-dicom' : ''}.zip`,
      body: zip.stream,
      settle: once(async (finished) => {
        if (!finished) zip.abort();
        const outcome = await zip.done;
        if (scratch) await rm(scratch, { recursive: true, force: true }).catch((error: unknown) => this.options.log.warn({ err: error }, 'DICOM bundle scratch folder not removed'));
        ticket.settle(outcome.bytes);
        this.bytesSent.bundle.app += outcome.bytes;
        await this.audit({
          action: 'download.bundle',
          actorId: who.actorId,
          subjectType: 'bundle',
          subjectId: stamp,
          ip: who.ip ?? null,
          details: {
            selection: describeSelection(selection),
            ...(format === 'dicom' ? { format } : {}),
            slideIds: slideIds.length > 2000 ? [...slideIds.slice(0, 2000), `… ${slideIds.length - 2000} more`] : slideIds,
            slides: selected.length,
            files: files.length,
            payloadBytes,
            entries: outcome.entries,
            totalEntries: entries.length,
            bytes: outcome.bytes,
            complete: finished && outcome.complete,
            ...(outcome.error ? { error: outcome.error.message } : {}),
          },
        });
        if (outcome.error) this.options.log.error({ err: outcome.error, slideIds }, 'download bundle failed part-way');
      }),
    };
  }

  /**
   * How large a selection is (slides, files, bytes of slide and annotation
   * files), and why a ZIP of it would be refused now, if it would: past the
   * bundle bounds, or past the user's daily allowance. Having too many
   * downloads running is left out: that passes once one ends.
   */
  async summary(who: AuditActor, selection: Selection): Promise<SelectionSummary> {
    const slides = await this.select(selection, MAX_MANIFEST_SLIDES, 'manifest', who);
    const limit = pLimit(8);
    const annotationBytes = await Promise.all(
      slides.map((slide) =>
        limit(async () => {
          if (slide.annotationPath === null) return 0;
          const stats = await stat(this.resolve(slide.annotationPath, slide.id)).catch((error: unknown) => {
            throw this.fileProblem(slide, 'annotation', error);
          });
          return stats.size;
        }),
      ),
    );
    const totalBytes = slides.reduce((sum, s) => sum + s.fileSize, 0) + annotationBytes.reduce((sum, b) => sum + b, 0);
    const files = slides.length + slides.filter((s) => s.annotationPath !== null).length;
    const { limits } = this.options;
    let refusal: DownloadLimitError | null = null;
    try {
      limits.checkBundle(slides.length, totalBytes);
    } catch (error) {
      if (!(error instanceof DownloadLimitError)) throw error;
      refusal = error;
    }
    if (!refusal) {
      const byAllowance = limits.refusal(limitKey({ userId: who.actorId, ip: who.ip ?? null }), totalBytes);
      if (byAllowance && byAllowance.code !== 'too_many_downloads') refusal = byAllowance;
    }
    return {
      selection: describeSelection(selection),
      slides: slides.length,
      files,
      totalBytes,
      zipRefusal: refusal ? { status: refusal.status, code: refusal.code, message: refusal.message } : null,
    };
  }

  /** `GET /api/downloads/manifest`: every file of a selection with its URL (under `origin`), size and SHA-256. */
  async manifest(selection: Selection, origin: string, who: AuditActor = { actorId: null }): Promise<Manifest> {
    const slides = await this.select(selection, MAX_MANIFEST_SLIDES, 'manifest', who);
    const selected = await this.gather(slides, { statSlides: false });
    const files = selected.flatMap(({ slide, files: own }) =>
      own.map((f) => {
        const href = `/api/slides/${slide.id}/files/${f.kind}`;
        return { slideId: slide.id, slide: slide.name, kind: f.kind, path: f.path, href, url: `${origin}${href}`, size: f.size, sha256: f.sha256 };
      }),
    );
    return {
      format: MANIFEST_FORMAT,
      version: MANIFEST_VERSION,
      generatedAt: this.clock(),
      selection: describeSelection(selection),
      licence: `${LICENCE.name}, ${LICENCE.url}; use is bound by your data use agreement`,
      slides: selected.length,
      totalBytes: files.reduce((sum, f) => sum + f.size, 0),
      files,
    };
  }

  /** A folder of its own for one DICOM bundle's series, after removing those a stopped server left behind. */
  private async dicomScratch(): Promise<string> {
    if (!this.options.dicom) throw new AppError(501, 'dicom_unavailable', 'This server cannot write DICOM');
    const { scratch } = this.options.dicom;
    await mkdir(scratch, { recursive: true });
    for (const name of await readdir(scratch)) {
      if (!name.startsWith('dicomzip-')) continue;
      const old = path.join(scratch, name);
      const info = await stat(old).catch(() => undefined);
      if (info && this.clock().getTime() - info.mtimeMs > DICOM_SCRATCH_MAX_AGE_MS) await rm(old, { recursive: true, force: true });
    }
    return mkdtemp(path.join(scratch, 'dicomzip-'));
  }

  /** Each selected slide as a DICOM series in `dicom/<name>/`, written into `scratch` and hashed before the ZIP starts. */
  private async dicomSeries(selected: SelectedSlide[], scratch: string, createdAt: Date): Promise<SelectedFile[]> {
    const out: SelectedFile[] = [];
    for (const { slide } of selected) {
      let written: string[];
      try {
        written = await this.options.dicom!.exportSlide(slide.id, path.join(scratch, slide.name));
      } catch (error) {
        this.options.log.error({ err: error, slide: slide.id }, 'DICOM export failed');
        throw new AppError(500, 'dicom_export_failed', `Slide ${slide.id} (${slide.name}) cannot be written as DICOM`, { expose: true });
      }
      for (const file of written) {
        const { size } = await stat(file);
        out.push({ slide, kind: 'slide', path: `dicom/${slide.name}/${path.basename(file)}`, file, size, sha256: await sha256File(file), mtime: createdAt });
      }
    }
    return out;
  }

  private bundleEntries(selected: SelectedSlide[], description: BundleDescription, dicom?: SelectedFile[]): ZipEntry[] {
    // In the DICOM form the series take the place of the stored slide files; the metadata still describes the stored files.
    const files = dicom ? [...selected.flatMap((s) => s.files.filter((f) => f.kind !== 'slide')), ...dicom] : selected.flatMap((s) => s.files);
    const records = metadataRecords(selected, this.options.vocabulary);
    const small = [
      { path: BUNDLE_PATHS.readme, data: Buffer.from(readme(selected, description)) },
      { path: BUNDLE_PATHS.csv, data: Buffer.from(metadataCsv(records)) },
      { path: BUNDLE_PATHS.json, data: Buffer.from(metadataJson(records, description)) },
    ];
    const unchecked = files.filter((f) => f.sha256 === null);
    if (unchecked.length > 0) {
      this.options.log.warn({ files: unchecked.map((f) => f.path) }, 'bundle: files without a catalog checksum are left out of manifest-sha256.txt');
    }
    const checksums = [
      ...small.map((s) => ({ path: s.path, sha256: sha256Hex(s.data) })),
      ...files.filter((f): f is SelectedFile & { sha256: string } => f.sha256 !== null).map((f) => ({ path: f.path, sha256: f.sha256 })),
    ];
    return [
      ...small.map((s) => ({ name: s.path, source: s.data, date: description.createdAt })),
      { name: BUNDLE_PATHS.manifest, source: Buffer.from(sha256Manifest(checksums)), date: description.createdAt },
      ...files.map((f) => ({ name: f.path, source: () => openForBundle(f.file), date: f.mtime })),
    ];
  }

  /** The published slides a selection means, at most `max` of them (413 beyond), none missing (404), at least one (400). */
  private async select(selection: Selection, max: number, what: 'bundle' | 'manifest', who: AuditActor): Promise<DownloadableSlide[]> {
    const tooMany = (count: number) =>
      new DownloadLimitError(
        413,
        what === 'bundle' ? 'bundle_too_large' : 'manifest_too_large',
        `The selection has ${count} slides; a ${what} holds at most ${max}. Narrow the selection${what === 'bundle' ? ', or fetch it file by file with the manifest (slidebank fetch)' : ''}`,
        null,
        { slides: count, max },
      );
    let ids: number[];
    if (selection.kind === 'slides') {
      ids = selection.ids;
      if (ids.length > max) throw tooMany(ids.length);
    } else {
      ids = await this.matching(selection.filter, max, tooMany);
    }
    if (ids.length === 0) throw badRequest('empty_selection', 'No published slide matches the selection; nothing to download');
    const withheld = await this.options.release.withheld(ids);
    const slides = (await this.options.slides.findPublishedMany(ids)).filter((s) => !withheld.has(s.id));
    if (selection.kind === 'slides' && slides.length < ids.length) {
      const found = new Set(slides.map((s) => s.id));
      const missing = ids.filter((id) => !found.has(id));
      throw new AppError(404, 'slide_not_found', `No published slide ${missing.slice(0, 20).join(', ')}${missing.length > 20 ? ` (and ${missing.length - 20} more)` : ''}`, {
        details: { missing },
      });
    }
    if (slides.length === 0) throw badRequest('empty_selection', 'No published slide matches the selection; nothing to download');
    // A challenge's hidden truth leaves the selection without its annotations.
    const hidden = await this.hidden(who, slides.map((s) => s.id));
    return hidden.size === 0 ? slides : slides.map((s) => (hidden.has(s.id) ? { ...s, annotationPath: null, annotationSummary: null } : s));
  }

  private async hidden(who: AuditActor, ids: readonly number[]): Promise<Set<number>> {
    return this.options.hiddenAnnotations ? this.options.hiddenAnnotations(who, ids) : new Set();
  }

  /** The ids of the slides the catalog search shows for a filter, by name, at most `max` of them. */
  private async matching(filter: CatalogFilter, max: number, tooMany: (count: number) => Error): Promise<number[]> {
    const { ids, total } = await this.options.catalog.publishedIds(filter, max);
    if (ids === null) throw tooMany(total);
    return ids;
  }

  /** The instances of a slide published as a DICOM series folder, as bundle entries `slides/<name>/<file>`, hashed (cached). */
  private async seriesFiles(slide: DownloadableSlide, folder: string): Promise<SelectedFile[]> {
    const names = (await readdir(folder)).filter((n) => !n.startsWith('.')).sort();
    const out: SelectedFile[] = [];
    for (const name of names) {
      const file = path.join(folder, name);
      const stats = await stat(file);
      out.push({ slide, kind: 'slide', path: `slides/${slide.name}/${name}`, file, size: stats.size, sha256: await this.checksums.sha256(file, stats), mtime: stats.mtime });
    }
    return out;
  }

  /**
   * Each slide's files with sizes and checksums. Annotation files are stat'ed
   * and hashed (cached); slide files are stat'ed for a bundle, so that a
   * missing or changed file fails the request before its first byte, while a
   * manifest takes their size from the catalog.
   */
  private async gather(slides: DownloadableSlide[], { statSlides }: { statSlides: boolean }): Promise<SelectedSlide[]> {
    const limit = pLimit(8);
    return Promise.all(
      slides.map((slide) =>
        limit(async () => {
          const files: SelectedFile[] = [];
          const slideFile = this.resolve(slide.filePath, slide.id);
          if (statSlides) {
            const stats = await stat(slideFile).catch((error: unknown) => {
              throw this.fileProblem(slide, 'slide', error);
            });
            if (stats.isDirectory()) {
              // A DICOM series published by ingest: each instance under slides/<name>/.
              files.push(...(await this.seriesFiles(slide, slideFile)));
            } else {
              const sha256 = this.slideChecksum(slide, stats);
              files.push({ slide, kind: 'slide', path: bundlePath(slide, 'slide'), file: slideFile, size: stats.size, sha256, mtime: stats.mtime });
            }
          } else {
            files.push({ slide, kind: 'slide', path: bundlePath(slide, 'slide'), file: slideFile, size: slide.fileSize, sha256: normalizeSha256(slide.sha256), mtime: new Date(0) });
          }
          if (slide.annotationPath !== null) {
            const xml = this.resolve(slide.annotationPath, slide.id);
            const stats = await stat(xml).catch((error: unknown) => {
              throw this.fileProblem(slide, 'annotation', error);
            });
            const sha256 = await this.checksums.sha256(xml, stats);
            files.push({ slide, kind: 'annotation', path: bundlePath(slide, 'annotation'), file: xml, size: stats.size, sha256, mtime: stats.mtime });
          }
          return { slide, files };
        }),
      ),
    );
  }

  /** The catalog's checksum of a slide file, after checking that the file on disk is the size the catalog says. */
  private slideChecksum(slide: DownloadableSlide, stats: Stats): string | null {
    if (stats.size !== slide.fileSize) {
      this.options.log.error({ slideId: slide.id, catalogSize: slide.fileSize, fileSize: stats.size }, 'slide file does not match the catalog');
      throw new AppError(500, 'slide_file_mismatch', `The stored file of slide ${slide.id} does not match the catalog; the operator has been told`, { expose: true });
    }
    return normalizeSha256(slide.sha256);
  }

  private fileProblem(slide: DownloadableSlide, kind: FileKind, error: unknown): AppError {
    const code = (error as NodeJS.ErrnoException).code;
    this.options.log.error({ slideId: slide.id, kind, err: error }, `the ${kind} file of a published slide cannot be read`);
    return new AppError(500, code === 'ENOENT' ? 'file_missing' : 'file_unreadable', `The ${kind} file of slide ${slide.id} cannot be read; the operator has been told`, {
      expose: true,
      cause: error,
    });
  }

  /** A stored path as a file on disk: relative paths must stay inside the slide store. */
  private resolve(stored: string, slideId: number): string {
    if (path.isAbsolute(stored)) return stored;
    const full = path.resolve(this.slidesDir, stored);
    if (!full.startsWith(this.slidesDir + path.sep)) {
      throw new AppError(500, 'file_outside_store', `The file of slide ${slideId} is recorded outside the slide store`, { expose: true });
    }
    return full;
  }

  /** The nginx URI of a stored file, or null when this process sends it (offload off, or an absolute path nginx cannot map). */
  private offloadUri(stored: string): string | null {
    const prefix = this.options.nginxAccelRedirect;
    if (prefix === '' || path.isAbsolute(stored)) return null;
    return `${prefix}${stored.split(/[\\/]/).map(encodeURIComponent).join('/')}`;
  }

  /** Record an event; a failing audit log is reported, never the client's problem once the bytes have gone. */
  private async audit(event: AuditEvent): Promise<void> {
    try {
      await this.options.audit.record(event);
    } catch (error) {
      this.options.log.error({ err: error, event }, 'audit: could not record a download');
    }
  }
}

function once(settle: Settle): Settle {
  let done: Promise<void> | undefined;
  return (finished) => (done ??= settle(finished));
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function openForBundle(file: string): Readable {
  return createReadStream(file, { highWaterMark: READ_CHUNK });
}
