import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline, Readable, Transform } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { bodyParser } from '@koa/bodyparser';
import test from 'ava';
import { stringify } from 'csv-stringify/sync';
import Koa, { type Middleware } from 'koa';
import { loadConfig } from '../../server/config/index.js';
import { createDownloadsService } from '../../server/downloads/index.js';
import { errorHandler } from '../../server/http/middleware/error-handler.js';
import { requestContext } from '../../server/http/middleware/request-context.js';
import { downloadRoutes } from '../../server/http/routes/downloads.js';
import { mountRoutes } from '../../server/http/route.js';
import { listen } from '../../server/http/server.js';
import { createIngestService } from '../../server/ingest/create.js';
import { packageRoot } from '../../server/package-info.js';
import { createCatalogService, type Services } from '../../server/services.js';
import { makeSlide } from '../support/slides.js';
import { collect, runCli, runCliInProcess, spawnCli } from '../support/cli.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';
import { RecordingAudit } from '../support/recording-audit.js';

/**
 * `slidebank fetch` against a server that publishes real (generated and
 * ingested) slides: interrupted by SIGKILL part-way through a slide, run
 * again to resume it with a Range request, and run a third time to find
 * everything verified. The server's accounts middleware is the test's
 * stand-in: one fixed bearer token is user 42 at L2; the routes' own guard
 * (L2) applies.
 */

const TOKEN = 'test-token-for-fetch-0123456789';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

interface Server {
  url: string;
  audit: RecordingAudit;
  /** Published slides with their files on disk. */
  slides: { id: number; name: string; file: string; xml: string; sha256: string }[];
  /** While true, file bodies trickle out at about 800 KB/s, so that a client can be stopped part-way. */
  slow: { on: boolean };
}

async function startServer(t: { teardown(fn: () => Promise<void> | void): void }): Promise<Server> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-fetch-server-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_INGEST_KEEP_ORIGINALS: 'false' },
  });
  const inbox = path.join(root, 'in');
  // Colon sorts first by name: it is the larger one, so that the first run is stopped inside it.
  await makeSlide({ width: 8000, height: 6000, seed: 21, out: inbox, name: 'case-colon', tileSize: 240 });
  await makeSlide({ width: 2400, height: 1800, seed: 22, out: inbox, name: 'case-liver', tileSize: 240 });
  for (const name of await readdir(inbox)) if (name.endsWith('.truth.json')) await rm(path.join(inbox, name));
  const row = { stain: 'H&E', marker: '', annotation_method: 'manual', dataset: 'fetch-test', collection_date: '2010', consent: '' };
  await writeFile(
    path.join(inbox, 'metadata.csv'),
    stringify(
      [
        { file: 'case-colon.svs', organ: 'Colon', histology: 'ADC', differentiation: 'WD', ...row },
        { file: 'case-liver.svs', organ: 'Liver', histology: 'HCC', differentiation: 'MD', ...row },
      ],
      { header: true },
    ),
  );
  const { log } = memoryLogger('warn');
  const { results } = await createIngestService(config, database.db, log).ingestFolder(inbox, { source: 'cli' });
  if (results.some((r) => r.outcome !== 'published')) throw new Error(`ingest: ${results.map((r) => `${r.outcome} ${r.reason}`).join('; ')}`);
  const rows = (await database.db.knex('slides').orderBy('name')) as { id: number; name: string; file_path: string; annotation_path: string; sha256: string }[];

  const audit = new RecordingAudit();
  const downloads = createDownloadsService(config, database.db, log, { catalog: createCatalogService(config, database.db), audit });
  const slow = { on: false };

  /** The test's stand-in for the accounts middleware: one token, user 42 at L2; anything else is anonymous. */
  const standInAccounts: Middleware = (ctx, next) => {
    if (ctx.get('Authorization') === `Bearer ${TOKEN}`) ctx.state.requester = { user: { id: 42 }, level: 'L2', roles: [], via: 'token' };
    return next();
  };
  /** Test-only: slows file bodies down while `slow.on`. */
  const trickle: Middleware = async (ctx, next) => {
    await next();
    if (!slow.on || !(ctx.body instanceof Readable)) return;
    const slowed = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        (async () => {
          for (let i = 0; i < chunk.length; i += 16 * 1024) {
            this.push(chunk.subarray(i, i + 16 * 1024));
            await sleep(20);
          }
        })().then(() => done(), done);
      },
    });
    pipeline(ctx.body, slowed, () => undefined);
    ctx.body = slowed;
  };

  const app = new Koa();
  app.silent = true;
  app.use(requestContext(log));
  app.use(errorHandler());
  app.use(bodyParser({ enableTypes: ['json'] }));
  app.use(trickle);
  app.context.services = { downloads } as unknown as Services;
  app.use(standInAccounts);
  const router = mountRoutes(downloadRoutes, { operatorAddress: () => false });
  app.use(router.routes());
  app.use(router.allowedMethods());
  const server = await listen(app, { port: 0, host: '127.0.0.1', log });
  t.teardown(() => server.close(1000).then(() => undefined));
  return {
    url: server.url,
    audit,
    slow,
    slides: rows.map((r) => ({
      id: r.id,
      name: r.name,
      file: path.join(config.paths.slides, r.file_path),
      xml: path.join(config.paths.slides, r.annotation_path),
      sha256: r.sha256,
    })),
  };
}

