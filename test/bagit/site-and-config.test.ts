import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { generateSigningKey, keyFingerprint } from '../../server/bagit/index.js';
import { loadConfig } from '../../server/config/index.js';
import { ensureSiteKey, parseSize, SITE_KEY_FILE } from '../../server/datasets/index.js';
import { FatalError } from '../../server/errors.js';
import { packageRoot } from '../../server/package-info.js';

const configDir = path.join(packageRoot, 'config');

test('the site key is made once, readable by its owner only, and read back the same', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-sitekey-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const first = ensureSiteKey(dir);
  t.true(first.created);
  t.is((await stat(path.join(dir, SITE_KEY_FILE))).mode & 0o777, 0o600);
  const again = ensureSiteKey(dir);
  t.false(again.created);
  t.is(again.publicKey, first.publicKey);
  t.is(Buffer.from(first.publicKey, 'base64').length, 32);
  t.regex(keyFingerprint(first.publicKey), /^[0-9a-f]{16}$/);
  t.deepEqual(await readdir(dir), [SITE_KEY_FILE], 'no temporary file is left');
});

test('a damaged site key file is reported with what to do, not replaced', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-sitekey-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, SITE_KEY_FILE), 'not a key', { mode: 0o600 });
  const error = t.throws(() => ensureSiteKey(dir));
  t.regex(error.message, /is not an Ed25519 private key .*move it away to have a new one made/);
  t.is(await readFile(path.join(dir, SITE_KEY_FILE), 'utf8'), 'not a key');
});

test('mirror.trustedKeys comes from the environment as JSON, and a bad key is named', (t) => {
  const { publicKey } = generateSigningKey();
  const { config } = loadConfig({ configDir, env: { SLIDEBANK_MIRROR_TRUSTED_KEYS: JSON.stringify([{ name: 'Partner', publicKey }]), SLIDEBANK_SITE_NAME: 'Origin' } });
  t.deepEqual(config.mirror.trustedKeys, [{ name: 'Partner', publicKey }]);
  t.is(config.site.name, 'Origin');
  t.is(config.site.publicUrl, '');

  const error = t.throws(() => loadConfig({ configDir, env: { SLIDEBANK_MIRROR_TRUSTED_KEYS: '[{"name":"Partner","publicKey":"abc"}]', SLIDEBANK_SITE_PUBLIC_URL: 'ftp://x' } }));
  t.true(error instanceof FatalError);
  t.regex(error.message, /mirror\.trustedKeys\.0\.publicKey.*: must be an Ed25519 public key/);
  t.regex(error.message, /site\.publicUrl .*must be empty or an http/);
  t.regex(t.throws(() => loadConfig({ configDir, env: { SLIDEBANK_MIRROR_TRUSTED_KEYS: 'not json' } })).message, /mirror\.trustedKeys .*must be a list of \{"name", "publicKey"\}/);
});

test('split sizes read with binary units', (t) => {
  t.is(parseSize('500G'), 500 * 2 ** 30);
  t.is(parseSize('1.5T'), 1.5 * 2 ** 40);
  t.is(parseSize('200M'), 200 * 2 ** 20);
  t.is(parseSize('4096'), 4096);
  t.is(parseSize('2GiB'), 2 * 2 ** 30);
  t.throws(() => parseSize('lots'), { message: /"lots" is not a size such as 500G/ });
  t.throws(() => parseSize('0'), { message: /too small/ });
});
