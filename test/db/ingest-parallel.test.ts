import { copyFile, mkdir, readFile, readdir, stat, truncate } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import type { IngestResult } from '../../server/ingest/ingest-slide.js';
import { makeSlide } from '../support/slides.js';
import { testDialect } from '../support/database.js';
import { ingestBench, type IngestBench } from '../support/ingest.js';

const FALLBACK = { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'test' } as const;

/** Four good slides and one cut short, written into `dir`. */
async function batch(dir: string): Promise<void> {
  for (const [i, name] of ['alpha', 'bravo', 'charlie', 'delta', 'cut'].entries()) {
    await makeSlide({ width: 2400 + 240 * i, height: 1800, seed: 11 + i, out: dir, name, tileSize: 240 });
  }
  const cut = path.join(dir, 'cut.svs');
  await truncate(cut, Math.floor((await stat(cut)).size * 0.6));
}

/** What must not depend on how many slides ran at once: outcome, reason, the de-identification report, the published bytes. */
async function comparable(bench: IngestBench, results: IngestResult[]) {
  return Promise.all(
    results.map(async (r) => {
      const published = r.name ? await readFile(path.join(bench.config.paths.slides, `${r.name}.svs`)) : null;
      const { checks, ...report } = r.report;
      return {
        file: r.file,
        outcome: r.outcome,
        reason: r.reason,
        report,
        checks: checks?.map((c) => ({ name: c.name, passed: c.passed })),
        bytes: published?.length ?? null,
        sha256: r.report.sha256 ?? null,
      };
    }),
  );
}

test(`a batch ingested in parallel gives the results of one by one, and a failing slide is quarantined without touching the others, on ${testDialect}`, async (t) => {
  const parallel = await ingestBench(t, { SLIDEBANK_INGEST_PARALLEL_SLIDES: '4' });
  const serial = await ingestBench(t, { SLIDEBANK_INGEST_PARALLEL_SLIDES: '1' });
  await batch(parallel.inbox);
  for (const file of await readdir(parallel.inbox)) await copyFile(path.join(parallel.inbox, file), path.join(serial.inbox, file));

  const many = await parallel.service.ingestFolder(parallel.inbox, { source: 'cli', fallback: FALLBACK });
  const one = await serial.service.ingestFolder(serial.inbox, { source: 'cli', fallback: FALLBACK });

  t.deepEqual(many.results.map((r) => r.file), ['alpha.svs', 'bravo.svs', 'charlie.svs', 'cut.svs', 'delta.svs'], 'results in the folder’s order');
  t.deepEqual(await comparable(parallel, many.results), await comparable(serial, one.results));

  const cut = many.results.find((r) => r.file === 'cut.svs')!;
  t.is(cut.outcome, 'quarantined');
  t.regex(cut.reason!, /cannot be read as a slide/);
  t.is((await readFile(path.join(cut.quarantinePath!, 'reason.txt'), 'utf8')).trim(), cut.reason!);
  const good = many.results.filter((r) => r.file !== 'cut.svs');
  t.true(good.every((r) => r.outcome === 'published'), JSON.stringify(good.map((r) => r.reason)));
  t.is(new Set(good.map((r) => r.name)).size, 4, 'four different names');

  // Nothing partial in the store, a catalog row per published slide, an ingest record (the audit of ingest) per slide.
  const store = (await readdir(parallel.config.paths.slides)).sort();
  t.deepEqual(store, good.flatMap((r) => [`${r.name}.svs`, `${r.name}.xml`]).sort());
  t.is(await parallel.repository.slideCount(), 4);
  t.deepEqual((await parallel.repository.list()).map((r) => r.outcome).sort(), ['published', 'published', 'published', 'published', 'quarantined']);
});

test(`the same original twice in a parallel batch is published once; the other is a duplicate and leaves nothing, on ${testDialect}`, async (t) => {
  const bench = await ingestBench(t, { SLIDEBANK_INGEST_PARALLEL_SLIDES: '4' });
  const made = await makeSlide({ width: 2400, height: 1800, seed: 21, out: bench.inbox, name: 'first', tileSize: 240 });
  await copyFile(made.svs, path.join(bench.inbox, 'second.svs'));
  await copyFile(made.xml, path.join(bench.inbox, 'second.xml'));
  await mkdir(bench.config.paths.slides, { recursive: true });

  const { results } = await bench.service.ingestFolder(bench.inbox, { source: 'cli', fallback: FALLBACK });
  t.deepEqual(results.map((r) => r.outcome).sort(), ['duplicate', 'published']);
  const published = results.find((r) => r.outcome === 'published')!;
  const duplicate = results.find((r) => r.outcome === 'duplicate')!;
  t.regex(duplicate.reason!, new RegExp(`already published as ${published.name}`));
  t.deepEqual((await readdir(bench.config.paths.slides)).sort(), [`${published.name}.svs`, `${published.name}.xml`]);
  t.is(await bench.repository.slideCount(), 1);
});
