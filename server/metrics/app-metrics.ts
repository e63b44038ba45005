import type { Middleware } from 'koa';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DownloadsService } from '../downloads/index.js';
import type { Logger } from '../logging.js';
import type { TilesService } from '../tiles/tiles.service.js';
import type { MetricsRepository } from './metrics.repository.js';

/** What the metrics read: counters the services keep, and the database. */
export interface MetricsSources {
  tiles: Pick<TilesService, 'cacheStats'>;
  downloads: Pick<DownloadsService, 'bytesSent'>;
  repository: MetricsRepository;
  log: Logger;
}

/** Tile latencies from a passed-through stored JPEG (well under a millisecond) to a cold render of an overview level. */
const TILE_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const TILE_PATH = /^\/tiles\/[^/]+_files\/\d+\/\d+_\d+\.[a-z]+$/;

/**
 * The Prometheus metrics of one app process, in a registry of its own (so
 * that several apps in one test process do not collide). Request timings are
 * observed by `observeTiles`; counters kept by the services and counts in the
 * database are read when Prometheus scrapes.
 */
export class AppMetrics {
  readonly registry = new Registry();
  private readonly tileSeconds: Histogram<'kind' | 'status'>;

  constructor(sources: MetricsSources) {
    const { registry } = this;
    collectDefaultMetrics({ register: registry });

    this.tileSeconds = new Histogram({
      name: 'slidebank_tile_request_duration_seconds',
      help: 'Deep Zoom tile requests by how the tile was made (passthrough: the stored JPEG tile as it is; scaled: stored tiles decoded at reduced size; cropped: stored tiles decoded and cut by libjpeg-turbo; rendered: decoded and resized through libvips; not_modified: 304; error: 4xx/5xx) and HTTP status',
      labelNames: ['kind', 'status'],
      buckets: TILE_BUCKETS,
      registers: [registry],
    });

    const { tiles, downloads, repository, log } = sources;
    monotonic(registry, 'slidebank_tile_cache_hits_total', 'Deep Zoom tiles answered from the encoded-tile cache', () => tiles.cacheStats.hits);
    monotonic(registry, 'slidebank_tile_cache_misses_total', 'Deep Zoom tiles that had to be passed through or rendered', () => tiles.cacheStats.misses);

    let sent = { file: { app: 0, nginx: 0 }, bundle: { app: 0, nginx: 0 } };
    new Counter({
      name: 'slidebank_download_bytes_total',
      help: 'Bytes of slide and annotation downloads (kind file or bundle) sent by the app or handed to nginx by X-Accel-Redirect (via)',
      labelNames: ['kind', 'via'],
      registers: [registry],
      collect() {
        for (const kind of ['file', 'bundle'] as const) {
          for (const via of ['app', 'nginx'] as const) {
            const delta = downloads.bytesSent[kind][via] - sent[kind][via];
            this.inc({ kind, via }, Math.max(0, delta));
          }
        }
        sent = structuredClone(downloads.bytesSent);
      },
    });

    const fromDatabase = <L extends string>(name: string, help: string, labelNames: L[], read: () => Promise<{ key: Record<L, string>; count: number }[]>) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          try {
            const rows = await read();
            this.reset();
            for (const row of rows) this.set(row.key as Partial<Record<L, string>>, row.count);
          } catch (error) {
            // A scrape while the database is down still answers with the process metrics; /healthz says what is down.
            this.reset();
            log.warn({ err: error, metric: name }, 'metrics: could not read from the database');
          }
        },
      });
    fromDatabase('slidebank_dua_applications', 'Data use agreement applications by status', ['status'], () => repository.duaApplicationsByStatus());
    fromDatabase('slidebank_users', 'Enabled accounts by access level', ['level'], () => repository.usersByLevel());
    fromDatabase('slidebank_job_runs', 'Recorded runs of the scheduled jobs by job and outcome (succeeded, failed, skipped, running)', ['job', 'status'], () =>
      repository.jobRunsByStatus(),
    );
    fromDatabase('slidebank_queue_jobs', 'Toolbox jobs in the queue by type and status; queue depth is status="queued", failures status="failed"', ['type', 'status'], () =>
      repository.queueJobsByStatus(),
    );
    fromDatabase('slidebank_job_last_failure_timestamp_seconds', 'When each scheduled job last failed (Unix time)', ['job'], async () =>
      (await repository.lastFailures()).map(({ job, at }) => ({ key: { job }, count: at.getTime() / 1000 })),
    );
  }

  /** Times each Deep Zoom tile request, labelled by the X-Tile-Source header the tile route sets. */
  readonly observeTiles: Middleware = async (ctx, next) => {
    if (!TILE_PATH.test(ctx.path)) return next();
    const stop = this.tileSeconds.startTimer();
    try {
      await next();
    } finally {
      const source = ctx.response.get('X-Tile-Source');
      const kind = ctx.status >= 400 ? 'error' : ctx.status === 304 ? 'not_modified' : source === 'stored' ? 'passthrough' : source === 'scaled' || source === 'cropped' || source === 'rendered' ? source : 'other';
      stop({ kind, status: String(ctx.status) });
    }
  };

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** A counter that mirrors a number a service keeps, read at scrape time. */
function monotonic(registry: Registry, name: string, help: string, read: () => number): void {
  let seen = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = read();
      this.inc(Math.max(0, now - seen));
      seen = now;
    },
  });
}
