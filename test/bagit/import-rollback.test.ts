import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { generateSigningKey, signingKeyFromPem, writeBag } from '../../server/bagit/index.js';
import { loadConfig } from '../../server/config/index.js';
import { createImportService, ImportError, METADATA_SCHEMA_VERSION, type BagMetadata } from '../../server/datasets/index.js';
import { packageRoot } from '../../server/package-info.js';
import { createMigratedTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger } from '../support/logs.js';

/**
 * A failure after the files were copied (here: a trusted partner's bag whose
 * "slide" is no slide) removes the copies and leaves the catalog untouched.
 */
test(`an import that fails after copying leaves neither files nor rows behind, on ${testDialect}`, async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-import-rollback-'));
  const database = await createMigratedTestDatabase();
  t.teardown(async () => {
    await database.drop();
    await rm(root, { recursive: true, force: true });
  });
  const partner = generateSigningKey();
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: { DATABASE_URL: database.url, SLIDEBANK_PATHS_DATA: path.join(root, 'var'), SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify([{ name: 'partner', publicKey: partner.publicKey }]) },
  });
  await mkdir(config.paths.slides, { recursive: true });

  const bytes = Buffer.from('not a TIFF at all, but its checksum is right');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const source = path.join(root, 'fake.svs');
  await writeFile(source, bytes);
  const name = 'SB1-LV-HCC-HE-MD-00-00-0000000000';
  const metadata: BagMetadata = {
    schemaVersion: METADATA_SCHEMA_VERSION,
    dataset: 'fake',
    version: '1',
    since: null,
    releasedAt: new Date().toISOString(),
    source: { site: 'Partner', url: 'http://partner.example', publicKey: partner.publicKey },
    license: 'CC-BY-NC-4.0',
    slides: [
      {
        name,
        file: `slides/${name}.svs`,
        size: bytes.length,
        sha256,
        annotation: null,
        included: { slide: true, annotation: false },
        metadata: { organ: 'LV', histology: 'HCC', stain: 'HE', marker: null, differentiation: 'MD', pathologyInfo: null, annotationMethod: 'M', dataset: 'fake' },
        facts: { vendor: 'aperio', width: 1, height: 1, levelCount: 1, mppX: null, mppY: null, objectivePower: null },
        annotationSummary: null,
      },
    ],
    withdrawals: [],
  };
  const bag = path.join(root, 'bag');
  await writeBag(
    bag,
    [
      { path: `slides/${name}.svs`, source: { file: source, sha256, size: bytes.length } },
      { path: 'metadata.json', source: { content: JSON.stringify(metadata) } },
    ],
    { info: [['Source-Organization', 'Partner']], sign: { key: signingKeyFromPem(partner.privatePem), signer: 'Partner' } },
  );

  const { log } = memoryLogger();
  const error = await t.throwsAsync(createImportService(config, database.db, log).import([bag]));
  t.true(error instanceof ImportError);
  t.regex(error.message, new RegExp(`data/slides/${name}\\.svs is not a readable slide`));
  t.deepEqual(await readdir(config.paths.slides), [], 'the copy under a temporary name is gone');
  for (const table of ['slides', 'slide_provenance', 'dataset_imports']) {
    t.is(Number(((await database.db.knex(table).count({ n: '*' })) as { n: number | string }[])[0]!.n), 0, `${table} is empty`);
  }
});
