import { mkdtemp, writeFile, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { loadConfig, envNameFor } from '../../../server/config/index.js';
import { ExitCode, FatalError } from '../../../server/errors.js';
import { packageRoot } from '../../../server/package-info.js';

const shippedDefaults = path.join(packageRoot, 'config', 'default.json');

/** A config folder holding the shipped default.json plus the given layers. */
async function configDir(layers: Record<string, string> = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'slidebank-config-'));
  await writeFile(path.join(dir, 'default.json'), await readFile(shippedDefaults));
  for (const [name, text] of Object.entries(layers)) await writeFile(path.join(dir, name), text);
  return dir;
}

function failure(fn: () => unknown): FatalError {
  try {
    fn();
  } catch (error) {
    if (error instanceof FatalError) return error;
    throw error;
  }
  throw new Error('expected a FatalError');
}

test('defaults put every folder and the SQLite file under var/ of the working directory', async (t) => {
  const cwd = await mkdtemp(path.join(os.tmpdir(), 'slidebank-cwd-'));
  const dir = await configDir();
  const { config, sources } = loadConfig({ env: {}, cwd, configDir: dir });
  t.is(config.port, 8080);
  t.is(config.paths.data, path.join(cwd, 'var'));
  t.is(config.paths.slides, path.join(cwd, 'var', 'slides'));
  t.is(config.paths.quarantine, path.join(cwd, 'var', 'quarantine'));
  t.is(config.paths.cache, path.join(cwd, 'var', 'cache'));
  t.is(config.paths.outbox, path.join(cwd, 'var', 'outbox'));
  t.deepEqual(config.database.target, { client: 'sqlite', filename: path.join(cwd, 'var', 'slidebank.sqlite') });
  t.is(sources.get('port'), path.join(dir, 'default.json'));
  t.is(sources.get('databaseUrl'), 'derived from paths.data');
});

test('layers apply in order: default.json, <NODE_ENV>.json, environment, command-line options', async (t) => {
  const dir = await configDir({ 'production.json': JSON.stringify({ port: 9000, log: { level: 'warn' }, http: { trustProxy: true } }) });
  const { config, sources } = loadConfig({
    configDir: dir,
    cwd: '/srv/app',
    env: { NODE_ENV: 'production', PORT: '9100', SLIDEBANK_LOG_LEVEL: 'error', SLIDEBANK_PATHS_DATA: '/data/slidebank' },
    overrides: { port: '9200' },
    overrideNames: { port: '--port' },
  });
  t.is(config.port, 9200);
  t.is(sources.get('port'), 'option --port');
  t.is(config.log.level, 'error');
  t.is(sources.get('log.level'), 'env SLIDEBANK_LOG_LEVEL');
  t.true(config.http.trustProxy);
  t.is(sources.get('http.trustProxy'), path.join(dir, 'production.json'));
  t.is(config.paths.slides, '/data/slidebank/slides', 'sub-folders follow the data folder');
  t.is(config.database.url, 'sqlite:/data/slidebank/slidebank.sqlite');
});

test('a missing <NODE_ENV>.json is not an error', async (t) => {
  const { config } = loadConfig({ configDir: await configDir(), env: { NODE_ENV: 'staging' } });
  t.is(config.port, 8080);
});

test('environment variable names derive from key paths', (t) => {
  t.is(envNameFor('port'), 'PORT');
  t.is(envNameFor('databaseUrl'), 'DATABASE_URL');
  t.is(envNameFor('http.shutdownTimeoutSeconds'), 'SLIDEBANK_HTTP_SHUTDOWN_TIMEOUT_SECONDS');
  t.is(envNameFor('paths.quarantine'), 'SLIDEBANK_PATHS_QUARANTINE');
});

