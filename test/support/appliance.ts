import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { collect, freePort, runCli, spawnCli, waitForHttp, type CliResult } from './cli.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export interface Appliance {
  /** A temporary folder of its own; the data folder is `<root>/var`. */
  root: string;
  database: TestDatabase;
  base: string;
  env: Record<string, string>;
  /** `url(path)`, as the HTTP clients of test/support/accounts.ts take it. */
  site: { url(pathname: string): string };
  /** Run a CLI command against this appliance; the test fails unless it exits 0. */
  cli(args: string[], extra?: Record<string, string>): Promise<CliResult>;
  /** Start `slidebank serve` as its own process and wait until /healthz answers; it is stopped when the test ends. */
  serve(): Promise<void>;
}

/**
 * The appliance as hospital IT runs it, for end-to-end tests: a test
 * database, a data folder, no demo data, and the server and CLI as separate
 * processes sharing them. `smtpUrl` sends mail to a test SMTP server.
 */
export async function appliance(t: ExecutionContext, { smtpUrl }: { smtpUrl?: string } = {}): Promise<Appliance> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'slidebank-e2e-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    DATABASE_URL: database.url,
    SLIDEBANK_PATHS_DATA: path.join(root, 'var'),
    SLIDEBANK_DEMO: '0',
    // No scheduled preprocessing mid-test: at a ten-minute mark it would start tissue masks for every slide.
    SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '',
    SLIDEBANK_MAIL_PUBLIC_URL: base,
    SLIDEBANK_AUTH_SESSION_SECRET: 'e2e-session-secret-of-at-least-32-characters',
    PORT: String(port),
    SLIDEBANK_HOST: '127.0.0.1',
    ...(smtpUrl ? { SLIDEBANK_MAIL_SMTP_URL: smtpUrl } : {}),
  };
  return {
    root,
    database,
    base,
    env,
    site: { url: (pathname) => `${base}${pathname}` },
    async cli(args, extra = {}) {
      const result = await runCli(args, { env: { ...env, ...extra }, timeoutMs: 120_000 });
      t.is(result.code, 0, `${args.join(' ')}: ${result.stderr}`);
      return result;
    },
    async serve() {
      const server = spawnCli(['serve'], { env });
      const stopped = collect(server, 600_000);
      t.teardown(async () => {
        if (server.exitCode === null) server.kill('SIGTERM');
        await stopped;
      });
      await waitForHttp(`${base}/healthz`, 60_000, server);
    },
  };
}