/** Every file under `dir`, relative, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

test(`fetch: interrupted by SIGKILL inside a slide, resumed with a Range to completion, then all skipped as verified (${testDialect})`, async (t) => {
  const server = await startServer(t);
  const [colon, liver] = server.slides;
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-fetch-out-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const args = ['fetch', '--server', server.url, '--filter', 'dataset=fetch-test', '--out', out, '--parallel', '1'];
  const env = { SLIDEBANK_TOKEN: TOKEN };

  // 1. Slowly, then killed once part of the colon slide has arrived.
  server.slow.on = true;
  const child = spawnCli(args, { env });
  const finished = collect(child, 60_000);
  const part = path.join(out, 'slides', `${colon!.name}.svs.part`);
  let partial = 0;
  for (let i = 0; i < 600 && partial < 300_000; i++) {
    await sleep(50);
    partial = (await stat(part).catch(() => undefined))?.size ?? 0;
  }
  t.true(partial >= 300_000, `the first run got ${partial} bytes into the colon slide`);
  child.kill('SIGKILL');
  const killed = await finished;
  t.is(killed.signal, 'SIGKILL');
  server.slow.on = false;
  const kept = (await stat(part)).size;
  t.true(kept >= partial && kept < (await stat(colon!.file)).size, 'a partial file is left');
  const state = JSON.parse(await readFile(path.join(out, '.slidebank-fetch.json'), 'utf8'));
  t.is(state.files[`slides/${colon!.name}.svs`].etag, `"sha256-${colon!.sha256}"`, 'the ETag to resume under is remembered');

  // 2. Again, at full speed: the colon slide resumes where it stopped, the rest is fetched whole.
  const resumed = await runCli(args, { env, timeoutMs: 120_000 });
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /4 file\(s\) in .*: 3 downloaded, 1 resumed, 0 already verified, 0 failed/);
  t.deepEqual(await listFiles(out), [
    '.slidebank-fetch.json',
    `annotations/${colon!.name}.xml`,
    `annotations/${liver!.name}.xml`,
    `slides/${colon!.name}.svs`,
    `slides/${liver!.name}.svs`,
  ].sort());
  for (const slide of [colon!, liver!]) {
    const got = await readFile(path.join(out, 'slides', `${slide.name}.svs`));
    t.is(sha256(got), slide.sha256, `${slide.name}: the checksum of the catalog`);
    t.true(got.equals(await readFile(slide.file)));
    t.true((await readFile(path.join(out, 'annotations', `${slide.name}.xml`))).equals(await readFile(slide.xml)));
  }
  const colonDeliveries = server.audit.of('download.slide').filter((e) => e.subjectId === colon!.id);
  const resume = colonDeliveries.at(-1)!;
  t.like(resume.details, { status: 206, range: `${kept}-${(await stat(colon!.file)).size - 1}`, complete: true }, 'the resume asked for the rest only');
  t.true(colonDeliveries.slice(0, -1).every((e) => e.details!.complete === false), 'the killed run is audited as cut off');
  t.true(server.audit.events.every((e) => e.actorId === 42));

  // 3. A third run has nothing to do and asks the server for no file.
  const before = server.audit.events.length;
  const again = await runCli(args, { env });
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /0 downloaded, 0 resumed, 4 already verified, 0 failed; 0\.0 MB received/);
  t.is(server.audit.events.length, before);
});

test('fetch --manifest: a TSV manifest with one wrong checksum: the others are verified, that one is listed as failed, exit 1', async (t) => {
  const server = await startServer(t);
  const [colon, liver] = server.slides;
  const manifest = await fetch(`${server.url}/api/downloads/manifest?slides=${colon!.id},${liver!.id}&format=tsv`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  t.is(manifest.status, 200);
  const tampered = (await manifest.text()).replace(liver!.sha256, '0'.repeat(64));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-fetch-out-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'manifest.tsv');
  await writeFile(file, tampered);
  const out = path.join(dir, 'out');
  const result = await runCli(['fetch', '--server', server.url, '--manifest', file, '--out', out], { env: { SLIDEBANK_TOKEN: TOKEN } });
  t.is(result.code, 1);
  t.regex(result.stdout, /4 file\(s\) in .*: 3 downloaded, 0 resumed, 0 already verified, 1 failed/);
  t.regex(result.stderr, new RegExp(`1 file\\(s\\) failed:\\n  slides/${liver!.name}\\.svs: the server's file has SHA-256 ${liver!.sha256}, not the manifest's`));
  t.deepEqual((await listFiles(out)).filter((f) => f.startsWith('slides/')), [`slides/${colon!.name}.svs`]);
});

test('fetch: a wrong token, a missing manifest and missing options are clear errors', async (t) => {
  const server = await startServer(t);
  const out = await mkdtemp(path.join(os.tmpdir(), 'slidebank-fetch-out-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const refused = await runCli(['fetch', '--server', server.url, '--token', 'wrong', '--filter', 'organ=CO', '--out', out]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /the server refused the manifest \(401\): Log in \(or send a personal access token\) to use this/, 'the server\'s own message');

  const noToken = await runCliInProcess(['fetch', '--server', server.url, '--filter', 'organ=CO', '--out', out]);
  t.is(noToken.code, 2);
  t.regex(noToken.stderr, /--token \(or SLIDEBANK_TOKEN\) is required/);

  const both = await runCliInProcess(['fetch', '--server', server.url, '--filter', 'organ=CO', '--manifest', 'x.json', '--out', out], { env: { SLIDEBANK_TOKEN: TOKEN } });
  t.is(both.code, 2);
  t.regex(both.stderr, /either --manifest FILE or --filter EXPR/);

  const missing = await runCliInProcess(['fetch', '--server', server.url, '--manifest', path.join(out, 'nope.json'), '--out', out], { env: { SLIDEBANK_TOKEN: TOKEN } });
  t.is(missing.code, 2);
  t.regex(missing.stderr, /nope\.json: no such file/);

  const unreachable = await runCli(['fetch', '--server', 'http://127.0.0.1:9', '--filter', 'organ=CO', '--out', out], { env: { SLIDEBANK_TOKEN: TOKEN } });
  t.is(unreachable.code, 4);
  t.regex(unreachable.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
});
