import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { ExitCode, FatalError } from '../errors.js';
import { packageRoot } from '../package-info.js';
import { DatabaseUrlError, parseDatabaseUrl, type DatabaseTarget } from './database-url.js';
import { coerceEnvValue, envNameFor, NON_CONFIG_VARIABLES } from './env.js';
import { configSchema, type ConfigFile } from './schema.js';

/** The validated configuration with every path made absolute and the database target parsed. */
export interface Config extends Omit<ConfigFile, 'databaseUrl' | 'database' | 'paths'> {
  database: ConfigFile['database'] & { url: string; target: DatabaseTarget };
  paths: ConfigFile['paths'];
}

export interface LoadedConfig {
  config: Config;
  /** Where each key's value came from: `config/default.json`, `env PORT`, `option --port`. */
  sources: ReadonlyMap<string, string>;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Folder holding default.json and <NODE_ENV>.json; default `$SLIDEBANK_CONFIG_DIR` or the package's `config/`. */
  configDir?: string;
  cwd?: string;
  /** Values from command-line options, by key path (`port`, `databaseUrl`). */
  overrides?: Record<string, unknown>;
  /** How an override is named in messages, by key path (`--port`). */
  overrideNames?: Record<string, string>;
  /** `SLIDEBANK_*` variables the running command reads for its own options (`SLIDEBANK_USER_PASSWORD`); not settings. */
  commandVariables?: readonly string[];
}

type Tree = { [key: string]: unknown };
const isTree = (value: unknown): value is Tree => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Layer `config/default.json`, `config/<NODE_ENV>.json`, environment variables
 * and command-line overrides, then validate. Every problem is collected and
 * reported at once in a FatalError with exit code 2.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const configDir = path.resolve(cwd, options.configDir ?? env.SLIDEBANK_CONFIG_DIR ?? path.join(packageRoot, 'config'));
  const problems: string[] = [];
  const sources = new Map<string, string>();

  const defaultsFile = path.join(configDir, 'default.json');
  const defaults = readJson(defaultsFile, cwd);
  if (!isTree(defaults)) throw configError([`${relative(defaultsFile, cwd)}: must hold a JSON object`]);
  const leaves = leafPaths(defaults);
  const merged = structuredClone(defaults);
  for (const key of leaves.keys()) sources.set(key, relative(defaultsFile, cwd));

  const nodeEnv = env.NODE_ENV;
  if (nodeEnv !== undefined && nodeEnv !== '') {
    const envFile = path.join(configDir, `${nodeEnv}.json`);
    if (existsSync(envFile)) {
      const layer = readJson(envFile, cwd);
      const name = relative(envFile, cwd);
      if (!isTree(layer)) problems.push(`${name}: must hold a JSON object`);
      else {
        for (const [key, value] of leafPaths(layer)) {
          if (!leaves.has(key)) problems.push(`${key} (${name}): unknown key`);
          else {
            setPath(merged, key, value);
            sources.set(key, name);
          }
        }
      }
    }
  }

  const known = new Map([...leaves.keys()].map((key) => [envNameFor(key), key]));
  for (const [name, text] of Object.entries(env)) {
    if (text === undefined) continue;
    const key = known.get(name);
    if (key !== undefined) {
      setPath(merged, key, coerceEnvValue(text, leaves.get(key)));
      sources.set(key, `env ${name}`);
    } else if (name.startsWith('SLIDEBANK_') && !NON_CONFIG_VARIABLES.has(name) && !options.commandVariables?.includes(name)) {
      problems.push(`${name} (env): unknown setting; the README lists the SLIDEBANK_* variables`);
    }
  }

  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue;
    if (!leaves.has(key)) throw new Error(`config override for unknown key ${key}`);
    setPath(merged, key, coerceEnvValue(String(value), leaves.get(key)));
    sources.set(key, `option ${options.overrideNames?.[key] ?? key}`);
  }

  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, merged, sources)));

  // The URL is checked even when other keys failed, so that one run reports everything.
  const dataDir = path.resolve(cwd, String(getPath(merged, 'paths.data') ?? 'var'));
  const givenUrl = getPath(merged, 'databaseUrl');
  const url = givenUrl === '' ? `sqlite:${path.join(dataDir, 'slidebank.sqlite')}` : givenUrl;
  let target: DatabaseTarget | undefined;
  if (typeof url === 'string') {
    try {
      target = parseDatabaseUrl(url, cwd);
    } catch (error) {
      if (!(error instanceof DatabaseUrlError)) throw error;
      problems.push(`databaseUrl (${sources.get('databaseUrl')}): ${error.message}`);
    }
  }
  if (problems.length > 0 || !parsed.success || target === undefined || typeof url !== 'string') throw configError(problems);
  if (givenUrl === '') sources.set('databaseUrl', 'derived from paths.data');

  const file = parsed.data;
  const under = (p: string) => path.resolve(dataDir, p);
  const { databaseUrl: _omitted, ...rest } = file;
  const config: Config = {
    ...rest,
    database: { ...file.database, url, target },
    paths: {
      data: dataDir,
      slides: under(file.paths.slides),
      quarantine: under(file.paths.quarantine),
      cache: under(file.paths.cache),
      outbox: under(file.paths.outbox),
      originals: under(file.paths.originals),
      thumbnails: under(file.paths.thumbnails),
      inbox: under(file.paths.inbox),
    },
    ingest: { ...file.ingest, vocabularies: path.resolve(configDir, file.ingest.vocabularies) },
  };
  return { config, sources };
}

