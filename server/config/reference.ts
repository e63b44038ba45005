import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { CONFIG_DESCRIPTIONS, type ConfigKey } from './descriptions.js';
import { envNameFor } from './env.js';
import { configSchema } from './schema.js';

/** One configuration key as the reference documents it. */
export interface ConfigKeyReference {
  key: string;
  env: string;
  default: unknown;
  /** What values are accepted, from the schema: "integer 0–65535", "one of native, openslide, custom". */
  accepts: string;
  description: string;
}

interface JsonSchema {
  type?: string | string[];
  description?: string;
  properties?: Record<string, JsonSchema>;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  const?: unknown;
}

/** Every key of the configuration schema, in schema order, with its variable, default and description. */
export function configurationReference(configDir: string): ConfigKeyReference[] {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const defaults = JSON.parse(readFileSync(path.join(configDir, 'default.json'), 'utf8')) as Record<string, unknown>;
  const keys: ConfigKeyReference[] = [];
  const walk = (node: JsonSchema, prefix: string[]) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const at = [...prefix, name];
      if (child.type === 'object' && child.properties) {
        walk(child, at);
        continue;
      }
      const key = at.join('.');
      keys.push({ key, env: envNameFor(key), default: valueAt(defaults, at), accepts: accepts(child), description: CONFIG_DESCRIPTIONS[key as ConfigKey] ?? '' });
    }
  };
  walk(schema, []);
  return keys;
}

function valueAt(tree: Record<string, unknown>, at: string[]): unknown {
  let node: unknown = tree;
  for (const part of at) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}

function accepts(node: JsonSchema): string {
  if (node.anyOf) return node.anyOf.map(accepts).join(' or ');
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum) return `one of ${node.enum.map((value) => JSON.stringify(value)).join(', ')}`;
  const type = Array.isArray(node.type) ? node.type.join(' or ') : (node.type ?? 'any');
  if (type === 'array') return `list of ${node.items ? accepts(node.items) : 'values'}`;
  if ((type === 'integer' || type === 'number') && (node.minimum !== undefined || node.maximum !== undefined)) {
    return `${type} ${node.minimum ?? ''}–${node.maximum ?? ''}`.replace(/ –(\d)/, ' ≤ $1').replace(/(\d)–$/, '≥ $1');
  }
  return type;
}

/** The reference as the Markdown page `docs/configuration.md`. */
export function configurationMarkdown(configDir: string): string {
  const keys = configurationReference(configDir);
  const sections = new Map<string, ConfigKeyReference[]>();
  for (const entry of keys) {
    const section = entry.key.includes('.') ? entry.key.split('.')[0]! : 'server';
    sections.set(section, [...(sections.get(section) ?? []), entry]);
  }
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    '# Configuration',
    '',
    '<!-- Generated from server/config/schema.ts and config/default.json by `npm run docs`; a test fails when it is out of date. -->',
    '',
    'Values are layered, later wins: `config/default.json` → `config/<NODE_ENV>.json` (optional) →',
    'environment variables → command-line options. `SLIDEBANK_CONFIG_DIR` points at another folder',
    'holding these files (for example `/etc/slidebank`). Every key can also be set by its environment',
    'variable; lists are JSON or comma-separated where the key says so. Unknown keys, unknown',
    '`SLIDEBANK_*` variables and wrong types stop the start with every problem listed at once (exit',
    'code 2). `node bin/slidebank.js config check` prints the effective value of every key and where it',
    'came from, with secrets masked.',
    '',
  ];
  for (const [section, entries] of sections) {
    lines.push(`## ${section}`, '', '| key | environment | default | accepts | meaning |', '| --- | --- | --- | --- | --- |');
    for (const entry of entries) {
      lines.push(`| \`${entry.key}\` | \`${entry.env}\` | \`${cell(JSON.stringify(entry.default) ?? '')}\` | ${cell(entry.accepts)} | ${cell(entry.description)} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
