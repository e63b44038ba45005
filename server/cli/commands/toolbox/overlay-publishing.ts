import type { Command } from 'commander';
import { realpath, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../../config/index.js';
import type { HeatmapResult } from '../../../toolbox/index.js';
import { configFromCli, type GlobalOptions } from '../../run.js';
import { usageError } from '../../toolbox-flags.js';

/** An `--out` folder that is an overlay of a catalog slide: `<paths.cache>/overlays/<slide id>/<name>`. */
export interface OverlayTarget {
  config: Config;
  slideId: number;
  name: string;
}

/** The path with symbolic links resolved as far as it exists. */
async function canonical(file: string): Promise<string> {
  const absolute = path.resolve(file);
  const real = await realpath(absolute).catch(() => undefined);
  if (real !== undefined) return real;
  const parent = path.dirname(absolute);
  return parent === absolute ? absolute : path.join(await canonical(parent), path.basename(absolute));
}

/** Whether `out` lies under the overlays the server serves; anywhere else the heat map is plain files. */
export async function overlayTarget(command: Command, out: string): Promise<OverlayTarget | undefined> {
  const { config } = configFromCli(command.optsWithGlobals<GlobalOptions>());
  const root = path.join(config.paths.cache, 'overlays');
  const relative = path.relative(await canonical(root), await canonical(out));
  if (relative === '' || relative.startsWith('..') || path.isAbsolute(relative)) return undefined;
  const [slide, name, ...rest] = relative.split(path.sep);
  const { OVERLAY_NAME } = await import('../../../toolbox/index.js');
  if (!/^[1-9]\d{0,9}$/.test(slide ?? '') || name === undefined || !OVERLAY_NAME.test(name) || rest.length > 0) {
    throw usageError(`--out inside ${root} must be ${root}/<slide id>/<name> (name: 1 to 64 of a-z, 0-9 and -), got ${out}`);
  }
  return { config, slideId: Number(slide), name };
}

/**
 * Publish an overlay from the command line: the operator's, under a name
 * claimed in the database like the jobs' names. A user's overlay (or a name
 * a user's job holds) is replaced only with `--replace`, and that is audited.
 * The pyramid is rendered into a staging folder and moved into place when
 * complete. Returns the result with its published paths.
 */
export async function publishOverlay(target: OverlayTarget, replace: boolean, render: (folder: string) => Promise<HeatmapResult>): Promise<HeatmapResult> {
  const { config, slideId, name } = target;
  const { migrateToLatest, openDatabase, waitForDatabase } = await import('../../../db/index.js');
  const { createLogger } = await import('../../../logging.js');
  const { createSlidesRepository } = await import('../../../catalog/create.js');
  const { createAuditLog } = await import('../../../audit/create.js');
  const { overlayPublisher } = await import('../../../queue/index.js');
  const log = createLogger('warn');
  const db = openDatabase(config.database.target, { log });
  try {
    await waitForDatabase(db, { timeoutMs: config.database.connectTimeoutSeconds * 1000, log });
    await migrateToLatest(db, { log });
    if (!(await createSlidesRepository(db).findById(slideId))) throw usageError(`--out names slide ${slideId}, which is not in the catalog`);
    const publisher = overlayPublisher(config, db);
    const operator = { ownerId: null, jobId: null };
    const holder = await publisher.holderAgainst(slideId, name, operator);
    const whose = (h: NonNullable<typeof holder>) =>
      `${h.published ? 'was published by' : 'is claimed by a job of'} ${h.ownerEmail ?? `user ${h.ownerId}`}${h.jobId === null ? '' : ` (job ${h.jobId})`}`;
    if (holder && !replace) throw usageError(`overlay "${name}" of slide ${slideId} ${whose(holder)}; add --replace to replace it`);
    const staged = publisher.stagingFolder(slideId, 'cli');
    try {
      const result = await render(staged);
      const outcome = await publisher.publish(slideId, name, staged, operator, { replace });
      if (!outcome.published) throw usageError(`overlay "${name}" of slide ${slideId} ${whose(outcome.holder)} now; nothing was published (add --replace to replace it)`);
      if (holder) {
        await createAuditLog(db).record({
          action: 'overlay.replaced',
          actorId: null,
          subjectType: 'slide',
          subjectId: slideId,
          details: { name, ownerId: holder.ownerId, jobId: holder.jobId, by: 'slidebank toolbox heatmap --replace' },
        });
      }
      const folder = publisher.folder(slideId, name);
      const moved = (file: string) => path.join(folder, path.relative(staged, file));
      return { ...result, dzi: moved(result.dzi), tilesDir: moved(result.tilesDir), overview: moved(result.overview), json: moved(result.json) };
    } finally {
      await rm(staged, { recursive: true, force: true });
    }
  } finally {
    await db.close();
  }
}
