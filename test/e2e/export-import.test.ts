/**
 * Dataset exchange end to end: an origin site publishes generated slides, curates a
 * dataset, releases and exports it as a signed BagIt bag; an independent
 * RFC 8493 check accepts the bag; a mirror with its own database and slide
 * store refuses every damaged copy without changing anything, imports the
 * good one (same catalog, identical files, tiles served), and then applies an
 * incremental release that adds one slide and withdraws another.
 */
import { cp, mkdir, mkdtemp, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import { generateSigningKey, parseTagFile } from '../../server/bagit/index.js';
import { loadConfig, type Config } from '../../server/config/index.js';
import { ensureSiteKey } from '../../server/datasets/index.js';
import { createApp } from '../../server/http/app.js';
import { listen } from '../../server/http/server.js';
import { packageRoot } from '../../server/package-info.js';
import { createServices } from '../../server/services.js';
import { makeSlide } from '../support/slides.js';
import { rfc8493Problems } from '../bagit/rfc8493-check.js';
import { bearerHeaders } from '../support/accounts.js';
import type { TestApp } from '../support/app.js';
import { runCli, type CliResult } from '../support/cli.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';
import { ingestBench } from '../support/ingest.js';
import { memoryLogger } from '../support/logs.js';

const ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'liver-study', collection_date: '2010', consent: '' };
const CLI_TIMEOUT = 180_000;

interface Site {
  config: Config;
  database: TestDatabase;
  env: Record<string, string>;
}

/** A mirror: a database and a data folder of its own, trusting the given keys. */
async function mirrorSite(t: ExecutionContext, trustedKeys: { name: string; publicKey: string }[]): Promise<Site> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mirror-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const env = {
    DATABASE_URL: database.url,
    SLIDEBANK_PATHS_DATA: path.join(root, 'var'),
    SLIDEBANK_SITE_NAME: 'Partner Hospital',
    SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify(trustedKeys),
  };
  const { config } = loadConfig({ configDir: path.join(packageRoot, 'config'), env });
  await mkdir(config.paths.slides, { recursive: true });
  return { config, database, env };
}

async function cli(t: ExecutionContext, site: Site, args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await runCli(args, { env: { ...site.env, ...env }, timeoutMs: CLI_TIMEOUT });
  t.log(`slidebank ${args.join(' ')} → ${result.code}${result.stderr ? ` (${result.stderr.trim().split('\n').at(-1)})` : ''}`);
  return result;
}

