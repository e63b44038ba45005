import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generatePatches, heatmap, loadAnnotations, loadProbabilityMap, stitch, tissueMask, xmlMasks, type Prediction } from '../server/toolbox/index.js';
import { DeepZoom, OPENSLIDE_GRID, Slide } from '../server/wsi/index.js';
import { benchSlide, HEIGHT, WIDTH } from './slide.js';

const PATCHES = Number(process.env.BENCH_PATCHES ?? 3000);
const SIZE = 256;

/** The same patches read (and saved as PNG, compression 1) through OpenSlide's Python binding, as a researcher's loop does. */
const OPENSLIDE_LOOP = `
import json, os, sys, time
import openslide
slide_path, index_path, out_dir = sys.argv[1:4]
patches = json.load(open(index_path))["patches"]
slide = openslide.OpenSlide(slide_path)
t0 = time.perf_counter()
for p in patches:
    slide.read_region((p["x"], p["y"]), 0, (p["size"], p["size"]))
t1 = time.perf_counter()
for i, p in enumerate(patches):
    slide.read_region((p["x"], p["y"]), 0, (p["size"], p["size"])).convert("RGB").save(os.path.join(out_dir, f"{i}.png"), compress_level=1)
t2 = time.perf_counter()
import resource
print(json.dumps({"read": t1 - t0, "readAndSave": t2 - t1, "count": len(patches), "peakRssMiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
`;

/**
 * The toolbox benchmark on the 60000×40000 generated slide: tissue mask, XML
 * masks at 1/16, PATCHES patches of 256² at level 0 (PNG), peak RSS; and,
 * where /usr/bin/python3 has openslide, a read_region loop over the same
 * patches in the same run; then stitching a full prediction grid (256²
 * patches, stride 128, synthetic scores) at downsample 16 with the Gaussian
 * window, and the heat-map overlay pyramid of the result on the slide's grid.
 */
export async function toolboxBenchmark(): Promise<void> {
  const slideFile = await benchSlide();
  const xmlFile = slideFile.replace(/\.svs$/, '.xml');
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-toolbox-'));
  const rows: [string, string][] = [];
  const rss = () => `${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`;
  try {
    const slide = await Slide.open(slideFile);
    try {
      let t0 = performance.now();
      const mask = await tissueMask(slide);
      const tissueSeconds = (performance.now() - t0) / 1000;
      rows.push(['tissue mask', `${tissueSeconds.toFixed(2)} s (${mask.width}×${mask.height}, ${mask.rule}; goal < 5 s) — peak RSS so far ${rss()}`]);

      t0 = performance.now();
      const masks = xmlMasks(await loadAnnotations(xmlFile), { width: slide.width, height: slide.height, downsample: 16 });
      rows.push(['xml masks 1/16', `${((performance.now() - t0) / 1000).toFixed(2)} s (${masks.length} layers of ${masks[0]!.width}×${masks[0]!.height}, parse included) — peak RSS so far ${rss()}`]);

      const out = path.join(work, 'patches');
      t0 = performance.now();
      const result = await generatePatches(slide, { out, size: SIZE, tissueMask: mask, annotations: await loadAnnotations(xmlFile), limit: PATCHES });
      const seconds = (performance.now() - t0) / 1000;
      const perSecond = result.patches.length / seconds;
      rows.push(['slidebank patches', `${result.patches.length} × ${SIZE}² PNG at level 0 in ${seconds.toFixed(2)} s = ${perSecond.toFixed(0)} patches/s (read, label, encode, write) — peak RSS so far ${rss()}`]);

      const python = spawnSync('/usr/bin/python3', ['-c', 'import openslide'], { encoding: 'utf8' });
      if (python.status === 0) {
        const pyOut = path.join(work, 'openslide');
        await mkdir(pyOut);
        const run = spawnSync('/usr/bin/python3', ['-c', OPENSLIDE_LOOP, slideFile, result.index.json, pyOut], { encoding: 'utf8', maxBuffer: 1 << 20 });
        if (run.status !== 0) throw new Error(`the OpenSlide loop failed: ${run.stderr}`);
        const py = JSON.parse(run.stdout.trim().split('\n').pop()!) as { read: number; readAndSave: number; count: number; peakRssMiB: number };
        rows.push(['openslide read_region', `${py.count} in ${py.read.toFixed(2)} s = ${(py.count / py.read).toFixed(0)} patches/s (read only)`]);
        rows.push(['openslide read+save PNG', `${py.count} in ${py.readAndSave.toFixed(2)} s = ${(py.count / py.readAndSave).toFixed(0)} patches/s; peak RSS ${py.peakRssMiB.toFixed(0)} MiB`]);
        rows.push(['ratio', `slidebank / openslide read+save: ${(perSecond / (py.count / py.readAndSave)).toFixed(2)}×; slidebank / openslide read only: ${(perSecond / (py.count / py.read)).toFixed(2)}×`]);
      } else {
        rows.push(['openslide', '(not measured: /usr/bin/python3 cannot import openslide; apt-get install python3-openslide)']);
      }

      // A full prediction grid: every 256² patch at stride 128, with a smooth synthetic score.
      const predictions: Prediction[] = [];
      for (let y = 0; y + SIZE <= slide.height; y += SIZE / 2) {
        for (let x = 0; x + SIZE <= slide.width; x += SIZE / 2) {
          predictions.push({ where: 'bench', x, y, width: SIZE, height: SIZE, score: 0.5 + 0.5 * Math.sin(x / 4000) * Math.cos(y / 3000) });
        }
      }
      const level0 = { width: slide.width, height: slide.height };
      t0 = performance.now();
      const stitched = await stitch(predictions, level0, { out: work, downsample: 16, window: 'gaussian' });
      rows.push([
        'stitch full grid',
        `${predictions.length} patches (256², stride 128) onto ${stitched.grid.width}×${stitched.grid.height} (downsample 16, gaussian, strips of 256 rows) in ${((performance.now() - t0) / 1000).toFixed(2)} s — peak RSS so far ${rss()}`,
      ]);

      const grid = DeepZoom.nativeGrid(slide) ?? OPENSLIDE_GRID;
      t0 = performance.now();
      const map = await loadProbabilityMap(stitched.png, level0);
      const overlay = await heatmap(map, { out: path.join(work, 'overlay'), grid });
      rows.push([
        'heat-map pyramid',
        `${overlay.tiles} PNG tiles of ${grid.tileSize}/${grid.overlap} over ${overlay.levels.length} levels (${overlay.emptyTiles} transparent) + overview in ${((performance.now() - t0) / 1000).toFixed(2)} s — peak RSS so far ${rss()}`,
      ]);
    } finally {
      await slide.close();
    }
    rows.push(['peak RSS (whole run)', rss()]);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  console.log(`\ntoolbox: ${WIDTH}×${HEIGHT} generated slide, ${os.cpus().length} cores`);
  const width = Math.max(...rows.map(([name]) => name.length));
  for (const [name, value] of rows) console.log(`${name.padEnd(width)}  ${value}`);
}
