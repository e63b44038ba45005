import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AuditActor, AuditLog } from '../audit/audit-log.js';
import { streamZip, type BundleDelivery } from '../downloads/index.js';
import { limitKey, type DownloadLimits, type DownloadTicket } from '../downloads/limits.js';
import { AppError } from '../errors.js';
import { bagSlide } from './bag-contents.js';
import { serializedBagEntries, type StoredPayload } from './bag-zip.js';
import { DatasetError, type DatasetsService } from './datasets.service.js';
import type { ExportResult, ExportService } from './export.service.js';
import type { DatasetList, DatasetVersions, HoleyBag } from './views.js';

/** Which release a bag is of: `version` (default: the newest), and for an incremental bag the older release `since`. */
export interface BagRequest {
  version?: string;
  since?: string;
}

/** The scratch folders bags are made in (in `paths.cache`), and the age past which one is a leftover of a server stopped mid-answer. */
const SCRATCH_FOLDER = /^(holey|bagzip)-/;
const SCRATCH_MAX_AGE_MS = 2 * 24 * 60 * 60 * 1000;

/**
 * What partner sites and the portal ask of this site (L3 members and
 * admins): the datasets and their releases, and a release as a bag — holey
 * in JSON for `slidebank mirror`, whose slide files the partner then
 * downloads with `slidebank fetch`'s resuming client, or serialized as a ZIP
 * for the portal's download buttons.
 */
export class ExchangeService {
  private swept = false;

  constructor(
    private readonly datasets: DatasetsService,
    private readonly exporter: () => ExportService,
    private readonly audit: AuditLog,
    /** The per-user download limits every download path shares: a bag counts like any other download. */
    private readonly limits: Pick<DownloadLimits, 'admit'>,
    private readonly workDir: string,
  ) {}

  async versions(name: string): Promise<DatasetVersions> {
    const found = (await this.datasets.list()).find((d) => d.name === name);
    if (!found) throw new AppError(404, 'dataset_not_found', `There is no dataset named ${name}`);
    return { name, versions: found.versions };
  }

  async catalogue(): Promise<DatasetList> {
    return { items: await this.datasets.overview() };
  }

