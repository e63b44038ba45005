import { stat } from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import sharp from 'sharp';
import { AppError, notFound } from '../../errors.js';
import type { Logger } from '../../logging.js';
import { version } from '../../package-info.js';
import {
  describeSlide,
  instanceAttributes,
  levelInstance,
  openDicomSource,
  planLevel,
  readFrame,
  seriesUids,
  thumbnailFrame,
  thumbnailInstance,
  TransferSyntax,
  type Dataset,
  type DicomSource,
  type FramePlan,
  type InstanceDescription,
  type SeriesUids,
  type SlideDescription,
} from '../../wsi/dicom-writer/index.js';
import { decodeFrame } from '../../wsi/formats/dicom/decode.js';
import type { FrameCoding } from '../../wsi/formats/dicom/syntax.js';
import { Slide, WsiError } from '../../wsi/index.js';
import { uidKey } from '../export/index.js';
import { bulkValue, tagKey, tagOf, toDicomJson, type JsonAttribute, type JsonDataset } from './dicom-json.js';
import type { CatalogSeries, DicomwebRepository } from './dicomweb.repository.js';
import { withBulkUris } from './part10-json.js';
import { openPublishedSeries, readPublishedIdentity, type PublishedIdentity, type PublishedSeries } from './published-series.js';

export interface DicomwebSettings {
  /** The slide store (paths.slides): catalog file paths are relative to it. */
  slideStore: string;
  /** dicom.uidRoot, as the export uses it. */
  uidRoot: string;
  /** Slides kept open at once for metadata and frames. */
  openSeries?: number;
}

/** A QIDO-RS query: attribute matches (tag → value), paging, extra attributes. */
export interface QidoQuery {
  match: Map<number, string>;
  limit?: number;
  offset?: number;
  /** Keywords or tags, or `all`. */
  includefield: string[];
}

/** Frames of one instance, each as stored (after the export's JPEG surgery), and their transfer syntax. */
export interface FramesAnswer {
  transferSyntax: string;
  codec: FrameCoding;
  frames: Buffer[];
}

/** What names a slide's series. */
interface Names {
  slide: CatalogSeries;
  study: string;
  series: string;
  /** The instances: levels largest first (then, for an exported series, the thumbnail). */
  count: number;
  sop(number: number): string;
}

/**
 * A published slide as DICOMweb names it: a slide file is served as the
 * export would write it (UIDs from uidKey and seriesUids), a DICOM series
 * published by ingest as its own instances (their UIDs).
 */
type Named = (Names & { kind: 'export'; uids: SeriesUids }) | (Names & { kind: 'published'; identity: PublishedIdentity });

type Thumbnail = Promise<{ jpeg: Buffer; width: number; height: number }>;

/** An open slide: the export's description and frame plans of a slide file, or a published series' instances; the thumbnail once asked for. */
type OpenSeries =
  | { kind: 'export'; source: DicomSource; description: SlideDescription; plans: FramePlan[]; thumbnail?: Thumbnail }
  | { kind: 'published'; series: PublishedSeries; folder: string; slide?: Promise<Slide>; thumbnail?: Thumbnail };

interface Held {
  opening: Promise<OpenSeries>;
  users: number;
  evicted: boolean;
}

/** What explain() answers for a slide that cannot be served at all: a search across series passes over it. */
const UNSERVED = new Set(['slide_unsupported', 'slide_unreadable', 'slide_file_missing']);

const CATALOG_TTL_MS = 5000;
/** Slides named at once when the catalog is read (a published series' headers are read the first time it is seen). */
const NAMING_BATCH = 8;
/** A published series whose headers could not be read is tried again after this long. */
const UNNAMED_RETRY_MS = 60_000;
const MAX_FRAMES = 1000;
const RENDER_QUALITY = 90;

