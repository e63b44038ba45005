import type { LoadedConfig } from './load.js';
import { maskDatabaseUrl } from './database-url.js';

const SECRET_KEY = /(secret|password|token|privateKey)$/i;

export interface ConfigEntry {
  key: string;
  value: unknown;
  source: string;
}

/** The effective configuration, key by key in sorted order, with secrets masked. */
export function effectiveConfig({ config, sources }: LoadedConfig): ConfigEntry[] {
  return [...sources.keys()].sort().map((key) => {
    const raw = key === 'databaseUrl' ? config.database.url : valueAt(config, key);
    // Any URL may carry user:password (DATABASE_URL, mail.smtp.url); mask that part wherever it appears.
    const value = typeof raw === 'string' ? maskDatabaseUrl(raw) : raw;
    return { key, value: SECRET_KEY.test(key) && value !== '' ? '****' : maskNested(value), source: sources.get(key) ?? '' };
  });
}

/** Secrets inside lists of objects (auth.oidc.providers' clientSecret) are masked too. */
function maskNested(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(maskNested);
  if (typeof value !== 'object' || value === null) return value;
  return Object.fromEntries(Object.entries(value).map(([name, inner]) => [name, SECRET_KEY.test(name) && inner !== '' ? '****' : maskNested(inner)]));
}

function valueAt(config: object, key: string): unknown {
  let node: unknown = config;
  for (const part of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  return node;
}
