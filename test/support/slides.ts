import { createHash } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { readSlideFacts, type SlideFacts } from '../../server/catalog/slide-facts.js';
import { SlidesRepository, type SlideRecord } from '../../server/catalog/slides.repository.js';
import type { Database } from '../../server/db/index.js';
import { packageRoot } from '../../server/package-info.js';
import { makeSlide as generate, type MakeSlideOptions, type MakeSlideResult } from '../../server/wsi/generate/index.js';

/** Put a slide file into the catalog as ingest will, reading its facts from the file itself. */
export async function registerSlide(db: Database, file: string, name = path.basename(file)): Promise<SlideRecord> {
  let facts: SlideFacts;
  try {
    facts = await readSlideFacts(file);
  } catch {
    // Damaged files are registered too, to test how the server answers for them.
    const fileSize = await stat(file).then((s) => s.size, () => 0);
    facts = { fileSize, vendor: 'unknown', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null };
  }
  return new SlidesRepository(db.knex).create({ name, filePath: file, sha256: null, ...facts });
}

/**
 * The slide generator for tests, cached across the test run (and the next
 * run): `makeSlide` is deterministic in its options, so the first worker to
 * ask for a size, seed, tile size, levels, quality, name and BigTIFF makes the
 * files once in a shared folder, and every caller gets copies of its own in
 * `out`. The folder is keyed by the generator's source and libvips's version
 * too, so an edited generator is never answered from the cache. Calls that
 * watch progress or can be aborted test the generator and are passed through.
 */
export async function makeSlide(options: MakeSlideOptions): Promise<MakeSlideResult> {
  if (options.onProgress || options.signal) return generate(options);
  const { out, onProgress: _progress, signal: _signal, ...recipe } = options;
  const key = createHash('sha256').update(JSON.stringify(Object.entries(recipe).sort())).digest('hex').slice(0, 20);
  const cached = path.join(await cacheRoot(), key);
  if (!existsSync(path.join(cached, 'result.json'))) {
    const scratch = await mkdtemp(path.join(path.dirname(cached), `${key}.making-`));
    const made = await generate({ ...recipe, out: scratch });
    await writeFile(path.join(scratch, 'result.json'), JSON.stringify(made));
    // Two workers may make the same slide at once: the first rename wins, the other copy is dropped.
    await rename(scratch, cached).catch(() => rm(scratch, { recursive: true, force: true }));
  }
  const made = JSON.parse(await readFile(path.join(cached, 'result.json'), 'utf8')) as MakeSlideResult;
  await mkdir(out, { recursive: true });
  const copy = async (file: string) => {
    const target = path.join(out, path.basename(file));
    await copyFile(path.join(cached, path.basename(file)), target, constants.COPYFILE_FICLONE);
    return target;
  };
  return { ...made, svs: await copy(made.svs), xml: await copy(made.xml), truth: await copy(made.truth) };
}

let root: Promise<string> | undefined;

function cacheRoot(): Promise<string> {
  return (root ??= (async () => {
    const hash = createHash('sha256').update(sharp.versions.vips);
    for (const dir of [path.join(packageRoot, 'server', 'wsi', 'generate'), path.join(packageRoot, 'server', 'wsi', 'tiff')]) {
      for (const file of (await readdir(dir, { recursive: true })).sort()) {
        const full = path.join(dir, file);
        if ((await stat(full)).isFile()) hash.update(file).update(await readFile(full));
      }
    }
    const parent = path.join(os.tmpdir(), 'slidebank-test-slides');
    const dir = path.join(parent, hash.digest('hex').slice(0, 16));
    await mkdir(dir, { recursive: true });
    // Slides of earlier versions of the generator, unused for a day, go.
    for (const other of await readdir(parent)) {
      const full = path.join(parent, other);
      if (full !== dir && Date.now() - (await stat(full)).mtimeMs > 86_400_000) await rm(full, { recursive: true, force: true });
    }
    return dir;
  })());
}