async function ok(t: ExecutionContext, site: Site, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await cli(t, site, args, env);
  if (result.code !== 0) throw new Error(`slidebank ${args.join(' ')} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return result.stdout;
}

/** What must be equal between the origin's and the mirror's catalog rows. */
async function catalogRows(site: Site, names: string[]): Promise<unknown[]> {
  const rows = await site.database.db
    .knex('slides')
    .whereIn('name', names)
    .orderBy('name')
    .select('name', 'file_size', 'sha256', 'vendor', 'width', 'height', 'level_count', 'mpp_x', 'mpp_y', 'objective_power', 'status', 'organ', 'histology', 'stain', 'marker', 'differentiation', 'pathology_info', 'annotation_method', 'dataset', 'annotation_summary');
  return rows.map((r: Record<string, unknown>) => ({
    ...r,
    file_size: Number(r.file_size),
    annotation_summary: typeof r.annotation_summary === 'string' ? JSON.parse(r.annotation_summary) : r.annotation_summary,
  }));
}

/** Everything in the slide store, with sizes: the store "as it was". */
async function storeListing(site: Site): Promise<string[]> {
  const names = await readdir(site.config.paths.slides).catch(() => [] as string[]);
  return Promise.all(names.sort().map(async (n) => `${n}:${(await stat(path.join(site.config.paths.slides, n))).size}`));
}

async function mirrorState(site: Site): Promise<unknown> {
  const knex = site.database.db.knex;
  return {
    slides: await knex('slides').orderBy('id').select('name', 'status', 'annotation_path'),
    provenance: await knex('slide_provenance').count({ n: '*' }),
    imports: await knex('dataset_imports').count({ n: '*' }),
    store: await storeListing(site),
  };
}

async function copyBag(t: ExecutionContext, bag: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-bagcopy-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const copy = path.join(dir, path.basename(bag));
  await cp(bag, copy, { recursive: true });
  return copy;
}

async function startApp(t: ExecutionContext, site: Site, viewer: Parameters<typeof bearerHeaders>[1] = { level: 'L1' }) {
  const { log } = memoryLogger();
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { ...site.env, PORT: '0', SLIDEBANK_HOST: '127.0.0.1', SLIDEBANK_AUTH_SESSION_SECRET: randomBytes(32).toString('hex') },
  });
  const services = createServices(config, site.database.db, log);
  const http = await listen(createApp({ config, log, db: site.database.db, services }), { port: 0, host: '127.0.0.1', log });
  t.teardown(async () => {
    await http.close(1000);
    await services.close();
  });
  const headers = await bearerHeaders({ database: site.database } as TestApp, viewer);
  return { url: http.url, token: headers.authorization!.replace(/^Bearer /, ''), get: (p: string, h: Record<string, string> = headers) => fetch(`${http.url}${p}`, { headers: h }) };
}

test(`a dataset travels from one site to another as a signed bag, verified byte for byte, incrementally, on ${testDialect}`, async (t) => {
  t.timeout(15 * 60_000);
  // The origin: three generated slides published by ingest.
  const bench = await ingestBench(t, { SLIDEBANK_SITE_NAME: 'Origin Hospital', SLIDEBANK_SITE_PUBLIC_URL: 'http://origin.example:8080' });
  for (const [i, seed] of [11, 12, 13, 14].entries()) await makeSlide({ width: 2400, height: 1800, seed, out: bench.inbox, name: `case-${i}`, tileSize: 240 });
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify([0, 1, 2, 3].map((i) => ({ file: `case-${i}.svs`, ...ROW, pathology_info: `case ${i}` })), { header: true }));
  // case-3 waits in another folder for the second release.
  const later = path.join(bench.inbox, 'later');
  await mkdir(later);
  for (const ext of ['svs', 'xml']) await cp(path.join(bench.inbox, `case-3.${ext}`), path.join(later, `case-3.${ext}`));
  for (const ext of ['svs', 'xml']) await rm(path.join(bench.inbox, `case-3.${ext}`));
  const first = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  t.deepEqual(first.results.map((r) => r.outcome), ['published', 'published', 'published']);
  const origin: Site = {
    config: bench.config,
    database: bench.database,
    env: { DATABASE_URL: bench.database.url, SLIDEBANK_PATHS_DATA: bench.config.paths.data, SLIDEBANK_SITE_NAME: 'Origin Hospital', SLIDEBANK_SITE_PUBLIC_URL: 'http://origin.example:8080' },
  };
  const [a, b, c] = first.results.map((r) => ({ id: r.slideId!, name: r.name! }));

  await ok(t, origin, ['dataset', 'create', 'liver', '--description', 'HCC with viable tumour annotations']);
  t.regex(await ok(t, origin, ['dataset', 'add', 'liver', '--slides', `${a!.id},${b!.id}`]), /2 slide\(s\) added, 2 in the working set/);
  t.regex(await ok(t, origin, ['dataset', 'add', 'liver', '--filter', `q=${c!.name}`]), /1 slide\(s\) added, 3 in the working set/);
  t.is((await ok(t, origin, ['dataset', 'release', 'liver', '--version', '1'])).trim(), '1');
  const released = await cli(t, origin, ['dataset', 'release', 'liver', '--version', '1']);
  t.is(released.code, 1);
  t.regex(released.stderr, /liver has a release 1 already; releases never change/);

  // The export, and what an RFC 8493 reader that is not ours finds in it.
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-export-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  await ok(t, origin, ['export', '--dataset', 'liver', '--version', '1', '--out', out]);
  const bag = path.join(out, 'liver_1');
  t.deepEqual(rfc8493Problems(bag), []);
  const info = Object.fromEntries(parseTagFile(await readFile(path.join(bag, 'bag-info.txt'), 'utf8'), 'bag-info.txt'));
  t.like(info, { 'Source-Organization': 'Origin Hospital', 'External-Identifier': 'liver@1' });
  t.regex(info['Bagging-Date']!, /^\d{4}-\d{2}-\d{2}$/);
  const payload = (await readdir(path.join(bag, 'data'), { recursive: true })).sort();
  for (const s of [a!, b!, c!]) {
    t.true(payload.includes(`slides/${s.name}.svs`), `${s.name}.svs is in the bag`);
    t.true(payload.includes(`annotations/${s.name}.xml`) && payload.includes(`annotations/${s.name}.geojson`), `${s.name}'s annotation is in the bag`);
    t.true((await readFile(path.join(bag, 'data', 'slides', `${s.name}.svs`))).equals(await readFile(path.join(origin.config.paths.slides, `${s.name}.svs`))));
  }
  const metadata = JSON.parse(await readFile(path.join(bag, 'data', 'metadata.json'), 'utf8')) as { schemaVersion: number; slides: { name: string }[] };
  t.is(metadata.schemaVersion, 1);
  t.deepEqual(metadata.slides.map((s) => s.name).sort(), [a!.name, b!.name, c!.name].sort());
  t.regex(await readFile(path.join(bag, 'data', 'LICENSE'), 'utf8'), /CC BY-NC 4\.0[\s\S]*data use agreement/);
  t.regex(await readFile(path.join(bag, 'data', 'metadata.csv'), 'utf8'), new RegExp(`^name,file,size,sha256,[^\\n]*\\n${a!.name}|\\n${a!.name},`));

  // The origin's key, as GET /api/site shows it to partners.
  const originKey = ensureSiteKey(origin.config.paths.data);
  t.false(originKey.created, 'the export made the key; it is read now');
  t.is((await stat(originKey.file)).mode & 0o777, 0o600);
  const originApp = await startApp(t, origin);
  const siteAnswer = (await (await originApp.get('/api/site')).json()) as { name: string; signingKey: { publicKey: string } };
  t.is(siteAnswer.name, 'Origin Hospital');
  t.is(siteAnswer.signingKey.publicKey, originKey.publicKey);

  const mirror = await mirrorSite(t, [{ name: 'origin', publicKey: siteAnswer.signingKey.publicKey }]);
  const empty = await mirrorState(mirror);

  // A damaged copy is refused with the validator's reason and imports nothing. Every other kind of
  // damage (a missing, extra or truncated file, a wrong Payload-Oxum, a bad signature) takes the same
  // path; test/bagit/bagit.test.ts refuses each of them, with its message, without a process per case.
  const copy = await copyBag(t, bag);
  const damaged = path.join(copy, 'data', 'slides', `${b!.name}.svs`);
  const bytes = await readFile(damaged);
  bytes[Math.floor(bytes.length / 2)] = bytes[Math.floor(bytes.length / 2)]! ^ 0x80;
  await writeFile(damaged, bytes);
  const refused = await cli(t, mirror, ['import', copy]);
  t.is(refused.code, 1, 'one flipped byte: refused');
  t.regex(refused.stderr, new RegExp(`data/slides/${b!.name}\\.svs does not match its checksum`));
  t.regex(refused.stderr, /nothing was imported/);
  t.deepEqual(await mirrorState(mirror), empty, 'the mirror is as it was');
  const stranger = generateSigningKey();
  const untrusted = await cli(t, mirror, ['import', bag], { SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify([{ name: 'someone', publicKey: stranger.publicKey }]) });
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /signed by "Origin Hospital" with key [0-9a-f]{16}, which is not among the trusted keys/);
  const unconfigured = await cli(t, mirror, ['import', bag], { SLIDEBANK_MIRROR_TRUSTED_KEYS: '[]' });
  t.is(unconfigured.code, 1);
  t.regex(unconfigured.stderr, /no partner keys are trusted/);
  t.deepEqual(await mirrorState(mirror), empty);

  // The good bag.
  t.regex(await ok(t, mirror, ['import', bag]), /liver 1 from origin: 3 slide\(s\) added, 0 already here/);
  const names = [a!.name, b!.name, c!.name];
  t.deepEqual(await catalogRows(mirror, names), await catalogRows(origin, names), 'the catalogs are equal');
  for (const name of names) {
    for (const file of [`${name}.svs`, `${name}.xml`]) {
      t.true((await readFile(path.join(mirror.config.paths.slides, file))).equals(await readFile(path.join(origin.config.paths.slides, file))), `${file} is byte-identical`);
    }
  }
  t.false((await readdir(mirror.config.paths.slides)).some((n) => n.endsWith('.partial')), 'no temporary file is left');
  const provenance = await mirror.database.db.knex('slide_provenance').select('source_site', 'dataset', 'version');
  t.deepEqual(provenance, names.map(() => ({ source_site: 'origin', dataset: 'liver', version: '1' })));

  // Tiles served by the mirror, the same bytes the origin serves.
  const mirrorApp = await startApp(t, mirror);
  const mirrorId = (await mirror.database.db.knex('slides').where({ name: a!.name }).first('id')).id as number;
  const dzi = await mirrorApp.get(`/tiles/${mirrorId}.dzi`);
  t.is(dzi.status, 200);
  t.regex(await dzi.text(), /<Size Height="1800" Width="2400"\/>/);
  const tile = await mirrorApp.get(`/tiles/${mirrorId}_files/12/4_3.jpeg`);
  t.is(tile.status, 200);
  const originTile = await originApp.get(`/tiles/${a!.id}_files/12/4_3.jpeg`);
  t.true(Buffer.from(await tile.arrayBuffer()).equals(Buffer.from(await originTile.arrayBuffer())), 'the mirror serves the origin\'s tile bytes');

  // Importing the same bag again: nothing to do.
  const imported = await mirrorState(mirror);
  t.regex(await ok(t, mirror, ['import', bag]), /already imported, nothing to do/);
  t.deepEqual(await mirrorState(mirror), imported);
  // A slide file lost after the commit (an interrupted import) is put back by running the import again.
  await rm(path.join(mirror.config.paths.slides, `${c!.name}.svs`));
  t.regex(await ok(t, mirror, ['import', bag]), /1 file\(s\) repaired/);
  t.deepEqual(await mirrorState(mirror), imported);

  // The incremental round: case-3 joins, slide b is withdrawn.
  const second = await bench.service.ingestFolder(later, { source: 'cli', fallback: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'liver-study' } });
  t.is(second.results[0]!.outcome, 'published', second.results[0]!.reason ?? '');
  const d = { id: second.results[0]!.slideId!, name: second.results[0]!.name! };
  await ok(t, origin, ['dataset', 'add', 'liver', '--slides', String(d.id)]);
  t.regex(await ok(t, origin, ['dataset', 'withdraw', 'liver', '--slide', String(b!.id), '--reason', 'consent withdrawn']), /withdrawn, last released in 1/);
  const readd = await cli(t, origin, ['dataset', 'add', 'liver', '--slides', String(b!.id)]);
  t.is(readd.code, 1);
  t.regex(readd.stderr, /was withdrawn from liver \(consent withdrawn\); nothing was added/);
  t.is((await ok(t, origin, ['dataset', 'release', 'liver'])).trim(), '2');
  const staleOut = path.join(out, 'stale');
  const stale = await cli(t, origin, ['export', '--dataset', 'liver', '--version', '1', '--out', staleOut]);
  t.is(stale.code, 0, 'a release made before a withdrawal is still exported, without the withdrawn slide');
  t.regex(stale.stderr, new RegExp(`left out ${b!.name}: withdrawn since the release`));
  t.deepEqual(rfc8493Problems(path.join(staleOut, 'liver_1')), []);
  t.false((await readdir(path.join(staleOut, 'liver_1', 'data', 'slides'))).includes(`${b!.name}.svs`));
  await ok(t, origin, ['export', '--dataset', 'liver', '--version', '2', '--since', '1', '--out', out]);
  const increment = path.join(out, 'liver_2_since_1');
  t.deepEqual(rfc8493Problems(increment), []);
  const slidesInIncrement = await readdir(path.join(increment, 'data', 'slides'));
  t.deepEqual(slidesInIncrement, [`${d.name}.svs`], 'only the new slide travels');
  const incMeta = JSON.parse(await readFile(path.join(increment, 'data', 'metadata.json'), 'utf8')) as { since: string; withdrawals: { name: string; reason: string }[] };
  t.is(incMeta.since, '1');
  t.deepEqual(incMeta.withdrawals.map((w) => [w.name, w.reason]), [[b!.name, 'consent withdrawn']]);

  // An incremental bag on a site without the base version is refused.
  const fresh = await mirrorSite(t, [{ name: 'origin', publicKey: originKey.publicKey }]);
  const baseless = await cli(t, fresh, ['import', increment]);
  t.is(baseless.code, 1);
  t.regex(baseless.stderr, /is not in this bag \(it has the changes since 1\) and not on this site: import liver 1 first/);

  t.regex(await ok(t, mirror, ['import', increment]), /liver 2 \(changes since 1\) from origin: 1 slide\(s\) added, 2 already here, 0 annotation\(s\) updated, 1 withdrawn/);
  const statuses = Object.fromEntries((await mirror.database.db.knex('slides').select('name', 'status')).map((r: { name: string; status: string }) => [r.name, r.status]));
  t.deepEqual(statuses, { [a!.name]: 'published', [b!.name]: 'withdrawn', [c!.name]: 'published', [d.name]: 'published' });
  const allNames = [a!.name, c!.name, d.name];
  t.deepEqual(await catalogRows(mirror, allNames), await catalogRows(origin, allNames));
  t.true((await readFile(path.join(mirror.config.paths.slides, `${d.name}.svs`))).equals(await readFile(path.join(origin.config.paths.slides, `${d.name}.svs`))));
  const audit = await mirror.database.db.knex('audit_log').where({ action: 'slide.withdrawn' }).select('details');
  t.is(audit.length, 1);
  t.regex(JSON.stringify(audit[0]), /consent withdrawn/);
  t.regex(await ok(t, mirror, ['import', increment]), /already imported, nothing to do/);
  t.regex(await ok(t, origin, ['dataset', 'list']), /liver\t3 slide\(s\)\tversions: 1, 2/);
});

