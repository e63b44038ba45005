import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { exportSlideAsDicom } from '../server/wsi/dicom-writer/index.js';
import { dicomwebBenchmark } from './dicomweb.js';
import { benchSlide } from './slide.js';

const run = promisify(execFile);
const ROUNDS = 3;

/**
 * The DICOM benchmark: the export against `cp` (exportBenchmark), then
 * DICOMweb frames against Deep Zoom tiles (bench/dicomweb.ts).
 * `BENCH_DICOM_PART=export` or `web` runs one part only.
 */
export async function dicomBenchmark(): Promise<void> {
  const part = process.env.BENCH_DICOM_PART;
  if (part !== undefined && part !== 'export' && part !== 'web') throw new Error(`BENCH_DICOM_PART is export or web, not ${part}`);
  if (part !== 'web') await exportBenchmark();
  if (part !== 'export') await dicomwebBenchmark();
}

/**
 * DICOM export of the benchmarks' 60000×40000 SVS (every level and the
 * thumbnail, tiles copied), next to `cp` of the same file in the same run,
 * alternating over three rounds; the figure is the slide file's size over
 * the time taken (MB/s, 10^6 bytes), the median of the rounds. Both write to
 * the same temporary folder; the slide file is read once first so that
 * both start from the page cache.
 */
async function exportBenchmark(): Promise<void> {
  const slide = process.env.BENCH_DICOM_SLIDE ?? (await benchSlide());
  const size = (await stat(slide)).size;
  const work = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bench-dicom-'));
  try {
    await run('sh', ['-c', 'cat "$1" > /dev/null', 'sh', slide]);
    const cp: number[] = [];
    const exported: number[] = [];
    const cpuSeconds: number[] = [];
    let outputBytes = 0;
    let frames = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const copy = path.join(work, `copy-${round}.svs`);
      let t0 = performance.now();
      await run('cp', [slide, copy]);
      cp.push((performance.now() - t0) / 1000);
      await rm(copy);

      const out = path.join(work, `dicom-${round}`);
      t0 = performance.now();
      const cpu0 = process.cpuUsage();
      const result = await exportSlideAsDicom(slide, out, { name: 'BENCH', published: new Date('2026-01-01T00:00:00Z'), softwareVersion: 'bench', uidKey: 'bench' });
      exported.push((performance.now() - t0) / 1000);
      const used = process.cpuUsage(cpu0);
      cpuSeconds.push((used.user + used.system) / 1e6);
      frames = result.instances.reduce((sum, i) => sum + i.frames, 0);
      outputBytes = 0;
      for (const file of await readdir(out)) outputBytes += (await stat(path.join(out, file))).size;
      await rm(out, { recursive: true });
    }
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const mbps = (seconds: number) => (size / 1e6 / seconds).toFixed(0);
    console.log(`\nDICOM export of ${path.basename(slide)} (${(size / 2 ** 20).toFixed(0)} MiB, ${frames} frames, ${(outputBytes / 2 ** 20).toFixed(0)} MiB of DICOM), median of ${ROUNDS} rounds; load average ${os.loadavg()[0]!.toFixed(1)}`);
    console.log('| what | seconds | MB/s |');
    console.log('| --- | ---: | ---: |');
    console.log(`| \`cp\` | ${median(cp).toFixed(2)} | ${mbps(median(cp))} |`);
    console.log(`| DICOM export | ${median(exported).toFixed(2)} | ${mbps(median(exported))} |`);
    console.log(`DICOM export CPU time (this process, all threads): ${median(cpuSeconds).toFixed(2)} s, ${(size / 1e6 / median(cpuSeconds)).toFixed(0)} MB per CPU second`);
    console.log(`rounds: cp ${cp.map((s) => s.toFixed(2)).join(', ')} s; export ${exported.map((s) => s.toFixed(2)).join(', ')} s`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