/** Study and series attributes as the export writes them (attributes.ts), and which QIDO returns by default (PS3.18 Table 6.7.1-2). */
const STUDY_TAGS = [0x0008_0005, 0x0008_0020, 0x0008_0030, 0x0008_0050, 0x0008_0090, 0x0008_0201, 0x0010_0010, 0x0010_0020, 0x0010_0030, 0x0010_0040, 0x0020_000d, 0x0020_0010];
const SERIES_TAGS = [0x0008_0060, 0x0020_000e, 0x0020_0011, 0x0008_0021, 0x0008_0031];
const INSTANCE_TAGS = [0x0008_0016, 0x0008_0018, 0x0008_0008, 0x0020_0013, 0x0028_0010, 0x0028_0011, 0x0028_0100, 0x0028_0008, 0x0028_0004, 0x0048_0006, 0x0048_0007, 0x0020_9311, 0x0040_0512];

/**
 * DICOMweb (QIDO-RS and WADO-RS) of the published catalog: each published
 * slide is one study of one series. A slide file's levels and thumbnail are
 * the instances, made on the fly by the DICOM export's own parts
 * (server/wsi/dicom-writer: the attributes, the frame index, the UIDs), so
 * that what is served is what `slidebank dicom export` writes; a slide that
 * ingest published as a DICOM series is served as those instances
 * (published-series.ts). Nothing is copied on disk. Withdrawn slides are
 * absent; the label is never an instance.
 */
export class DicomwebService {
  private catalog: { at: number; named: Promise<Named[]> } | undefined;
  private readonly uidCache = new LRUCache<string, SeriesUids>({ max: 100_000 });
  /** Each published slide's kind and, for a published series, its identity (read from its headers once: the slide never changes). */
  private readonly names = new LRUCache<string, Promise<Named | undefined>>({ max: 100_000 });
  private readonly open: LRUCache<string, Held>;

  constructor(
    private readonly slides: DicomwebRepository,
    private readonly settings: DicomwebSettings,
    private readonly log: Logger,
  ) {
    this.open = new LRUCache<string, Held>({
      max: settings.openSeries ?? 16,
      dispose: (held) => {
        held.evicted = true;
        if (held.users === 0) void this.closeHeld(held);
      },
    });
  }

  /**
   * The UIDs of a slide file's series: the export's (uidKey and seriesUids
   * under dicom.uidRoot). A slide published as a DICOM series is served under
   * its instances' own UIDs instead: servedUids gives those of any slide.
   */
  uidsOf(slide: Pick<CatalogSeries, 'id' | 'sha256' | 'fileSize'>): SeriesUids {
    const key = uidKey(slide);
    let uids = this.uidCache.get(key);
    if (!uids) this.uidCache.set(key, (uids = seriesUids(key, this.settings.uidRoot || undefined)));
    return uids;
  }

  /** The study and series under which a published slide is served (a published series' own UIDs, the export's for a slide file); undefined when it is not served. */
  async servedUids(slideId: number): Promise<{ study: string; series: string } | undefined> {
    const n = (await this.named()).find((x) => x.slide.id === slideId);
    return n && { study: n.study, series: n.series };
  }

  // QIDO-RS

  async studies(base: string, query: QidoQuery): Promise<JsonDataset[]> {
    const named = await this.named();
    const found = named.map((n) => this.studyAttributes(base, n)).filter((attributes) => matches(attributes, query.match));
    return page(found, query).map((attributes) => pick(attributes, [...STUDY_TAGS, 0x0008_0061, 0x0020_1206, 0x0020_1208, 0x0008_1190], query.includefield));
  }

  async series(base: string, query: QidoQuery, study?: string): Promise<JsonDataset[]> {
    const named = (await this.named()).filter((n) => study === undefined || n.study === study);
    if (study !== undefined && named.length === 0) throw notFound('study_not_found', `There is no study ${study}`);
    const found = named.map((n) => ({ ...this.studyAttributes(base, n), ...this.seriesAttributes(base, n) })).filter((attributes) => matches(attributes, query.match));
    const defaults = [0x0008_0005, 0x0008_0201, ...SERIES_TAGS, 0x0020_1209, 0x0008_1190, ...(study === undefined ? [0x0020_000d] : [])];
    return page(found, query).map((attributes) => pick(attributes, defaults, query.includefield));
  }

