import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import sharp from 'sharp';
import { runCli, runCliInProcess } from '../support/cli.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

/** `slidebank annotations import|versions|compare v… v…`: AI proposals from files and maps, as an operator runs them. */
test(`annotations import takes an AI proposal from a probability map and a manual outline from XML; versions lists them; compare v1 v2 (${testDialect})`, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-import-'));
  const made = await makeSlide({ width: 1200, height: 800, seed: 3, out: dir, name: 'p' });
  const database = await createMigratedTestDatabase();
  t.teardown(() => database.drop());
  const slide = await registerSlide(database.db, made.svs);
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(dir, 'var'), SLIDEBANK_PATHS_SLIDES: dir };

  // A 100×80 map of a 1200×800 slide (downsample 12 × 10): a disc with a hole, as `toolbox stitch` writes it.
  const values = new Uint16Array(100 * 80);
  for (let y = 0; y < 80; y++) for (let x = 0; x < 100; x++) values[y * 100 + x] = Math.hypot(x + 0.5 - 50, y + 0.5 - 40) < 25 && Math.hypot(x + 0.5 - 50, y + 0.5 - 40) >= 6 ? 52000 : 0;
  const map = path.join(dir, 'probability.png');
  await sharp(values, { raw: { width: 100, height: 80, channels: 1, depth: 'ushort' as const } } as never).toColourspace('grey16').png().toFile(map);
  await writeFile(path.join(dir, 'probability.json'), JSON.stringify({ tool: 'stitch', level0: { width: 1200, height: 800 }, downsample: { x: 12, y: 10 } }));

  const proposal = await runCli(['annotations', 'import', map, '--slide', String(slide.id), '--model', 'unet-v2'], { env });
  t.is(proposal.code, 0, proposal.stderr);
  t.like(JSON.parse(proposal.stdout), { slide: slide.id, method: 'ai', regions: 2, state: 'proposed', round: 1 });

  const manual = await runCli(['annotations', 'import', made.xml, '--slide', String(slide.id), '--method', 'manual', '--note', 'drawn in ImageScope'], { env });
  t.is(manual.code, 0, manual.stderr);
  t.like(JSON.parse(manual.stdout), { method: 'manual', state: 'in-review', round: 1 });

  const listed = await runCli(['annotations', 'versions', '--slide', String(slide.id)], { env });
  t.is(listed.code, 0, listed.stderr);
  const { versions, workflow } = JSON.parse(listed.stdout) as { versions: { id: number; method: string; model: string | null; note: string | null }[]; workflow: { state: string } };
  t.deepEqual(versions.map((v) => [v.method, v.model, v.note]), [['manual', null, 'drawn in ImageScope'], ['ai', 'unet-v2', null]]);
  t.is(workflow.state, 'in-review');

  const compared = await runCli(['annotations', 'compare', `v${versions[1]!.id}`, `v${versions[0]!.id}`, '--slide', String(slide.id), '--downsample', '8'], { env });
  t.is(compared.code, 0, compared.stderr);
  const report = JSON.parse(compared.stdout) as { agreement: { miou: number; downsample: number }; edits: { regionsAdded: number } };
  t.is(report.agreement.downsample, 8);
  t.true(report.agreement.miou > 0 && report.agreement.miou < 1);
  t.true(report.edits.regionsAdded > 0);

  // Refusals: a missing model (exit 2); a crossing outline, named (exit 1, nothing added); an unknown slide (exit 1).
  const noModel = await runCliInProcess(['annotations', 'import', map, '--slide', String(slide.id)], { env });
  t.is(noModel.code, 2);
  t.regex(noModel.stderr, /--model is required with --method ai/);
  const bowtie = path.join(dir, 'bowtie.geojson');
  await writeFile(bowtie, JSON.stringify({ type: 'Feature', properties: {}, geometry: { type: 'Polygon', coordinates: [[[100, 100], [300, 300], [300, 100], [100, 300], [100, 100]]] } }));
  const crossing = await runCli(['annotations', 'import', bowtie, '--slide', String(slide.id), '--model', 'm'], { env });
  t.is(crossing.code, 1);
  t.regex(crossing.stderr, /layer 1 region 1 crosses itself near \(200, 200\)/);
  const after = JSON.parse((await runCli(['annotations', 'versions', '--slide', String(slide.id)], { env })).stdout) as { versions: unknown[] };
  t.is(after.versions.length, 2);
  const unknown = await runCli(['annotations', 'import', made.xml, '--slide', '999', '--method', 'manual'], { env });
  t.is(unknown.code, 1);
  t.regex(unknown.stderr, /No slide 999/);
});
