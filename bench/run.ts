import { bagitBenchmark } from './bagit.js';
import { catalogBenchmark } from './catalog.js';
import { challengeBenchmark } from './challenge.js';
import { dicomBenchmark } from './dicom.js';
import { downloadsBenchmark } from './downloads.js';
import { ingestBenchmark } from './ingest.js';
import { ndpiBenchmark } from './ndpi.js';
import { portalBenchmark } from './portal.js';
import { tilesBenchmark } from './tiles.js';
import { tilesMixedBenchmark } from './tiles-mixed.js';
import { toolboxBenchmark } from './toolbox.js';

/** `npm run bench [-- NAME…]`: runs the named benchmarks, or all of them. */
const BENCHMARKS: Record<string, () => Promise<void>> = { tiles: tilesBenchmark, 'tiles-mixed': tilesMixedBenchmark, ingest: ingestBenchmark, downloads: downloadsBenchmark, toolbox: toolboxBenchmark, portal: portalBenchmark, bagit: bagitBenchmark, challenge: challengeBenchmark, ndpi: ndpiBenchmark, dicom: dicomBenchmark, catalog: catalogBenchmark };

const names = process.argv.slice(2);
const unknown = names.filter((n) => !(n in BENCHMARKS));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
  process.exit(2);
}
for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) await BENCHMARKS[name]!();