  async instances(base: string, query: QidoQuery, study?: string, series?: string): Promise<JsonDataset[]> {
    const named = (await this.named()).filter((n) => (study === undefined || n.study === study) && (series === undefined || n.series === series));
    if (study !== undefined && named.length === 0) throw notFound(series === undefined ? 'study_not_found' : 'series_not_found', `There is no ${series === undefined ? 'study' : 'series'} ${series ?? study}`);
    // Candidates named by UIDs alone, without opening a file; the rest of the match needs the instance's attributes.
    let candidates = named.flatMap((n) => Array.from({ length: n.count }, (_, i) => ({ n, number: i + 1 })));
    const uidMatch = new Map([...query.match].filter(([tag]) => tag === 0x0020_000d || tag === 0x0020_000e || tag === 0x0008_0018));
    const rest = new Map([...query.match].filter(([tag]) => !uidMatch.has(tag)));
    candidates = candidates.filter(({ n, number }) => matches({ '0020000D': uid(n.study), '0020000E': uid(n.series), '00080018': uid(n.sop(number)) }, uidMatch));
    if (rest.size === 0) candidates = page(candidates, query);
    const built: JsonDataset[] = [];
    for (const { n, number } of candidates) {
      const attributes = await this.withSeries(n, async (open) => {
        const instance = await this.instanceOf(base, open, n, number);
        if (!instance) return undefined;
        return { ...this.studyAttributes(base, n), ...this.seriesAttributes(base, n), ...instance.attributes, ...this.instanceExtras(base, n, number, instance.transferSyntax) };
      }).catch((error: unknown) => {
        // One slide that cannot be served (logged by explain) does not take the others' answers with it.
        if (series === undefined && error instanceof AppError && UNSERVED.has(error.code)) return undefined;
        throw error;
      });
      if (attributes && matches(attributes, rest)) built.push(attributes);
    }
    const found = rest.size === 0 ? built : page(built, query);
    const defaults = [0x0008_0005, 0x0008_0201, ...INSTANCE_TAGS, 0x0008_0056, 0x0008_3002, 0x0008_1190, ...(series === undefined ? [0x0020_000e] : []), ...(study === undefined ? [0x0020_000d] : [])];
    return found.map((attributes) => pick(attributes, defaults, query.includefield));
  }

  // WADO-RS

  /** Every instance's metadata (series) or one's (instance) as DICOM JSON, binary values as BulkDataURIs. */
  async metadata(base: string, study: string, series: string, sop?: string): Promise<JsonDataset[]> {
    const n = await this.resolve(study, series);
    return this.withSeries(n, async (open) => {
      const numbers = sop === undefined ? Array.from({ length: instanceCount(open) }, (_, i) => i + 1) : [this.instanceNumber(n, open, sop)];
      const out: JsonDataset[] = [];
      for (const number of numbers) {
        const { attributes, transferSyntax } = (await this.instanceOf(base, open, n, number))!;
        out.push(sortKeys({ ...attributes, '00083002': { vr: 'UI', Value: [transferSyntax] } }));
      }
      return out;
    });
  }

  /** A binary value of an instance's attributes (the ICC profile), named as its BulkDataURI names it. */
  async bulkData(study: string, series: string, sop: string, at: string): Promise<Buffer> {
    const n = await this.resolve(study, series);
    return this.withSeries(n, async (open) => {
      const number = this.instanceNumber(n, open, sop);
      let value: Buffer | undefined;
      if (open.kind === 'published') {
        const instance = open.series.instances[number - 1]!;
        const range = instance.bulk.get(at);
        if (range) value = await instance.file.read(range.offset, range.length, `the bulk data at ${at}`);
      } else value = bulkValue((await this.instanceDataset(open, n.kind === 'export' ? n.uids : this.uidsOf(n.slide), number))!.dataset, at);
      if (!value) throw notFound('bulkdata_not_found', `The instance has no binary value at ${at}`);
      return value;
    });
  }