test(`holey and split exports: fetch.txt points at this server, a split export imports only whole, on ${testDialect}`, async (t) => {
  t.timeout(10 * 60_000);
  const bench = await ingestBench(t, { SLIDEBANK_SITE_NAME: 'Origin Hospital', SLIDEBANK_SITE_PUBLIC_URL: 'http://origin.example:8080/' });
  for (const [i, seed] of [21, 22].entries()) await makeSlide({ width: 1600, height: 1200, seed, out: bench.inbox, name: `case-${i}`, tileSize: 240 });
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify([0, 1].map((i) => ({ file: `case-${i}.svs`, ...ROW })), { header: true }));
  const ingested = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  const slides = ingested.results.map((r) => ({ id: r.slideId!, name: r.name! }));
  const origin: Site = { config: bench.config, database: bench.database, env: { DATABASE_URL: bench.database.url, SLIDEBANK_PATHS_DATA: bench.config.paths.data, SLIDEBANK_SITE_NAME: 'Origin Hospital', SLIDEBANK_SITE_PUBLIC_URL: 'http://origin.example:8080/' } };
  await ok(t, origin, ['dataset', 'create', 'pair', '--filter', 'organ=LV']);
  await ok(t, origin, ['dataset', 'release', 'pair', '--version', '2026.1']);
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-export-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));

  await ok(t, origin, ['export', '--dataset', 'pair', '--version', '2026.1', '--out', path.join(out, 'holey'), '--holey']);
  const holey = path.join(out, 'holey', 'pair_2026.1');
  const fetchLines = (await readFile(path.join(holey, 'fetch.txt'), 'utf8')).trim().split('\n').sort();
  const sizes = await Promise.all(slides.map(async (s) => (await stat(path.join(origin.config.paths.slides, `${s.name}.svs`))).size));
  t.deepEqual(fetchLines, slides.map((s, i) => `http://origin.example:8080/api/slides/${s.id}/files/slide ${sizes[i]} data/slides/${s.name}.svs`).sort());
  t.deepEqual(rfc8493Problems(holey).sort(), slides.map((s) => `data/slides/${s.name}.svs not yet fetched`).sort());

  const key = ensureSiteKey(origin.config.paths.data);
  const mirror = await mirrorSite(t, [{ name: 'origin', publicKey: key.publicKey }]);
  const incomplete = await cli(t, mirror, ['import', holey]);
  t.is(incomplete.code, 1);
  t.regex(incomplete.stderr, /data\/slides\/SB1-[A-Z0-9-]+\.svs is listed in fetch\.txt and has not been fetched yet/);

  // Room for the larger slide and its annotation, not for both slides: one bag per slide.
  const splitSize = Math.max(...sizes) + Math.floor(Math.min(...sizes) / 2);
  await ok(t, origin, ['export', '--dataset', 'pair', '--version', '2026.1', '--out', path.join(out, 'split'), '--split-size', String(splitSize)]);
  const parts = (await readdir(path.join(out, 'split'))).sort();
  t.deepEqual(parts, ['pair_2026.1_part1of2', 'pair_2026.1_part2of2']);
  for (const [i, part] of parts.entries()) {
    const dir = path.join(out, 'split', part);
    t.deepEqual(rfc8493Problems(dir), []);
    t.like(Object.fromEntries(parseTagFile(await readFile(path.join(dir, 'bag-info.txt'), 'utf8'), 'bag-info.txt')), { 'Bag-Group-Identifier': 'pair@2026.1', 'Bag-Count': `${i + 1} of 2` });
  }
  const half = await cli(t, mirror, ['import', path.join(out, 'split', parts[0]!)]);
  t.is(half.code, 1);
  t.regex(half.stderr, /this export is a group of 2 bags; give all of them/);
  t.deepEqual(await storeListing(mirror), [], 'nothing was copied');
  t.is(Number(((await mirror.database.db.knex('slides').count({ n: '*' })) as { n: number | string }[])[0]!.n), 0, 'nothing was registered');
  t.regex(await ok(t, mirror, ['import', ...parts.map((p) => path.join(out, 'split', p))]), /pair 2026\.1 from origin: 2 slide\(s\) added/);
  t.deepEqual(await catalogRows(mirror, slides.map((s) => s.name)), await catalogRows(origin, slides.map((s) => s.name)));
});

