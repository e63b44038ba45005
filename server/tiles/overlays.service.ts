import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { SlideRelease } from '../catalog/slide-release.js';
import { AppError } from '../errors.js';
import type { TileResponse } from './tiles.service.js';
import type { OverlayList, OverlaySummary } from './views.js';

/** An overlay's name: a folder name that can never leave the overlays' folder (the route's paths admit only these). */
export const OVERLAY_NAME = /^[a-z0-9-]{1,64}$/;

/**
 * Heat-map overlays of a slide, as `slidebank toolbox heatmap` writes them
 * into `<root>/<slide id>/<name>/` (`<name>.dzi`, `<name>_files/…`, `<name>.json`).
 * An overlay exists once its .dzi does (it is written last). Overlays can be
 * republished, so ETags come from each file's identity (size, time, inode).
 */
export class OverlaysService {
  constructor(
    /** Overlays are made from the slide's pixels: served only while the slide may leave. */
    private readonly release: Pick<SlideRelease, 'assertMayLeave'>,
    private readonly root: string,
  ) {}

  /** The slide's published overlays, by name. */
  async list(slideId: number): Promise<OverlayList> {
    await this.assertPublished(slideId);
    const dir = path.join(this.root, String(slideId));
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => OVERLAY_NAME.test(n)).sort();
    const out: OverlaySummary[] = [];
    for (const name of names) {
      const dzi = await stat(path.join(dir, name, `${name}.dzi`)).catch(() => undefined);
      if (!dzi?.isFile()) continue;
      const sidecar = await readFile(path.join(dir, name, `${name}.json`), 'utf8')
        .then((text) => JSON.parse(text) as { colormap?: unknown; cutoff?: unknown })
        .catch(() => ({}) as { colormap?: unknown; cutoff?: unknown });
      out.push({
        name,
        dzi: `/tiles/${slideId}/overlays/${name}.dzi`,
        ...(typeof sidecar.colormap === 'string' ? { colormap: sidecar.colormap } : {}),
        ...(typeof sidecar.cutoff === 'number' ? { cutoff: sidecar.cutoff } : {}),
        createdAt: dzi.mtime.toISOString(),
      });
    }
    return { overlays: out };
  }

  async descriptor(slideId: number, name: string): Promise<TileResponse> {
    await this.assertPublished(slideId);
    return this.file(path.join(this.root, String(slideId), name, `${name}.dzi`), 'application/xml; charset=utf-8', `No overlay "${name}" for slide ${slideId}`);
  }

  async tile(slideId: number, name: string, level: number, col: number, row: number): Promise<TileResponse> {
    await this.assertPublished(slideId);
    const dir = path.join(this.root, String(slideId), name);
    // Tiles of an overlay count only while its descriptor is there.
    if (!(await stat(path.join(dir, `${name}.dzi`)).catch(() => undefined))) throw new AppError(404, 'overlay_not_found', `No overlay "${name}" for slide ${slideId}`);
    return this.file(path.join(dir, `${name}_files`, String(level), `${col}_${row}.png`), 'image/png', `No tile ${level}/${col}_${row} in overlay "${name}"`);
  }

  private async file(file: string, contentType: string, missing: string): Promise<TileResponse> {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new AppError(404, 'overlay_not_found', missing);
    const body = await readFile(file);
    const etag = `"${createHash('sha256').update([file, info.size, info.mtimeMs, info.ino].join('\u0000')).digest('base64url').slice(0, 27)}"`;
    return { body, contentType, etag };
  }

  private async assertPublished(slideId: number): Promise<void> {
    await this.release.assertMayLeave(slideId);
  }
}
