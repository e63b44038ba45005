import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImplementationFn } from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { packageRoot } from '../../server/package-info.js';
import { testNeeding } from './requirements.js';

/**
 * Debian's chromium driven by playwright-core (which downloads no browser).
 * CI installs it with apt.
 */
export const CHROMIUM = '/usr/bin/chromium';
export const artifactsDir = path.join(packageRoot, 'test', 'artifacts');

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
}

async function probe(): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} is missing: apt-get install chromium`;
  try {
    const browser = await launchChromium();
    await browser.close();
    return null;
  } catch (error) {
    return `${CHROMIUM} does not start: ${(error as Error).message.split('\n')[0]}`;
  }
}

const problem = await probe();

/** A browser test, one at a time: see `testNeeding` (./requirements.ts) for where it skips and where it fails. */
export function browserTest(title: string, implementation: ImplementationFn<[]>): void {
  testNeeding([problem], title, implementation, { serial: true });
}

/**
 * The web portal as built by `npm run build` (which `npm ci` runs through
 * `prepare`). A checkout without web/dist gets it built here, so the test also
 * runs straight after editing the web sources — it then tests the sources as
 * they are now. A stale web/dist is not detected: run `npm run build:web`.
 */
export async function ensureWebBuilt(): Promise<void> {
  if (existsSync(path.join(packageRoot, 'web', 'dist', 'index.html'))) return;
  await promisify(execFile)(process.execPath, [path.join(packageRoot, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', 'web', '--logLevel', 'warn'], {
    cwd: packageRoot,
    maxBuffer: 16 * 1024 * 1024,
  });
}

/**
 * Open `next` on the portal at `base` logged out, which sends the page to the
 * login form; log in there; wait until the portal has brought the page back
 * to `next`.
 */
export async function logInThroughPortal(page: Page, base: string, email: string, password: string, next: string): Promise<void> {
  await page.goto(`${base}${next}`);
  await page.waitForURL(/\/account\/login/);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await page.click('form button[type=submit]');
  await page.waitForURL(`${base}${next}`);
}