  /** Frames (1-based) of an instance, as the exported file or the published instance holds them. */
  async frames(study: string, series: string, sop: string, numbers: number[]): Promise<FramesAnswer> {
    if (numbers.length > MAX_FRAMES) throw new AppError(400, 'too_many_frames', `At most ${MAX_FRAMES} frames may be asked for at once`);
    const n = await this.resolve(study, series);
    return this.withSeries(n, async (open) => {
      const number = this.instanceNumber(n, open, sop);
      if (open.kind === 'published') {
        const instance = open.series.instances[number - 1]!;
        checkFrames(numbers, instance.frames.count);
        const frames = await Promise.all(numbers.map((f) => instance.frames.read(f - 1)));
        return { transferSyntax: instance.transferSyntax, codec: instance.format.coding, frames };
      }
      const plan = open.plans[number - 1];
      checkFrames(numbers, plan ? plan.count : 1);
      if (!plan) return { transferSyntax: TransferSyntax.JpegBaseline, codec: 'jpeg', frames: [(await this.thumbnail(open)).jpeg] };
      const input = open.source.levels[number - 1]!;
      const frames = await Promise.all(numbers.map((f) => readFrame(input, plan, f - 1)));
      return { transferSyntax: plan.transferSyntax, codec: plan.codec, frames };
    });
  }