  async holeyBag(name: string, request: BagRequest, actor: AuditActor): Promise<HoleyBag> {
    const { version, since } = await this.bagRelease(name, request);
    const out = await this.scratchFolder('holey-');
    try {
      const exported = await this.export(name, version, since, out);
      const bag = exported.bags[0]!.dir;
      const files: HoleyBag['files'] = [];
      let bytes = 0;
      for (const entry of (await readdir(bag, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())) {
        const full = path.join(entry.parentPath, entry.name);
        const content = await readFile(full);
        bytes += content.length;
        files.push({ path: path.relative(bag, full).split(path.sep).join('/'), content: content.toString('base64') });
      }
      // Handed to the HTTP layer whole: counted against the limits at once.
      this.limits.admit(limitKey({ userId: actor.actorId, ip: actor.ip ?? null }), bytes).settle(bytes);
      await this.audit.record({
        action: 'dataset.exported',
        actorId: actor.actorId,
        ip: actor.ip ?? null,
        subjectType: 'dataset',
        subjectId: name,
        details: { version, since: since ?? null, holey: true, bytes, ...withheldDetails(exported) },
      });
      return { dataset: name, version, since: since ?? null, name: path.basename(bag), files: files.sort((a, b) => a.path.localeCompare(b.path)) };
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }

  /**
   * `GET /api/datasets/{name}/bag.zip`: the bag the CLI's export writes, as one
   * ZIP (`holey`: without the slide files, which its fetch.txt points at). The export is always holey (only the small files are written, into
   * a scratch folder); for the complete bag the slide files are then read
   * straight from the slide store into the archive (see bag-zip.ts), so a
   * terabyte release costs no copy and no temporary space. Audited when the
   * response ends, with the bytes sent and whether it completed.
   */
  async bagZip(name: string, request: BagRequest & { holey: boolean }, actor: AuditActor): Promise<BundleDelivery> {
    const { holey } = request;
    const { version, since } = await this.bagRelease(name, request);
    const out = await this.scratchFolder('bagzip-');
    let entries;
    let bag: string;
    let exported: ExportResult;
    let ticket: DownloadTicket;
    try {
      exported = await this.export(name, version, since, out);
      bag = exported.bags[0]!.dir;
      entries = await serializedBagEntries(bag, holey ? undefined : { stored: await this.storedSlides(name, version), sign: (bytes) => this.exporter().sign(bytes) });
      const payloadBytes = holey ? await folderBytes(bag) : exported.bags[0]!.payloadBytes;
      ticket = this.limits.admit(limitKey({ userId: actor.actorId, ip: actor.ip ?? null }), payloadBytes);
    } catch (error) {
      await rm(out, { recursive: true, force: true });
      if (error instanceof DatasetError) throw new AppError(409, 'export_refused', error.message);
      throw error;
    }
    const zip = streamZip(entries);
    let settled = false;
    return {
      fileName: `${path.basename(bag)}${holey ? '_holey' : ''}.zip`,
      body: zip.stream,
      settle: async (finished) => {
        if (settled) return;
        settled = true;
        if (!finished) zip.abort();
        const outcome = await zip.done;
        ticket.settle(outcome.bytes);
        await rm(out, { recursive: true, force: true });
        await this.audit.record({
          action: 'dataset.exported',
          actorId: actor.actorId,
          ip: actor.ip ?? null,
          subjectType: 'dataset',
          subjectId: name,
          details: {
            version,
            since: since ?? null,
            holey,
            format: 'zip',
            entries: outcome.entries,
            totalEntries: entries.length,
            bytes: outcome.bytes,
            complete: finished && outcome.complete,
            ...withheldDetails(exported),
            ...(outcome.error ? { error: outcome.error.message } : {}),
          },
        });
      },
    };
  }

  /** The version (default: the newest) and base version a bag request names, each a release of the dataset. */
  private async bagRelease(name: string, request: BagRequest): Promise<{ version: string; since: string | undefined }> {
    const { versions } = await this.versions(name);
    const version = request.version ?? versions.at(-1);
    if (version === undefined) throw new AppError(404, 'release_not_found', `${name} has no release yet`);
    const { since } = request;
    for (const v of [version, since]) {
      if (v !== undefined && !versions.includes(v)) throw new AppError(404, 'release_not_found', `${name} has no release ${v}${versions.length ? ` (it has ${versions.join(', ')})` : ''}`);
    }
    if (since !== undefined && versions.indexOf(since) >= versions.indexOf(version)) {
      throw new AppError(400, 'invalid_query', `since must name a release older than ${version}`);
    }
    return { version, since };
  }

  private async scratchFolder(prefix: string): Promise<string> {
    await mkdir(this.workDir, { recursive: true });
    if (!this.swept) {
      this.swept = true;
      await this.sweepScratchFolders();
    }
    return mkdtemp(path.join(this.workDir, prefix));
  }

  /**
   * Scratch folders are removed when their answer ends, but not when the
   * server is stopped mid-answer: the first bag a process makes first clears
   * those older than two days (no answer runs that long; a younger one may
   * belong to another app node sharing the cache).
   */
  private async sweepScratchFolders(): Promise<void> {
    const before = Date.now() - SCRATCH_MAX_AGE_MS;
    for (const entry of await readdir(this.workDir, { withFileTypes: true })) {
      if (!entry.isDirectory() || !SCRATCH_FOLDER.test(entry.name)) continue;
      const folder = path.join(this.workDir, entry.name);
      const { mtimeMs } = await stat(folder).catch(() => ({ mtimeMs: Infinity }));
      if (mtimeMs < before) await rm(folder, { recursive: true, force: true });
    }
  }

  private async export(name: string, version: string, since: string | undefined, out: string): Promise<ExportResult> {
    try {
      return await this.exporter().export({ dataset: name, version, out, holey: true, ...(since ? { since } : {}) });
    } catch (error) {
      if (error instanceof DatasetError) throw new AppError(409, 'export_refused', error.message);
      throw error;
    }
  }

  /** The slide files of a release by bag path, each checked against the catalog when asked for. */
  private async storedSlides(name: string, version: string): Promise<(bagPath: string) => Promise<StoredPayload | undefined>> {
    const release = await this.datasets.findRelease(name, version);
    const byPath = new Map(release.slides.map((s) => [`data/${bagSlide(s, { slide: true, annotation: false }).file}`, s]));
    return async (bagPath) => {
      const released = byPath.get(bagPath);
      return released && { file: await this.datasets.slideFile(released), size: released.size, sha256: released.sha256 };
    };
  }
}

/** What the audit records of slides a bag left out (withdrawn since the release). */
function withheldDetails(exported: ExportResult): { withheld?: string[] } {
  return exported.withheld.length > 0 ? { withheld: exported.withheld } : {};
}

/** Bytes of the files under a folder (a holey bag's small files). */
async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) bytes += (await stat(path.join(entry.parentPath, entry.name))).size;
  }
  return bytes;
}