test(`mirroring over HTTP between two servers on loopback: the whole release, then only what is new, on ${testDialect}`, async (t) => {
  t.timeout(10 * 60_000);
  const bench = await ingestBench(t, { SLIDEBANK_SITE_NAME: 'Origin Hospital' });
  for (const [i, seed] of [31, 32, 33].entries()) await makeSlide({ width: 1600, height: 1200, seed, out: bench.inbox, name: `case-${i}`, tileSize: 240 });
  await writeFile(path.join(bench.inbox, 'metadata.csv'), stringify([0, 1, 2].map((i) => ({ file: `case-${i}.svs`, ...ROW })), { header: true }));
  const ingested = await bench.service.ingestFolder(bench.inbox, { source: 'cli' });
  const [a, b, c] = ingested.results.map((r) => ({ id: r.slideId!, name: r.name! }));
  const origin: Site = { config: bench.config, database: bench.database, env: { DATABASE_URL: bench.database.url, SLIDEBANK_PATHS_DATA: bench.config.paths.data, SLIDEBANK_SITE_NAME: 'Origin Hospital' } };
  await ok(t, origin, ['dataset', 'create', 'liver']);
  await ok(t, origin, ['dataset', 'add', 'liver', '--slides', `${a!.id},${b!.id}`]);
  await ok(t, origin, ['dataset', 'release', 'liver']);

  const partner = await startApp(t, origin, { level: 'L3' });
  const siteAnswer = await fetch(`${partner.url}/api/site`);
  t.is(siteAnswer.status, 200, 'GET /api/site is public');
  const site = (await siteAnswer.json()) as { name: string; signingKey: { publicKey: string; fingerprint: string } };
  t.is(site.name, 'Origin Hospital');
  t.regex(site.signingKey.fingerprint, /^[0-9a-f]{16}$/);
  const mirror = await mirrorSite(t, [{ name: 'origin', publicKey: site.signingKey.publicKey }]);

  // An L2 researcher may download slides but not take datasets.
  const researcher = await bearerHeaders({ database: origin.database } as TestApp, { level: 'L2' });
  t.is((await partner.get('/api/datasets/liver/bag', researcher)).status, 403);
  t.is((await fetch(`${partner.url}/api/datasets/liver`)).status, 401);
  const wrongToken = await cli(t, mirror, ['mirror', '--from', partner.url, '--dataset', 'liver'], { SLIDEBANK_MIRROR_TOKEN: 'sbk_not-a-token' });
  t.is(wrongToken.code, 1);
  t.regex(wrongToken.stderr, /answered 401/);

  const env = { SLIDEBANK_MIRROR_TOKEN: partner.token };
  // The first run cannot get slide b (its file is away on the origin): it stops, keeping slide a, and imports nothing.
  const bFile = path.join(origin.config.paths.slides, `${b!.name}.svs`);
  await rename(bFile, `${bFile}.away`);
  const interrupted = await cli(t, mirror, ['mirror', '--from', partner.url, '--dataset', 'liver'], env);
  t.not(interrupted.code, 0);
  t.regex(interrupted.stderr, new RegExp(`1 file\\(s\\) could not be fetched \\(data/slides/${b!.name}\\.svs: server error \\(500\\).*\\); run mirror again to continue`));
  t.is(Number(((await mirror.database.db.knex('slides').count({ n: '*' })) as { n: number | string }[])[0]!.n), 0, 'nothing was imported');
  await rename(`${bFile}.away`, bFile);
  const bSize = (await stat(bFile)).size;
  const resumed = await ok(t, mirror, ['mirror', '--from', partner.url, '--dataset', 'liver'], env);
  t.regex(resumed, /liver 1 from origin: \d+ bytes downloaded, 2 slide\(s\) added, 0 already here/);
  t.is(Number(/(\d+) bytes downloaded/.exec(resumed)![1]), bSize, 'the second run downloads only what the first could not');
  for (const s of [a!, b!]) {
    t.true((await readFile(path.join(mirror.config.paths.slides, `${s.name}.svs`))).equals(await readFile(path.join(origin.config.paths.slides, `${s.name}.svs`))), `${s.name} arrived byte for byte`);
  }
  t.deepEqual(await catalogRows(mirror, [a!.name, b!.name]), await catalogRows(origin, [a!.name, b!.name]));
  t.regex(await ok(t, mirror, ['mirror', '--from', partner.url, '--dataset', 'liver'], env), /liver 1: already here, up to date/);

  // A new release: one slide joins, one is withdrawn; the mirror takes only the change.
  await ok(t, origin, ['dataset', 'add', 'liver', '--slides', String(c!.id)]);
  await ok(t, origin, ['dataset', 'withdraw', 'liver', '--slide', String(a!.id), '--reason', 'scanner artefact']);
  await ok(t, origin, ['dataset', 'release', 'liver']);
  const cSize = (await stat(path.join(origin.config.paths.slides, `${c!.name}.svs`))).size;
  const second = await ok(t, mirror, ['mirror', '--from', partner.url, '--dataset', 'liver'], env);
  t.regex(second, /liver 2 \(changes since 1\) from origin: (\d+) bytes downloaded, 1 slide\(s\) added, 1 already here, 1 withdrawn/);
  t.is(Number(/(\d+) bytes downloaded/.exec(second)![1]), cSize, 'only the new slide was downloaded');
  const statuses = Object.fromEntries((await mirror.database.db.knex('slides').select('name', 'status')).map((r: { name: string; status: string }) => [r.name, r.status]));
  t.deepEqual(statuses, { [a!.name]: 'withdrawn', [b!.name]: 'published', [c!.name]: 'published' });
  t.deepEqual(await readdir(path.join(mirror.config.paths.data, 'mirror')), [], 'the work folder is emptied once imported');
  const audit = await origin.database.db.knex('audit_log').where({ action: 'dataset.exported' }).count({ n: '*' });
  t.is(Number((audit as { n: number | string }[])[0]!.n), 4, 'each holey bag handed out is audited (the interrupted run, its re-run, the up-to-date run\'s look for withdrawals, release 2)');
});