test('environment values are coerced to the type of the key', async (t) => {
  const { config } = loadConfig({
    configDir: await configDir(),
    env: { SLIDEBANK_HTTP_TRUST_PROXY: 'yes', SLIDEBANK_DATABASE_CONNECT_TIMEOUT_SECONDS: '2.5' },
  });
  t.true(config.http.trustProxy);
  t.is(config.database.connectTimeoutSeconds, 2.5);
});

test('every bad value is reported at once, each naming its key and where it came from', async (t) => {
  const dir = await configDir({ 'test.json': JSON.stringify({ http: { bodyLimit: 'huge' }, colour: 'blue' }) });
  const error = failure(() =>
    loadConfig({
      configDir: dir,
      env: { NODE_ENV: 'test', PORT: 'eighty', SLIDEBANK_LOG_LEVEL: 'loud', SLIDEBANK_HTTP_TRUST_PROXY: 'perhaps', SLIDEBANK_TYPO: '1' },
    }),
  );
  t.is(error.exitCode, ExitCode.config);
  const lines = error.message.split('\n').slice(1);
  t.is(lines.length, 6, error.message);
  t.regex(error.message, /colour \(.*test\.json\): unknown key/);
  t.regex(error.message, /SLIDEBANK_TYPO \(env\): unknown setting/);
  t.regex(error.message, /port \(env PORT\): must be a whole number from 0 to 65535.*got "eighty"/);
  t.regex(error.message, /log\.level \(env SLIDEBANK_LOG_LEVEL\): must be one of .*got "loud"/);
  t.regex(error.message, /http\.trustProxy \(env SLIDEBANK_HTTP_TRUST_PROXY\): must be true or false, got "perhaps"/);
  t.regex(error.message, /http\.bodyLimit \(.*test\.json\): must be a size such as 512kb or 1mb, got "huge"/);
});

test('a port out of range is refused', async (t) => {
  const dir = await configDir();
  const error = failure(() => loadConfig({ configDir: dir, env: { PORT: '70000' } }));
  t.regex(error.message, /port \(env PORT\): must be a whole number from 0 to 65535.*got 70000/);
});

test('a malformed DATABASE_URL is a configuration error that says which forms work', async (t) => {
  const dir = await configDir();
  for (const [url, pattern] of [
    ['postgres://u@h/db', /unsupported scheme "postgres:"/],
    ['mariadb://root@127.0.0.1:3306', /must name exactly one database/],
    ['mariadb://root@127.0.0.1:99999/db', /not a valid URL|invalid port/],
    ['sqlite:', /names no database file/],
    ['just-a-path.sqlite', /is not a URL/],
  ] as const) {
    const error = failure(() => loadConfig({ configDir: dir, env: { DATABASE_URL: url } }));
    t.is(error.exitCode, ExitCode.config);
    t.regex(error.message, /databaseUrl \(env DATABASE_URL\)/);
    t.regex(error.message, pattern, url);
  }
});

test('a config file that is not JSON is named with the parser message', async (t) => {
  const dir = await configDir({ 'production.json': '{ "port": 80,, }' });
  const error = failure(() => loadConfig({ configDir: dir, env: { NODE_ENV: 'production' } }));
  t.is(error.exitCode, ExitCode.config);
  t.regex(error.message, /production\.json: not valid JSON \(/);
});

test('a missing default.json is reported, not thrown as ENOENT', async (t) => {
  const error = failure(() => loadConfig({ configDir: path.join(os.tmpdir(), 'no-such-config-dir'), env: {} }));
  t.regex(error.message, /default\.json: not found/);
});

test('SLIDEBANK_CONFIG_DIR, SLIDEBANK_REQUIRE_FIXTURES and SLIDEBANK_REQUIRE_NATIVE are not mistaken for settings', async (t) => {
  const dir = await configDir();
  const { config } = loadConfig({ env: { SLIDEBANK_CONFIG_DIR: dir, SLIDEBANK_REQUIRE_FIXTURES: '1', SLIDEBANK_REQUIRE_NATIVE: '1' } });
  t.is(config.port, 8080);
});