  /** A frame decoded and encoded as JPEG (the tile's size; what lies past the level's edge white, or as stored). */
  async renderedFrame(study: string, series: string, sop: string, frame: number): Promise<Buffer> {
    const n = await this.resolve(study, series);
    return this.withSeries(n, async (open) => {
      const number = this.instanceNumber(n, open, sop);
      if (open.kind === 'published') {
        const instance = open.series.instances[number - 1]!;
        checkFrames([frame], instance.frames.count);
        const image = await decodeFrame(await instance.frames.read(frame - 1), instance.format);
        return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality: RENDER_QUALITY }).toBuffer();
      }
      const plan = open.plans[number - 1];
      if (!plan) {
        checkFrames([frame], 1);
        return (await this.thumbnail(open)).jpeg;
      }
      checkFrames([frame], plan.count);
      const col = (frame - 1) % plan.tilesAcross;
      const row = Math.floor((frame - 1) / plan.tilesAcross);
      const image = await open.source.slide.readRegion(number - 1, col * plan.tileWidth, row * plan.tileHeight, plan.tileWidth, plan.tileHeight);
      return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } }).jpeg({ quality: RENDER_QUALITY }).toBuffer();
    });
  }

  /** The series' thumbnail: the engine's thumbnail of the pyramid as JPEG, never the label. */
  async thumbnailOf(study: string, series?: string): Promise<Buffer> {
    const n = series === undefined ? await this.resolveStudy(study) : await this.resolve(study, series);
    return this.withSeries(n, async (open) => (await this.thumbnail(open)).jpeg);
  }

  /** A withdrawn (or republished) slide: the catalog is read afresh at the next request. */
  forgetSlide(_slideId: number): void {
    this.catalog = undefined;
  }

  async close(): Promise<void> {
    const held = [...this.open.values()];
    this.open.clear();
    await Promise.all(held.map((h) => this.closeHeld(h)));
  }

  // The catalog and the open slides

  private async named(): Promise<Named[]> {
    if (!this.catalog || Date.now() - this.catalog.at > CATALOG_TTL_MS) {
      const named = this.slides.published().then(async (slides) => {
        const out: (Named | undefined)[] = [];
        // A few slides at a time: a published series' headers are read once, when it is first seen.
        for (let i = 0; i < slides.length; i += NAMING_BATCH) out.push(...(await Promise.all(slides.slice(i, i + NAMING_BATCH).map((slide) => this.nameOf(slide)))));
        return out.filter((n): n is Named => n !== undefined);
      });
      this.catalog = { at: Date.now(), named };
      named.catch(() => (this.catalog = undefined));
    }
    return this.catalog.named;
  }

  /** A slide's names: the export's UIDs for a slide file; a published series' own, from its headers (undefined, and logged, where they cannot be read). */
  private nameOf(slide: CatalogSeries): Promise<Named | undefined> {
    const key = `${slide.id}:${slide.sha256 ?? slide.fileSize}:${slide.filePath}`;
    let named = this.names.get(key);
    if (!named) {
      named = this.readName(slide);
      this.names.set(key, named);
      // A series that could not be read is tried again later, not at every search.
      void named.then((n) => {
        if (!n && this.names.peek(key) === named) this.names.set(key, named!, { ttl: UNNAMED_RETRY_MS });
      });
    }
    return named;
  }

  private async readName(slide: CatalogSeries): Promise<Named | undefined> {
    const file = path.resolve(this.settings.slideStore, slide.filePath);
    let folder = false;
    try {
      folder = (await stat(file)).isDirectory();
    } catch {
      // A missing file is a slide file: its own URLs say it is missing.
    }
    if (!folder) {
      const uids = this.uidsOf(slide);
      return { kind: 'export', slide, uids, study: uids.study, series: uids.series, count: slide.levelCount + 1, sop: (number) => uids.instance(number) };
    }
    try {
      const identity = await readPublishedIdentity(file);
      return { kind: 'published', slide, identity, study: identity.study, series: identity.series, count: identity.instances.length, sop: (number) => identity.instances[number - 1] ?? '' };
    } catch (error) {
      this.log.error({ slide: slide.id, err: error }, 'dicomweb: published series not served (its headers cannot be read)');
      return undefined;
    }
  }

  private async resolveStudy(study: string): Promise<Named> {
    const n = (await this.named()).find((x) => x.study === study);
    if (!n) throw notFound('study_not_found', `There is no study ${study}`);
    return n;
  }

  private async resolve(study: string, series: string): Promise<Named> {
    const n = await this.resolveStudy(study);
    if (n.series !== series) throw notFound('series_not_found', `Study ${study} has no series ${series}`);
    return n;
  }

  private instanceNumber(n: Named, open: OpenSeries, sop: string): number {
    for (let number = 1; number <= instanceCount(open); number++) if (n.sop(number) === sop) return number;
    throw notFound('instance_not_found', `Series ${n.series} has no instance ${sop}`);
  }

  private async withSeries<T>(n: Named, use: (open: OpenSeries) => Promise<T>): Promise<T> {
    const { slide } = n;
    const key = `${slide.id}:${slide.sha256 ?? slide.fileSize}`;
    let held = this.open.get(key);
    if (!held) {
      held = { opening: this.openSeries(n), users: 0, evicted: false };
      this.open.set(key, held);
      const opened = held;
      held.opening.catch(() => {
        if (this.open.peek(key) === opened) this.open.delete(key);
      });
    }
    held.users++;
    try {
      return await use(await held.opening);
    } catch (error) {
      throw this.explain(error, slide);
    } finally {
      held.users--;
      if (held.evicted && held.users === 0) void this.closeHeld(held);
    }
  }

  private async openSeries(n: Named): Promise<OpenSeries> {
    const file = path.resolve(this.settings.slideStore, n.slide.filePath);
    if (n.kind === 'published') return { kind: 'published', series: await openPublishedSeries(file), folder: file };
    const source = await openDicomSource(file);
    try {
      const description = await describeSlide(source, { name: n.slide.name, published: n.slide.publishedAt, softwareVersion: version });
      const plans = await Promise.all(source.levels.map((level) => planLevel(level)));
      return { kind: 'export', source, description, plans };
    } catch (error) {
      await source.close();
      throw error;
    }
  }

  private async closeHeld(held: Held): Promise<void> {
    try {
      const open = await held.opening;
      if (open.kind === 'export') await open.source.close();
      else {
        await open.series.close();
        await (await open.slide?.catch(() => undefined))?.close();
      }
    } catch {
      // A slide that failed to open has nothing to close.
    }
  }

  private thumbnail(open: OpenSeries): Thumbnail {
    if (open.kind === 'export') return (open.thumbnail ??= thumbnailFrame(open.source.slide));
    return (open.thumbnail ??= (async () => thumbnailFrame(await (open.slide ??= Slide.open(open.folder))))());
  }

  /** Instance `number`'s attributes as DICOM JSON with BulkDataURIs, and its frames' transfer syntax. */
  private async instanceOf(base: string, open: OpenSeries, n: Named, number: number): Promise<{ attributes: JsonDataset; transferSyntax: string } | undefined> {
    const bulk = (sop: string) => (at: string) => `${base}/studies/${n.study}/series/${n.series}/instances/${sop}/bulkdata/${at}`;
    if (open.kind === 'published') {
      const instance = open.series.instances[number - 1];
      if (!instance) return undefined;
      return { attributes: withBulkUris(instance.attributes, bulk(instance.sop)), transferSyntax: instance.transferSyntax };
    }
    const made = await this.instanceDataset(open, n.kind === 'export' ? n.uids : this.uidsOf(n.slide), number);
    if (!made) return undefined;
    const sop = made.dataset.find((e) => e.tag === 0x0008_0018)!.value[0] as string;
    return { attributes: toDicomJson(made.dataset, bulk(sop)), transferSyntax: made.transferSyntax };
  }

  /** Instance `number`'s attributes of a slide file (levels from 1, then the thumbnail), as instanceAttributes makes them for the file. */
  private async instanceDataset(open: Extract<OpenSeries, { kind: 'export' }>, uids: SeriesUids, number: number): Promise<{ dataset: Dataset; transferSyntax: string } | undefined> {
    let instance: InstanceDescription;
    let transferSyntax: string;
    const plan = open.plans[number - 1];
    if (plan) {
      instance = levelInstance(plan, number - 1);
      transferSyntax = plan.transferSyntax;
    } else if (number === open.plans.length + 1) {
      const thumbnail = await this.thumbnail(open);
      instance = thumbnailInstance(open.plans.length, thumbnail.width, thumbnail.height, thumbnail.jpeg.length);
      transferSyntax = TransferSyntax.JpegBaseline;
    } else return undefined;
    return { dataset: instanceAttributes(open.description, instance, uids), transferSyntax };
  }

  private instanceExtras(base: string, n: Named, number: number, transferSyntax: string): JsonDataset {
    return {
      '00080056': { vr: 'CS', Value: ['ONLINE'] },
      '00083002': { vr: 'UI', Value: [transferSyntax] },
      '00081190': { vr: 'UR', Value: [`${base}/studies/${n.study}/series/${n.series}/instances/${n.sop(number)}`] },
    };
  }

  /**
   * The study and series attributes, without opening the slide: a published
   * series' as its first instance holds them; for a slide file, the export's
   * attributes of a stand-in instance, of which only the study and series
   * attributes are kept (they depend on the slide's name, date and UIDs only).
   */
  private commonAttributes(n: Named): JsonDataset {
    const wanted = new Set([...STUDY_TAGS, ...SERIES_TAGS, 0x0012_0062, 0x0008_0070]);
    if (n.kind === 'published') return Object.fromEntries(Object.entries(n.identity.first).filter(([key]) => wanted.has(parseInt(key, 16))));
    const description: SlideDescription = { name: n.slide.name, width: 1, height: 1, mpp: undefined, objectivePower: undefined, iccProfile: Buffer.alloc(0), iccIsSrgb: true, published: n.slide.publishedAt, softwareVersion: version };
    const instance: InstanceDescription = { kind: 'volume', instanceNumber: 1, original: true, width: 1, height: 1, tileWidth: 1, tileHeight: 1, frames: 1, photometric: 'RGB', lossy: false, lossyMethod: 'ISO_10918_1', compressionRatio: 1 };
    return toDicomJson(instanceAttributes(description, instance, n.uids).filter((e) => wanted.has(e.tag)), () => '');
  }

  private studyAttributes(base: string, n: Named): JsonDataset {
    const common = this.commonAttributes(n);
    const study = Object.fromEntries(Object.entries(common).filter(([key]) => STUDY_TAGS.includes(parseInt(key, 16)) || key === '00120062'));
    return {
      ...study,
      '00080061': { vr: 'CS', Value: ['SM'] },
      '00201206': { vr: 'IS', Value: [1] },
      '00201208': { vr: 'IS', Value: [n.count] },
      '00081190': { vr: 'UR', Value: [`${base}/studies/${n.study}`] },
    };
  }

  private seriesAttributes(base: string, n: Named): JsonDataset {
    const common = this.commonAttributes(n);
    const series = Object.fromEntries(Object.entries(common).filter(([key]) => SERIES_TAGS.includes(parseInt(key, 16)) || key === '00080070'));
    return {
      ...series,
      '00201209': { vr: 'IS', Value: [n.count] },
      '00081190': { vr: 'UR', Value: [`${base}/studies/${n.study}/series/${n.series}`] },
    };
  }

  /** WsiErrors become answers that name the slide but never a server path; the details go to the log. */
  private explain(error: unknown, slide: CatalogSeries): unknown {
    if (!(error instanceof WsiError)) return error;
    this.log.error({ slide: slide.id, err: error }, 'dicomweb: slide not served');
    if (error.code === 'out_of_range') return new AppError(404, 'frame_not_found', error.message);
    if (error.code === 'not_found') return new AppError(500, 'slide_file_missing', `The file of slide ${slide.id} is missing on the server`, { expose: true });
    if (error.code === 'unsupported_compression' || error.code === 'unsupported_format') {
      // The engine's messages name the file: the answer names the slide instead.
      const file = path.resolve(this.settings.slideStore, slide.filePath);
      const reason = error.message.split(file).join(slide.name).split(this.settings.slideStore).join('the slide store');
      return new AppError(501, 'slide_unsupported', `Slide ${slide.id} cannot be served as DICOM: ${reason}`, { expose: true });
    }
    return new AppError(500, 'slide_unreadable', `Slide ${slide.id} is damaged and cannot be served`, { expose: true });
  }
}

