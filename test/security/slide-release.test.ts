/**
 * A withdrawn slide leaves by no path. One origin server publishes two
 * slides, releases them as a dataset, runs toolbox jobs on one of them
 * (a tissue mask, and a heat-map overlay from it) and starts its annotation
 * review; two partner sites take the release, one by `slidebank mirror`,
 * one by `slidebank export` and `import`. Every path that sends the slide's
 * bytes or anything made from them answers before the withdrawal; then an
 * administrator withdraws the slide through the admin API, and every path
 * is tried again: the files, a bundle and a manifest, the thumbnail, the
 * annotation for the viewer and the review's version files, the job's
 * results and its overlay all answer 404; the release's bags (ZIP, holey ZIP,
 * the mirror's holey bag, `slidebank export`) are served without the slide,
 * still valid, signed BagIt bags, and name it in their withdrawal notice; and
 * both partners withdraw their copy when they take the release again.
 */
import { execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { stringify } from 'csv-stringify/sync';
import { validateBag, type TrustedKey } from '../../server/bagit/index.js';
import { loadConfig } from '../../server/config/index.js';
import { createDatasetsService } from '../../server/datasets/index.js';
import { createIngestService } from '../../server/ingest/create.js';
import { packageRoot } from '../../server/package-info.js';
import { createQueueWorker, type JobView } from '../../server/queue/index.js';
import { makeSlide } from '../support/slides.js';
import { rfc8493Problems } from '../bagit/rfc8493-check.js';
import { bearerHeaders, signedIn, type Answer } from '../support/accounts.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { runCli, type CliResult } from '../support/cli.js';
import { createMigratedTestDatabase, type TestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

const run = promisify(execFile);
const UNZIP = '/usr/bin/unzip';
const ROW = { organ: 'Liver', histology: 'HCC', stain: 'H&E', marker: '', differentiation: 'MD', annotation_method: 'manual', dataset: 'liver-study', collection_date: '2010', consent: '' };
const REASON = 'the donor withdrew consent';
const NOTICE = 'slidebank-withdrawn.json';

interface Slide {
  id: number;
  name: string;
}

interface Site {
  database: TestDatabase;
  env: Record<string, string>;
}

async function cli(t: ExecutionContext, site: Site, args: string[]): Promise<CliResult> {
  const result = await runCli(args, { env: site.env, timeoutMs: 180_000 });
  t.log(`slidebank ${args.join(' ')} → ${result.code}`);
  return result;
}

async function ok(t: ExecutionContext, site: Site, args: string[]): Promise<CliResult> {
  const result = await cli(t, site, args);
  if (result.code !== 0) throw new Error(`slidebank ${args.join(' ')} exited ${result.code}:\n${result.stderr}\n${result.stdout}`);
  return result;
}

/** A partner: a database and a data folder of its own, trusting the origin's key. */
async function partnerSite(t: ExecutionContext, name: string, trusted: TrustedKey[]): Promise<Site> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-partner-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const env = { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_SITE_NAME: name, SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify(trusted) };
  await mkdir(loadConfig({ configDir: path.join(packageRoot, 'config'), env }).config.paths.slides, { recursive: true });
  return { database, env };
}

async function statusAt(site: Site, name: string): Promise<string | undefined> {
  return ((await site.database.db.knex('slides').where({ name }).first('status')) as { status: string } | undefined)?.status;
}

/** A ZIP answer, checked by unzip and unpacked; returns the bag folder inside it. */
async function unpackBag(t: ExecutionContext, response: Response, bagName: string): Promise<{ bag: string; listing: string }> {
  t.is(response.status, 200);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-withdrawn-bag-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const zip = path.join(dir, 'bag.zip');
  await pipeline(Readable.fromWeb(response.body! as import('node:stream/web').ReadableStream), createWriteStream(zip));
  t.regex((await run(UNZIP, ['-t', zip])).stdout, /No errors detected/);
  const listing = (await run(UNZIP, ['-Z1', zip])).stdout;
  await run(UNZIP, ['-q', zip, '-d', path.join(dir, 'x')]);
  return { bag: path.join(dir, 'x', bagName), listing };
}

/** Every file of a bag folder, relative, with `/`. */
async function filesOf(bag: string): Promise<string[]> {
  const entries = await readdir(bag, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.relative(bag, path.join(e.parentPath, e.name)).split(path.sep).join('/')).sort();
}

/**
 * A bag of release 1 as served after the withdrawal: valid, signed, without
 * any trace of the withdrawn slide but the withdrawal notice, which names it.
 */
async function checkServedWithout(t: ExecutionContext, bag: string, trusted: TrustedKey[], kept: Slide, gone: Slide & { sha256: string }, what: string): Promise<void> {
  t.deepEqual(rfc8493Problems(bag).filter((p) => !/not yet fetched/.test(p)), [], `${what}: a valid bag`);
  const valid = await validateBag(bag, { trustedKeys: trusted, allowHoles: true });
  t.true(valid.tagFiles.includes(NOTICE), `${what}: the signed tag manifest vouches for the notice`);
  t.deepEqual(valid.payload.map((p) => p.path).filter((p) => p.startsWith('data/slides/')), [`data/slides/${kept.name}.svs`], `${what}: only the kept slide`);
  for (const file of await filesOf(bag)) {
    if (file === NOTICE) continue;
    t.false(file.includes(gone.name), `${what}: no file of the withdrawn slide (${file})`);
    t.false((await readFile(path.join(bag, file))).includes(gone.name), `${what}: ${file} does not name the withdrawn slide`);
  }
  const metadata = JSON.parse(await readFile(path.join(bag, 'data', 'metadata.json'), 'utf8')) as { slides: { name: string }[] };
  t.deepEqual(metadata.slides.map((s) => s.name), [kept.name]);
  const notice = JSON.parse(await readFile(path.join(bag, NOTICE), 'utf8')) as { schemaVersion: number; withdrawn: { name: string; sha256: string; reason: string; withdrawnAt: string }[] };
  t.is(notice.schemaVersion, 1);
  t.like(notice.withdrawn, [{ name: gone.name, sha256: gone.sha256, reason: REASON }]);
  t.false(Number.isNaN(Date.parse(notice.withdrawn[0]!.withdrawnAt)), `${what}: the withdrawal's time`);
}

test(`a slide withdrawn from the catalog leaves by no path: files, bundles, thumbnails, annotations, job results, overlays, bags, export, import and mirror, on ${testDialect}`, async (t) => {
  t.timeout(15 * 60_000);
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-withdrawn-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app: TestApp = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_SITE_NAME: 'Origin Hospital' } });
  const origin: Site = { database: app.database, env: { DATABASE_URL: app.database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_SITE_NAME: 'Origin Hospital' } };

  // Two slides through ingest, released together.
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  for (const [i, seed] of [61, 62].entries()) await makeSlide({ width: 1600, height: 1200, seed, out: inbox, name: `case-${i}`, tileSize: 240 });
  await writeFile(path.join(inbox, 'metadata.csv'), stringify([0, 1].map((i) => ({ file: `case-${i}.svs`, ...ROW, pathology_info: `case ${i}` })), { header: true }));
  const ingested = await createIngestService(app.config, app.database.db, memoryLogger().log).ingestFolder(inbox, { source: 'cli' });
  t.deepEqual(ingested.results.map((r) => r.outcome), ['published', 'published']);
  const [kept, goneSlide] = ingested.results.map((r) => ({ id: r.slideId!, name: r.name! })) as [Slide, Slide];
  const gone = { ...goneSlide, sha256: ((await app.database.db.knex('slides').where({ id: goneSlide.id }).first('sha256')) as { sha256: string }).sha256 };
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('liver');
  await datasets.add('liver', { slides: [kept.id, gone.id] });
  await datasets.release('liver', '1', 'curator');

  const researcher = await signedIn(app, { level: 'L2' });
  const pathologist = await signedIn(app, { level: 'L1', roles: ['pathologist'] });
  const admin = await signedIn(app, { level: 'L1', roles: ['admin'] });
  const partnerHeaders = await bearerHeaders(app, { level: 'L3' });
  const partnerToken = partnerHeaders.authorization!.replace(/^Bearer /, '');
  const asPartner = (p: string) => fetch(app.url(p), { headers: partnerHeaders });

  // Toolbox results made from the slide: a tissue mask, and a heat-map overlay coloured from it.
  const worker = createQueueWorker(app.config, app.database.db, memoryLogger().log);
  const mask = (await researcher.token.post<{ job: JobView }>('/api/jobs', { type: 'tissue-mask', slideId: gone.id, parameters: {} })).body.job;
  t.true(await worker.runOnce());
  const heat = await researcher.token.post<{ job: JobView }>('/api/jobs', { type: 'heatmap', slideId: gone.id, parameters: { source: mask.id, name: 'tumour' } });
  t.is(heat.status, 201, JSON.stringify(heat.body));
  t.true(await worker.runOnce());
  for (const id of [mask.id, heat.body.job.id]) t.is((await researcher.token.get<{ job: JobView }>(`/api/jobs/${id}`)).body.job.status, 'succeeded');
  // The annotation review's first version: the outline published at ingest.
  const review = await pathologist.session.get<{ versions: { id: number }[] }>(`/api/slides/${gone.id}/annotations/review`);
  t.is(review.status, 200);
  const version = review.body.versions[0]!.id;

  // The partners take release 1 while both slides are published: A mirrors it, B imports an export of it.
  const site = (await (await fetch(app.url('/api/site'))).json()) as { name: string; signingKey: { publicKey: string } };
  const trusted = [{ name: 'origin', publicKey: site.signingKey.publicKey }];
  const mirror = await partnerSite(t, 'Partner A', trusted);
  const importer = await partnerSite(t, 'Partner B', trusted);
  mirror.env.SLIDEBANK_MIRROR_TOKEN = partnerToken;
  const mirrorArgs = ['mirror', '--from', app.url(''), '--dataset', 'liver'];
  t.regex((await ok(t, mirror, mirrorArgs)).stdout, /liver 1 from origin: \d+ bytes downloaded, 2 slide\(s\) added/);
  await ok(t, origin, ['export', '--dataset', 'liver', '--version', '1', '--out', path.join(root, 'before')]);
  t.regex((await ok(t, importer, ['import', path.join(root, 'before', 'liver_1')])).stdout, /liver 1 from origin: 2 slide\(s\) added/);
  for (const partner of [mirror, importer]) t.is(await statusAt(partner, gone.name), 'published');

  // Every path that sends the slide's bytes, or anything made from them.
  const paths: [string, () => Promise<Answer>][] = [
    ['the slide file', () => researcher.token.get(`/api/slides/${gone.id}/files/slide`)],
    ['the annotation file (XML)', () => researcher.token.get(`/api/slides/${gone.id}/files/annotation`)],
    ['a ZIP bundle', () => researcher.token.post('/api/downloads', { slides: [gone.id] })],
    ['a download manifest', () => researcher.token.get(`/api/downloads/manifest?slides=${gone.id}`)],
    ['the catalog thumbnail', () => researcher.token.get(`/api/slides/${gone.id}/thumbnail?size=large`)],
    ['the annotation for the viewer (GeoJSON)', () => researcher.token.get(`/api/slides/${gone.id}/annotation.geojson`)],
    ['a toolbox job result (mask)', () => researcher.token.get(`/api/jobs/${mask.id}/results/tissue-mask.png`)],
    ['a toolbox job result (heat map)', () => researcher.token.get(`/api/jobs/${heat.body.job.id}/results/tumour.png`)],
    ['the heat-map overlay descriptor', () => researcher.token.get(`/tiles/${gone.id}/overlays/tumour.dzi`)],
    ['a heat-map overlay tile', () => researcher.token.get(`/tiles/${gone.id}/overlays/tumour_files/0/0_0.png`)],
    ['an annotation version file (XML)', () => pathologist.token.get(`/api/slides/${gone.id}/annotations/versions/${version}.xml`)],
    ['an annotation version file (GeoJSON)', () => pathologist.token.get(`/api/slides/${gone.id}/annotations/versions/${version}.geojson`)],
  ];
  const heatResults = (await researcher.token.get<{ job: JobView }>(`/api/jobs/${heat.body.job.id}`)).body.job.results.map((r) => r.name);
  t.true(heatResults.includes('tumour.png'), `the heat map's results: ${heatResults.join(', ')}`);
  for (const [what, ask] of paths) t.is((await ask()).status, 200, `before the withdrawal: ${what}`);

  // The withdrawal, as an administrator makes it on the slides page.
  const withdrawn = await admin.session.post(`/api/admin/slides/${gone.id}/withdraw`, { reason: REASON });
  t.is(withdrawn.status, 200, JSON.stringify(withdrawn.body));

  for (const [what, ask] of paths) {
    const answer = await ask();
    t.is(answer.status, 404, `after the withdrawal: ${what}`);
    t.like(answer.body, { error: { code: 'slide_not_found' } }, what);
  }
  t.is((await researcher.token.get(`/api/slides/${kept.id}/files/slide`)).status, 200, 'the other slide is still served');

  // The release's bags: served without the slide, and naming it.
  const full = await unpackBag(t, await asPartner('/api/datasets/liver/bag.zip?version=1'), 'liver_1');
  t.false(full.listing.includes(gone.name), 'the ZIP lists nothing of the slide');
  await checkServedWithout(t, full.bag, trusted, kept, gone, 'bag.zip');
  t.false((await readdir(full.bag)).includes('fetch.txt'));
  const holey = await unpackBag(t, await asPartner('/api/datasets/liver/bag.zip?version=1&holey=1'), 'liver_1');
  await checkServedWithout(t, holey.bag, trusted, kept, gone, 'the holey bag.zip');
  const fetchText = await readFile(path.join(holey.bag, 'fetch.txt'), 'utf8');
  t.regex(fetchText, new RegExp(`/api/slides/${kept.id}/files/slide \\d+ data/slides/${kept.name}\\.svs`));
  t.notRegex(fetchText, new RegExp(`/api/slides/${gone.id}/|${gone.name}`), 'fetch.txt does not point at the slide');
  const answer = (await (await asPartner('/api/datasets/liver/bag?version=1')).json()) as { files: { path: string; content: string }[] };
  const mirrorBag = path.join(root, 'mirror-answer', 'liver_1');
  for (const file of answer.files) {
    await mkdir(path.dirname(path.join(mirrorBag, file.path)), { recursive: true });
    await writeFile(path.join(mirrorBag, file.path), Buffer.from(file.content, 'base64'));
  }
  await checkServedWithout(t, mirrorBag, trusted, kept, gone, 'the mirror\'s holey bag');
  const exported = app.audit.of('dataset.exported');
  t.true(exported.length >= 3 && exported.slice(-3).every((e) => JSON.stringify(e.details?.withheld) === JSON.stringify([gone.name])), 'each bag handed out records what it left out');

  // slidebank export of the release: the same, on disk.
  const after = await ok(t, origin, ['export', '--dataset', 'liver', '--version', '1', '--out', path.join(root, 'after')]);
  t.regex(after.stderr, new RegExp(`left out ${gone.name}: withdrawn since the release`));
  await checkServedWithout(t, path.join(root, 'after', 'liver_1'), trusted, kept, gone, 'slidebank export');

  // The partners take the release again and withdraw their copy: B by importing the new export, A by mirroring.
  const imported = await ok(t, importer, ['import', path.join(root, 'after', 'liver_1')]);
  t.regex(imported.stdout, /liver 1 from origin: 0 slide\(s\) added, 1 already here, 0 annotation\(s\) updated, 1 withdrawn/);
  t.regex(imported.stdout, new RegExp(`withdrawn ${gone.name}`));
  const mirrored = await ok(t, mirror, mirrorArgs);
  t.regex(mirrored.stdout, /liver 1: already here, up to date, 1 withdrawn at the source since/);
  for (const [partner, what] of [[importer, 'import'], [mirror, 'mirror']] as const) {
    t.is(await statusAt(partner, gone.name), 'withdrawn', `${what}: the copy is withdrawn`);
    t.is(await statusAt(partner, kept.name), 'published', `${what}: the other slide stays`);
    const events = (await partner.database.db.knex('audit_log').where({ action: 'slide.withdrawn' }).select('details')) as { details: unknown }[];
    t.is(events.length, 1, `${what}: the withdrawal is audited once`);
    t.regex(JSON.stringify(events[0]!.details), new RegExp(REASON));
  }
  t.regex((await ok(t, mirror, mirrorArgs)).stdout, /liver 1: already here, up to date\n/, 'a mirror that has withdrawn it already has nothing more to do');

  // A notice slipped into a bag by someone else (not in the signed tag manifest) withdraws nothing: the bag is refused.
  const forged = path.join(root, 'forged', 'liver_1');
  await cp(path.join(root, 'before', 'liver_1'), forged, { recursive: true });
  await writeFile(path.join(forged, NOTICE), JSON.stringify({ schemaVersion: 1, withdrawn: [{ name: kept.name, sha256: '0'.repeat(64), reason: 'forged', withdrawnAt: null }] }));
  const refused = await cli(t, importer, ['import', forged]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, new RegExp(`${NOTICE} is not listed in tagmanifest-sha256\\.txt, so the signature does not vouch for it`));
  t.is(await statusAt(importer, kept.name), 'published');
});
