/**
 * Environment variables for configuration keys: `PORT` and `DATABASE_URL` by
 * their usual names, every other key as `SLIDEBANK_` plus its path in
 * SCREAMING_SNAKE_CASE (`http.shutdownTimeoutSeconds` →
 * `SLIDEBANK_HTTP_SHUTDOWN_TIMEOUT_SECONDS`).
 */

const WELL_KNOWN: Record<string, string> = {
  port: 'PORT',
  databaseUrl: 'DATABASE_URL',
};

/** `SLIDEBANK_*` variables that steer the process or the tests rather than name a key. */
export const NON_CONFIG_VARIABLES = new Set([
  'SLIDEBANK_CONFIG_DIR',
  'SLIDEBANK_REQUIRE_FIXTURES',
  'SLIDEBANK_FIXTURES_DIR',
  // `npm run build:native` fails instead of warning when the scaled-JPEG addon cannot be built (CI).
  'SLIDEBANK_REQUIRE_NATIVE',
  // `slidebank fetch` reads these for its options.
  'SLIDEBANK_SERVER',
  'SLIDEBANK_TOKEN',
  'SLIDEBANK_FETCH_PARALLEL',
  // `slidebank mirror` reads these for its options.
  'SLIDEBANK_MIRROR_FROM',
  'SLIDEBANK_MIRROR_TOKEN',
]);

export function envNameFor(keyPath: string): string {
  const known = WELL_KNOWN[keyPath];
  if (known !== undefined) return known;
  const snake = keyPath
    .split('.')
    .map((part) => part.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase())
    .join('_');
  return `SLIDEBANK_${snake}`;
}

/** Turn the variable's text into the type the key's default has; leave it alone when it does not fit, so validation names it. */
export function coerceEnvValue(text: string, like: unknown): unknown {
  if (typeof like === 'number') {
    const trimmed = text.trim();
    return /^-?\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : text;
  }
  if (typeof like === 'boolean') {
    const lower = text.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(lower)) return true;
    if (['false', '0', 'no', 'off'].includes(lower)) return false;
    return text;
  }
  return text;
}