/** The instances of an open slide: a slide file's levels and thumbnail, a published series' instances. */
const instanceCount = (open: OpenSeries) => (open.kind === 'export' ? open.plans.length + 1 : open.series.instances.length);

function checkFrames(numbers: number[], count: number): void {
  const outside = numbers.find((f) => f < 1 || f > count);
  if (outside !== undefined) throw notFound('frame_not_found', count === 1 ? `The instance has frame 1 only, not ${outside}` : `The instance has frames 1 to ${count}, not ${outside}`);
}

const uid = (value: string): JsonAttribute => ({ vr: 'UI', Value: [value] });

/** The attributes a query asked for: the level's defaults, plus includefield (or every attribute for `all`). */
function pick(attributes: JsonDataset, defaults: number[], includefield: string[]): JsonDataset {
  if (includefield.includes('all')) return sortKeys(attributes);
  const keys = new Set(defaults.map(tagKey));
  for (const field of includefield) {
    const tag = tagOf(field);
    if (tag !== undefined) keys.add(tagKey(tag));
  }
  return sortKeys(Object.fromEntries(Object.entries(attributes).filter(([key]) => keys.has(key))));
}

const sortKeys = (attributes: JsonDataset): JsonDataset => Object.fromEntries(Object.entries(attributes).sort(([a], [b]) => a.localeCompare(b)));

function page<T>(items: T[], { offset = 0, limit }: QidoQuery): T[] {
  return items.slice(offset, limit === undefined ? undefined : offset + limit);
}

/**
 * QIDO-RS matching (PS3.4 C.2.2.2): single value, UID lists (comma or
 * backslash separated), `*` and `?` wildcards; an empty value matches
 * everything. An attribute the result lacks matches only an empty value.
 */
export function matches(attributes: JsonDataset, match: Map<number, string>): boolean {
  for (const [tag, wanted] of match) {
    if (wanted === '' || wanted === '*') continue;
    const values = (attributes[tagKey(tag)]?.Value ?? []).map((v) => (typeof v === 'object' && v !== null ? String((v as { Alphabetic?: string }).Alphabetic ?? '') : String(v)));
    const vr = attributes[tagKey(tag)]?.vr;
    const alternatives = vr === 'UI' ? wanted.split(/[,\\]/) : [wanted];
    const patterns = alternatives.map((a) => new RegExp(`^${a.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, vr === 'PN' ? 'i' : ''));
    if (!values.some((v) => patterns.some((p) => p.test(v)))) return false;
  }
  return true;
}
