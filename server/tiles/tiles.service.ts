import { createHash } from 'node:crypto';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import pLimit, { type LimitFunction } from 'p-limit';
import sharp from 'sharp';
import type { SlideRecord, SlidesRepository } from '../catalog/slides.repository.js';
import type { Config } from '../config/index.js';
import { AppError } from '../errors.js';
import type { Logger } from '../logging.js';
import {
  DeepZoom,
  encode,
  largestRender,
  MAX_RENDER_PIXELS,
  OPENSLIDE_GRID,
  pageCacheReadUnavailable,
  planLevel0Region,
  renderablePlan,
  renderLevel0Region,
  renderThreads,
  scaledJpegStatus,
  SlidePool,
  WsiError,
  type AssociatedName,
  type DeepZoomGrid,
  type ScaledJpegStatus,
  type Slide,
  type TileFormat,
  type TileMaking,
} from '../wsi/index.js';
import { describeIiifRequest, iiifInfo, resolveIiifRequest, type IiifImageRequest, type IiifRequest } from './iiif.js';
import type { IiifInfo } from './views.js';

/** The tile engine's fast paths in this process (`GET /healthz/details`, `tiles`). */
export interface TileEnginePaths {
  /** Blocks of stored JPEG tiles decoded at 1/2, 1/4, 1/8 by libjpeg-turbo (native/scaled-jpeg), and through which library. */
  scaledJpeg: ScaledJpegStatus;
  /** Stored tiles read from the page cache on the calling thread (native/page-cache). */
  pageCacheReads: { active: boolean; reason?: string };
}

/** A tile asked for: its ETag, and the tile when it is to be sent. */
export interface PendingTile {
  etag: string;
  response(): Promise<TileResponse>;
}

/** How the request for a tile was admitted: through the session or token (checked against the database), or by a tile capability. */
export type AdmittedBy = 'session' | 'capability';

export interface TileResponse {
  body: Buffer;
  contentType: string;
  etag: string;
  /** Deep Zoom tiles: how the tile was made (the X-Tile-Source header). */
  made?: TileMaking;
}

const CONTENT_TYPES: Record<TileFormat, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp' };
const THUMBNAIL_MAX = 1024;
const IIIF_TILE = 512;
const RECORD_TTL_MS = 5000;

/**
 * Tiles for the viewer: finds a slide's file through the catalog, keeps it
 * open in the pool, renders Deep Zoom tiles and associated images, and keeps
 * encoded results in an LRU by bytes. A published slide file never changes, so
 * every answer has a strong ETag derived from the file's identity.
 */
export class TilesService {
  private readonly encoded: LRUCache<string, TileResponse>;
  /** Deep Zoom tiles answered from the encoded-tile cache, and rendered or passed through; read by the metrics at scrape time. */
  readonly cacheStats = { hits: 0, misses: 0 };
  /** IIIF images refused for needing more than tiles.maxRenderSourcePixels, and renders stopped because their client had gone. */
  readonly iiifStats = { refused: 0, abandoned: 0 };
  /**
   * Catalog rows and when they were read: a burst of tile requests would
   * otherwise ask the database the same question hundreds of times a second.
   * A withdrawal here drops the row at once (forgetSlide). One made on
   * another node stops tiles asked for with the session within
   * RECORD_TTL_MS, and tiles asked for with a tile capability within the
   * capability's lifetime (tiles.capabilityMinutes), the bound on revocation
   * those already accept: so they read no row while it lasts.
   */
  private readonly records = new LRUCache<number, { record: SlideRecord; readAt: number }>({ max: 10_000 });
  private readonly capabilityRecordMs: number;
  private readonly deepZooms = new WeakMap<Slide, DeepZoom>();
  private readonly gridKeys = new WeakMap<SlideRecord, string>();
  private readonly pool: SlidePool;
  private readonly settings: Config['tiles'];
  /**
   * IIIF images run at most half the render slots at once (at least one):
   * each may decode up to tiles.maxRenderSourcePixels, and the viewer's
   * Deep Zoom tiles keep the other half however many arrive.
   */
  private readonly iiifLimit: LimitFunction;