function configError(problems: string[]): FatalError {
  const lines = problems.map((p) => `  - ${p}`).join('\n');
  return new FatalError(ExitCode.config, `configuration is invalid:\n${lines}`);
}

function readJson(file: string, cwd: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (error as Error).message;
    throw configError([`${relative(file, cwd)}: ${reason}`]);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw configError([`${relative(file, cwd)}: not valid JSON (${(error as Error).message})`]);
  }
}

function describeIssue(issue: z.core.$ZodIssue, merged: Tree, sources: Map<string, string>): string {
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${key ? `${key}.` : ''}${k}: unknown key`).join('; ');
  }
  // A field inside a list (auth.oidc.providers.1.issuer) came from where the list came from.
  const source = sources.get(key) ?? sources.get(issue.path.slice(0, issue.path.findIndex((part) => typeof part === 'number')).join('.'));
  const value = getPath(merged, key);
  const got = value === undefined ? 'it is missing' : `got ${JSON.stringify(value)}`;
  return `${key}${source ? ` (${source})` : ''}: ${issue.message}, ${got}`;
}

function leafPaths(tree: Tree, prefix = ''): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [key, value] of Object.entries(tree)) {
    const full = prefix ? `${prefix}.${key}` : key;
    if (isTree(value)) for (const [k, v] of leafPaths(value, full)) out.set(k, v);
    else out.set(full, value);
  }
  return out;
}

function setPath(tree: Tree, keyPath: string, value: unknown): void {
  const parts = keyPath.split('.');
  let node = tree;
  for (const part of parts.slice(0, -1)) {
    if (!isTree(node[part])) node[part] = {};
    node = node[part] as Tree;
  }
  node[parts[parts.length - 1]!] = value;
}

function getPath(tree: Tree, keyPath: string): unknown {
  let node: unknown = tree;
  for (const part of keyPath.split('.')) {
    // A list given as JSON text (an environment variable) is read as the list it holds.
    if (typeof node === 'string' && node.startsWith('[')) node = parseJson(node);
    node = Array.isArray(node) ? (node as unknown[])[Number(part)] : isTree(node) ? node[part] : undefined;
  }
  return node;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function relative(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel.startsWith('..') ? file : rel;
}
