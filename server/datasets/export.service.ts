import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseAperioXml, toGeoJson } from '../annotations/index.js';
import { signTagManifest, writeBag, type PayloadItem, type SigningKey, type TagEntries, type WrittenBag } from '../bagit/index.js';
import {
  bagSlide,
  bagWithdrawal,
  licenseText,
  metadataCsv,
  METADATA_SCHEMA_VERSION,
  WITHDRAWN_TAG_FILE,
  type BagMetadata,
  type BagSlide,
  type WithdrawnNotice,
} from './bag-contents.js';
import { sha256File } from '../lib/hashing.js';
import { DatasetError, type DatasetsService, type WithheldSlide } from './datasets.service.js';
import type { Release, ReleasedSlide } from './release.js';

export interface ExportSettings {
  site: { name: string; url: string };
  key: SigningKey;
  /** Writes a published slide as a DICOM series into a folder (server/dicom/export), for `dicom` exports. */
  dicom?: DicomSeriesWriter;
}

export interface DicomSeriesWriter {
  exportSlide(slideId: number, outDir: string): Promise<{ files: string[] }>;
}

export interface ExportRequest {
  dataset: string;
  version: string;
  /** The folder the bag (or the bags of a split) is written into. */
  out: string;
  /** Only what changed since this version, and the withdrawals since. */
  since?: string;
  /** Bytes of slide and annotation files per bag; more makes a group of bags. */
  splitSize?: number;
  /** List the slide files in fetch.txt as this server's download URLs instead of copying them. */
  holey?: boolean;
  /** Also carry each slide as a DICOM series, in `data/dicom/<slide name>/`. */
  dicom?: boolean;
  onProgress?: (done: number, total: number) => void;
  now?: Date;
}

export interface ExportResult {
  bags: WrittenBag[];
  slides: number;
  withdrawals: number;
  /** Slides of the release left out because they were withdrawn after it (named in the bag's withdrawal notice). */
  withheld: string[];
}

/**
 * A release as a signed BagIt bag: `data/slides/`, `data/annotations/` (the
 * released XML and its GeoJSON), `data/metadata.csv`, `data/metadata.json`
 * and `data/LICENSE`. Slide checksums come from the release (recorded at
 * ingest), so exporting terabytes reads each byte once, to copy it.
 *
 * A slide withdrawn after the release (from the dataset, or from the
 * catalog: SlideRelease) is left out of every part of the bag — file,
 * annotation, metadata — and named in the tag file `slidebank-withdrawn.json`
 * instead, which `slidebank import` reads to withdraw it at the partner.
 */
export class ExportService {
  constructor(
    private readonly datasets: DatasetsService,
    private readonly settings: ExportSettings,
  ) {}