  constructor(
    private readonly slides: SlidesRepository,
    private readonly slideStore: string,
    settings: Config['tiles'],
    private readonly log: Logger,
  ) {
    this.settings = settings;
    this.capabilityRecordMs = settings.capabilityMinutes * 60_000;
    const { scaledJpeg, pageCacheReads } = this.enginePaths();
    if (scaledJpeg.active) log.info({ library: scaledJpeg.library, source: scaledJpeg.source }, `tiles: scaled JPEG decoding through libjpeg-turbo${scaledJpeg.library ? ` (${scaledJpeg.library}, ${scaledJpeg.source})` : ''}`);
    else if (settings.scaledDecode) log.warn({ reason: scaledJpeg.reason }, 'tiles: scaled JPEG decoding is not available; tiles between stored levels are decoded in full and resized (slower)');
    if (!pageCacheReads.active) log.warn({ reason: pageCacheReads.reason }, 'tiles: page-cache reads are not available; every stored tile is read through the thread pool (slower)');
    const mib = 1024 * 1024;
    this.pool = new SlidePool({
      maxOpen: settings.openSlides,
      decodedCacheBytes: settings.decodedCacheMegabytes * mib,
      renderConcurrency: settings.renderConcurrency,
      maxRenderSourcePixels: settings.maxRenderSourcePixels,
    });
    this.iiifLimit = pLimit(Math.max(1, Math.floor((settings.renderConcurrency || renderThreads()) / 2)));
    this.encoded = new LRUCache<string, TileResponse>({
      maxSize: Math.max(1, settings.encodedCacheMegabytes * mib),
      sizeCalculation: (entry) => Math.max(1, entry.body.length),
    });
  }

  /** Which of the engine's fast paths are in use, and why not where one is not: for the start-up log and the health details. */
  enginePaths(): TileEnginePaths {
    const uncached = pageCacheReadUnavailable();
    return { scaledJpeg: scaledJpegStatus(this.settings.scaledDecode), pageCacheReads: uncached ? { active: false, reason: uncached } : { active: true } };
  }

  /** The Deep Zoom geometry a slide is served with, computed once per open slide. */
  private deepZoomFor(slide: Slide): DeepZoom {
    let deepZoom = this.deepZooms.get(slide);
    if (!deepZoom) {
      // OpenSlide's grid keeps OpenSlide's choice of levels too, for tools that compare against it.
      deepZoom = new DeepZoom(slide, this.gridFor(slide), { scaledDecode: this.settings.scaledDecode, sameSizeLevels: this.settings.grid !== 'openslide' });
      this.deepZooms.set(slide, deepZoom);
    }
    return deepZoom;
  }

  /** The Deep Zoom grid a slide is served with. */
  private gridFor(slide: Slide): DeepZoomGrid {
    if (this.settings.grid === 'openslide') return OPENSLIDE_GRID;
    if (this.settings.grid === 'custom') return { tileSize: this.settings.tileSize, overlap: this.settings.overlap };
    return DeepZoom.nativeGrid(slide) ?? OPENSLIDE_GRID;
  }

  async descriptor(slideId: number, admittedBy: AdmittedBy = 'session'): Promise<TileResponse> {
    return this.withSlide(await this.record(slideId, admittedBy), async (slide, record) => {
      const deepZoom = this.deepZoomFor(slide);
      const grid = deepZoom.grid;
      const body = Buffer.from(deepZoom.descriptor(this.settings.format));
      return { body, contentType: 'application/xml; charset=utf-8', etag: etag(record, 'dzi', grid.tileSize, grid.overlap, this.settings.format) };
    });
  }

  /**
   * A Deep Zoom tile: its ETag at once, so that a conditional request is
   * answered without rendering (and the ETag, a hash, is made once per
   * request), and the tile itself when `response` is called.
   */
  async tile(slideId: number, level: number, col: number, row: number, format: TileFormat, admittedBy: AdmittedBy = 'session'): Promise<PendingTile> {
    const record = await this.record(slideId, admittedBy);
    const key = `${this.tileGridKey(record)}/${level}/${col}/${row}/${format}`;
    const cached = this.encoded.get(key);
    if (cached) {
      return {
        etag: cached.etag,
        response: async () => {
          this.cacheStats.hits++;
          return cached;
        },
      };
    }
    const { grid, tileSize, overlap, quality } = this.settings;
    const tag = etag(record, 'tile', grid, tileSize, overlap, format, quality, level, col, row);
    return { etag: tag, response: () => this.tileResponse(record, key, tag, level, col, row, format) };
  }

  private async tileResponse(record: SlideRecord, key: string, tag: string, level: number, col: number, row: number, format: TileFormat): Promise<TileResponse> {
    const cached = this.encoded.get(key);
    if (cached) {
      this.cacheStats.hits++;
      return cached;
    }
    this.cacheStats.misses++;
    return this.withSlide(record, async (slide) => {
      const { body, made } = await this.deepZoomFor(slide).tile({ level, col, row }, format, this.settings.quality);
      const response = { body, contentType: CONTENT_TYPES[format], etag: tag, made };
      this.encoded.set(key, response);
      return response;
    });
  }

