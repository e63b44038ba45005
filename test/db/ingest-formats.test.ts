import { readFile, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import { writeFile } from 'node:fs/promises';
import { testDialect } from '../support/database.js';
import { ingestBench } from '../support/ingest.js';
import { makeSlide } from '../support/slides.js';

const GOOD_ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'test', collection_date: '2010', consent: '' };

async function writeSheet(dir: string, files: string[]): Promise<void> {
  await writeFile(path.join(dir, 'metadata.csv'), stringify(files.map((file) => ({ file, ...GOOD_ROW })), { header: true }));
}

test(`an NDPI renamed to .tif is quarantined before de-identification, which has no rules for it, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t);
  const made = await makeSlide({ format: 'ndpi', width: 2048, height: 1536, seed: 11, out: bench.inbox, name: 'disguised' });
  await rename(made.svs, path.join(bench.inbox, 'disguised.tif'));
  await writeSheet(bench.inbox, ['disguised.tif']);

  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  t.is(results.length, 1);
  const [result] = results;
  t.is(result!.outcome, 'quarantined');
  t.regex(result!.reason!, /is a hamamatsu slide, whatever its extension says, and de-identification has no rules for hamamatsu files/);
  t.deepEqual(await readdir(bench.config.paths.slides).catch(() => []), [], 'nothing is written to the slide store');
  t.is(await bench.repository.slideCount(), 0);
  t.is((await readFile(path.join(result!.quarantinePath!, 'reason.txt'), 'utf8')).trim(), result!.reason!);
  t.true((await readdir(result!.quarantinePath!)).includes('disguised.tif'), 'the original waits in quarantine');
});