  async export(request: ExportRequest): Promise<ExportResult> {
    const release = await this.datasets.findRelease(request.dataset, request.version);
    const base = request.since === undefined ? undefined : await this.datasets.findRelease(request.dataset, request.since);
    if (base && base.createdAt > release.createdAt) throw new DatasetError(`--since ${base.version} is newer than ${release.version}`);
    if (base && base.id === release.id) throw new DatasetError('--since names the version being exported');

    if (request.dicom && request.holey) throw new DatasetError('--dicom cannot be combined with --holey: the DICOM series are made for the bag and have no download address');
    if (request.dicom && !this.settings.dicom) throw new DatasetError('DICOM export is not available here');

    const withdrawals = await this.datasets.withdrawals(request.dataset);
    const after = (date: Date) => !base || date > base.createdAt;
    const listedWithdrawals = withdrawals.filter((w) => w.createdAt <= release.createdAt && after(w.createdAt)).map(bagWithdrawal);
    // Slides withdrawn since the release are left out, and named in a tag file so that mirrors withdraw them too.
    const withheld = await this.datasets.withheld(release);
    const left = new Set(withheld.map((w) => w.slide.id));
    const served = release.slides.filter((s) => !left.has(s.id));

    const baseSlides = new Map(base?.slides.map((s) => [s.name, s]) ?? []);
    const slides = served.map((slide) => {
      const before = baseSlides.get(slide.name);
      return bagSlide(slide, {
        slide: !before || before.sha256 !== slide.sha256,
        annotation: slide.annotation !== null && (!before || before.annotation?.sha256 !== slide.annotation.sha256),
      });
    });
    const metadata: BagMetadata = {
      schemaVersion: METADATA_SCHEMA_VERSION,
      dataset: release.dataset,
      version: release.version,
      since: base?.version ?? null,
      releasedAt: release.createdAt.toISOString(),
      source: { site: this.settings.site.name, url: this.settings.site.url, publicKey: this.settings.key.publicKey },
      license: 'CC-BY-NC-4.0',
      slides,
      withdrawals: listedWithdrawals,
    };
    const common: PayloadItem[] = [
      { path: 'metadata.json', source: { content: `${JSON.stringify(metadata, null, 2)}\n` } },
      { path: 'metadata.csv', source: { content: metadataCsv(slides) } },
      { path: 'LICENSE', source: { content: licenseText(release, this.settings.site) } },
    ];

    const name = `${release.dataset}_${release.version}${base ? `_since_${base.version}` : ''}`;
    // DICOM series are written here first, then copied into the bag like the slides.
    const scratch = request.dicom ? path.join(request.out, `.${name}.dicom-scratch`) : undefined;
    try {
      const units: { items: PayloadItem[]; bytes: number }[] = [];
      const releaseDir = this.datasets.releaseDir({ id: release.datasetId }, release.version);
      for (const [index, slide] of slides.entries()) {
        const unit = await this.slideFiles(slide, served[index]!, releaseDir, request.holey ?? false);
        if (scratch && slide.included.slide) await this.dicomFiles(slide, served[index]!, scratch, unit);
        if (unit.items.length > 0) units.push(unit);
      }
      return await this.writeBags(request, release, base, name, common, units, withheld, listedWithdrawals.length, slides);
    } finally {
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
  }

  /** A slide's DICOM series (server/dicom/export), as payload files under `dicom/<slide name>/`. */
  private async dicomFiles(slide: BagSlide, released: ReleasedSlide, scratch: string, unit: { items: PayloadItem[]; bytes: number }): Promise<void> {
    const dir = path.join(scratch, slide.name);
    const { files } = await this.settings.dicom!.exportSlide(released.id, dir);
    for (const file of files) {
      const size = (await stat(file)).size;
      unit.items.push({ path: `dicom/${slide.name}/${path.basename(file)}`, source: { file, sha256: await sha256File(file), size } });
      unit.bytes += size;
    }
  }

  private async writeBags(
    request: ExportRequest,
    release: Release,
    base: Release | undefined,
    name: string,
    common: PayloadItem[],
    units: { items: PayloadItem[]; bytes: number }[],
    withheld: readonly WithheldSlide[],
    withdrawals: number,
    slides: BagSlide[],
  ): Promise<ExportResult> {
    const parts = split(units, request.splitSize);
    const tagFiles: [string, string][] = withheld.length === 0 ? [] : [[WITHDRAWN_TAG_FILE, withdrawnNotice(withheld)]];
    await mkdir(request.out, { recursive: true });
    const total = units.reduce((sum, u) => sum + u.items.reduce((s, i) => s + ('file' in i.source ? i.source.size : 0), 0), 0);
    let before = 0;
    const bags: WrittenBag[] = [];
    for (const [index, part] of parts.entries()) {
      const dir = path.join(request.out, parts.length > 1 ? `${name}_part${index + 1}of${parts.length}` : name);
      const items = [...common, ...part.flatMap((u) => u.items)];
      const offset = before;
      const bag = await writeBag(dir, items, {
        info: this.bagInfo(release, base, parts.length > 1 ? { index: index + 1, count: parts.length } : undefined),
        sign: { key: this.settings.key, signer: this.settings.site.name },
        tagFiles,
        ...(request.now ? { now: request.now } : {}),
        onProgress: (done) => request.onProgress?.(offset + done, total),
      });
      before += items.reduce((s, i) => s + ('file' in i.source ? i.source.size : 0), 0);
      bags.push(bag);
    }
    return { bags, slides: slides.filter((s) => s.included.slide).length, withdrawals, withheld: withheld.map((w) => w.slide.name) };
  }

  /**
   * A signature tag file for `tagManifest`, made as `export` makes its own,
   * and the public key to check it with: for a holey export served as a
   * complete bag, whose tag manifest no longer lists fetch.txt (bag-zip.ts).
   */
  sign(tagManifest: Buffer): { signature: string; publicKey: string } {
    return { signature: signTagManifest(tagManifest, this.settings.key, this.settings.site.name), publicKey: this.settings.key.publicKey };
  }

  private async slideFiles(slide: BagSlide, released: ReleasedSlide, releaseDir: string, holey: boolean): Promise<{ items: PayloadItem[]; bytes: number }> {
    const items: PayloadItem[] = [];
    let bytes = 0;
    if (slide.included.slide) {
      const member = await this.datasets.slideFile(released);
      items.push({
        path: slide.file,
        source: holey
          ? { url: `${this.settings.site.url.replace(/\/+$/, '')}/api/slides/${released.id}/files/slide`, sha256: slide.sha256, size: slide.size }
          : { file: member, sha256: slide.sha256, size: slide.size },
      });
      bytes += slide.size;
    }
    if (slide.included.annotation && slide.annotation && released.annotation) {
      const xmlFile = path.join(releaseDir, released.annotation.fileName);
      let geojson: string;
      try {
        geojson = `${JSON.stringify(toGeoJson(parseAperioXml(await readFile(xmlFile, 'utf8'))))}\n`;
      } catch (error) {
        throw new DatasetError(`the released annotation of ${slide.name} (${xmlFile}) cannot be read: ${(error as Error).message}`);
      }
      items.push({ path: slide.annotation.xml, source: { file: xmlFile, sha256: slide.annotation.sha256, size: slide.annotation.size } });
      items.push({ path: slide.annotation.geojson, source: { content: geojson } });
      bytes += slide.annotation.size + geojson.length;
    }
    return { items, bytes };
  }

  private bagInfo(release: Release, base: Release | undefined, part: { index: number; count: number } | undefined): TagEntries {
    const info: TagEntries = [
      ['Source-Organization', this.settings.site.name],
      ['Organization-Address', this.settings.site.url],
      ['External-Identifier', `${release.dataset}@${release.version}`],
      ['External-Description', `Slidebank dataset ${release.dataset}, version ${release.version}${base ? `, changes since ${base.version}` : ''}`],
      ['Slidebank-Metadata-Schema', String(METADATA_SCHEMA_VERSION)],
    ];
    if (base) info.push(['Slidebank-Since-Version', base.version]);
    if (part) info.push(['Bag-Group-Identifier', `${release.dataset}@${release.version}${base ? `-since-${base.version}` : ''}`], ['Bag-Count', `${part.index} of ${part.count}`]);
    return info;
  }
}

function withdrawnNotice(withheld: readonly WithheldSlide[]): string {
  const notice: WithdrawnNotice = {
    schemaVersion: METADATA_SCHEMA_VERSION,
    withdrawn: withheld.map((w) => ({ name: w.slide.name, sha256: w.slide.sha256, reason: w.reason, withdrawnAt: w.withdrawnAt?.toISOString() ?? null })),
  };
  return `${JSON.stringify(notice, null, 2)}\n`;
}

/** Slides (with their annotations) into bags of at most `size` bytes each, in release order; a slide larger than that has a bag of its own. */
function split<T extends { bytes: number }>(units: T[], size: number | undefined): T[][] {
  if (size === undefined || units.length === 0) return [units];
  const parts: T[][] = [[]];
  let filled = 0;
  for (const unit of units) {
    if (filled + unit.bytes > size && parts[parts.length - 1]!.length > 0) {
      parts.push([]);
      filled = 0;
    }
    parts[parts.length - 1]!.push(unit);
    filled += unit.bytes;
  }
  return parts;
}

/** `500G`, `1.5T`, `200M`, `4096`: binary units (K = 1024). */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(text.trim());
  if (!match) throw new DatasetError(`"${text}" is not a size such as 500G, 1.5T or 200M`);
  const bytes = Math.floor(Number(match[1]) * 1024 ** ' KMGT'.indexOf((match[2] || ' ').toUpperCase()));
  if (bytes < 1) throw new DatasetError(`--split-size ${text} is too small`);
  return bytes;
}