  async associated(slideId: number, name: AssociatedName, admittedBy: AdmittedBy = 'session'): Promise<TileResponse> {
    return this.withSlide(await this.record(slideId, admittedBy), async (slide, record) => {
      const key = etag(record, name, this.settings.quality);
      const cached = this.encoded.get(key);
      if (cached) return cached;
      let image;
      if (slide.associatedImages.includes(name)) image = await slide.readAssociated(name);
      else if (name === 'thumbnail') image = await renderThumbnail(slide);
      else throw new AppError(404, 'image_not_found', `Slide ${slideId} has no ${name} image`);
      let pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
      if (Math.max(image.width, image.height) > THUMBNAIL_MAX) {
        pipeline = pipeline.resize(THUMBNAIL_MAX, THUMBNAIL_MAX, { fit: 'inside', kernel: 'lanczos3' });
      }
      const response = { body: await pipeline.jpeg({ quality: this.settings.quality }).toBuffer(), contentType: 'image/jpeg', etag: key };
      this.encoded.set(key, response);
      return response;
    });
  }

  /**
   * The IIIF info.json; `id` is the service's absolute URL. It offers only
   * what will be served: the tile scale factors and whole-image sizes that
   * render within tiles.maxRenderSourcePixels.
   */
  async iiifInfo(slideId: number, id: string, admittedBy: AdmittedBy = 'session'): Promise<IiifInfo> {
    return this.withSlide(await this.record(slideId, admittedBy), async (slide) => {
      const maxArea = this.iiifMaxArea();
      const fits = (region: { width: number; height: number }, width: number, height: number) =>
        planLevel0Region(slide, { x: 0, y: 0, ...region }, width, height).sourcePixels <= slide.maxRenderSourcePixels;
      // Powers of two down to the factor at which the whole image fits in one tile, where a whole tile renders within the bound.
      const scaleFactors = [1];
      while (Math.max(slide.width, slide.height) / scaleFactors.at(-1)! > IIIF_TILE) scaleFactors.push(scaleFactors.at(-1)! * 2);
      const servedFactors = scaleFactors.filter((f) => fits({ width: IIIF_TILE * f, height: IIIF_TILE * f }, IIIF_TILE, IIIF_TILE));
      // The whole image at each stored level's size, smallest first.
      const sizes = slide.levels
        .map((level) => ({ width: Math.max(1, Math.round(slide.width / level.downsample)), height: Math.max(1, Math.round(slide.height / level.downsample)) }))
        .filter((size) => size.width * size.height <= maxArea && fits({ width: slide.width, height: slide.height }, size.width, size.height))
        .reverse();
      return iiifInfo(id, slide, { tileSize: IIIF_TILE, scaleFactors: servedFactors, sizes, maxArea });
    });
  }

  /**
   * One IIIF image. `max` is the largest size that renders within
   * tiles.maxRenderSourcePixels; an explicit size that needs more is refused
   * with 400 before anything is decoded. When `signal` fires (the client has
   * gone) the render stops between batches of stored tiles, or before it
   * starts when it is still waiting for a slot.
   */
  async iiifImage(slideId: number, image: IiifImageRequest, signal?: AbortSignal, admittedBy: AdmittedBy = 'session'): Promise<TileResponse> {
    const record = await this.record(slideId, admittedBy);
    const key = etag(record, 'iiif', describeIiifRequest(image), this.settings.quality, this.settings.maxRenderSourcePixels);
    const cached = this.encoded.get(key);
    if (cached) return cached;
    return this.withSlide(
      record,
      async (slide) => {
        let request: IiifRequest;
        try {
          request = resolveIiifRequest(image, slide, { maxArea: this.iiifMaxArea(), largest: (region) => largestRender(slide, region, this.iiifMaxArea()) });
          // Refused before it waits for a slot, let alone reads anything.
          renderablePlan(slide, request.region, request.width, request.height);
        } catch (error) {
          if (error instanceof WsiError && error.code === 'too_large') {
            this.iiifStats.refused++;
            throw new AppError(400, 'render_too_large', `IIIF ${describeIiifRequest(image)} cannot be rendered: ${error.message} (tiles.maxRenderSourcePixels); ask for a smaller region or a smaller size`);
          }
          if (error instanceof AppError && error.code === 'render_too_large') this.iiifStats.refused++;
          throw error;
        }
        const body = await this.iiifLimit(() =>
          renderLevel0Region(slide, request.region, request.width, request.height, (image) => encode(image, request.format, this.settings.quality), { signal }),
        ).catch((error: unknown) => {
          if (error instanceof WsiError && error.code === 'aborted') this.iiifStats.abandoned++;
          throw error;
        });
        const response = { body, contentType: CONTENT_TYPES[request.format], etag: key };
        this.encoded.set(key, response);
        return response;
      },
    );
  }

  /** The largest IIIF image served: no more pixels than one render may decode, nor than MAX_RENDER_PIXELS. */
  private iiifMaxArea(): number {
    return Math.min(MAX_RENDER_PIXELS, this.settings.maxRenderSourcePixels);
  }

  /** IIIF renders waiting for a render slot, and rendering now. */
  iiifQueue(): { waiting: number; running: number } {
    return { waiting: this.iiifLimit.pendingCount, running: this.iiifLimit.activeCount };
  }

  /** Drop a slide's cached catalog row, so that a withdrawal stops its tiles at once rather than within RECORD_TTL_MS. */
  forgetSlide(slideId: number): void {
    this.records.delete(slideId);
  }

  close(): Promise<void> {
    return this.pool.close();
  }

  /**
   * The encoded-tile cache's key of a slide's tiles: a hash of the file's
   * identity, made once per catalog row read, so that a cached tile is found
   * (with its ETag) without hashing anything per request.
   */
  private tileGridKey(record: SlideRecord): string {
    let key = this.gridKeys.get(record);
    if (key === undefined) {
      key = etag(record, 'tiles');
      this.gridKeys.set(record, key);
    }
    return key;
  }

  /** Throws 404 slide_not_found unless the slide is published now (read afresh: before a tile capability is issued for it). */
  async assertPublished(slideId: number): Promise<void> {
    this.records.delete(slideId);
    await this.record(slideId);
  }

  private async record(slideId: number, admittedBy: AdmittedBy = 'session'): Promise<SlideRecord> {
    const cached = this.records.get(slideId);
    const maxAge = admittedBy === 'capability' ? this.capabilityRecordMs : RECORD_TTL_MS;
    let record = cached && performance.now() - cached.readAt < maxAge ? cached.record : undefined;
    if (!record) {
      const readAt = performance.now();
      record = await this.slides.findById(slideId);
      if (record) this.records.set(slideId, { record, readAt });
    }
    if (!record || record.status !== 'published') throw new AppError(404, 'slide_not_found', `No slide ${slideId}`);
    return record;
  }

  /** Work on the open slide of a catalog row. */
  private async withSlide<T>(record: SlideRecord, work: (slide: Slide, record: SlideRecord) => Promise<T>): Promise<T> {
    const file = path.resolve(this.slideStore, record.filePath);
    try {
      return await this.pool.use(file, (slide) => work(slide, record));
    } catch (error) {
      throw this.explain(error, record);
    }
  }

  /** WsiErrors become answers that name the slide but never a server path; the details go to the log. */
  private explain(error: unknown, record: SlideRecord): unknown {
    if (!(error instanceof WsiError)) return error;
    switch (error.code) {
      case 'out_of_range':
        return new AppError(404, 'tile_not_found', error.message);
      case 'too_large':
        return new AppError(400, 'render_too_large', `Slide ${record.id} has no stored level small enough to make this image: ${error.message} (tiles.maxRenderSourcePixels)`);
      case 'aborted':
        // Nobody reads this answer: the client closed the connection (nginx's 499 in the access log).
        return new AppError(499, 'client_closed_request', 'The client closed the request before the image was made');
      case 'not_found':
        this.log.error({ slide: record.id, err: error }, 'slide file missing');
        return new AppError(500, 'slide_file_missing', `The file of slide ${record.id} is missing on the server`, { expose: true });
      case 'unsupported_compression':
      case 'unsupported_format':
        this.log.error({ slide: record.id, err: error }, 'slide not supported');
        return new AppError(500, 'slide_unsupported', `Slide ${record.id} is stored in a form the viewer cannot read`, { expose: true });
      default:
        this.log.error({ slide: record.id, err: error }, 'slide unreadable');
        return new AppError(500, 'slide_unreadable', `Slide ${record.id} is damaged and cannot be displayed`, { expose: true });
    }
  }
}

function etag(record: SlideRecord, ...parts: (string | number)[]): string {
  const hash = createHash('sha256')
    .update([record.id, record.sha256 ?? '', record.fileSize, record.filePath, ...parts].join('\u0000'))
    .digest('base64url')
    .slice(0, 27);
  return `"${hash}"`;
}

/** For slides without a stored thumbnail: the smallest level, which the caller scales to size. */
async function renderThumbnail(slide: Slide) {
  const level = slide.levels.length - 1;
  const { width, height } = slide.levels[level]!;
  return slide.readRegion(level, 0, 0, width, height);
}
