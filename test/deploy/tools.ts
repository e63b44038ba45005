import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { ImplementationFn } from 'ava';
import { packageRoot } from '../../server/package-info.js';
import { testNeeding as testNeedingAll } from '../support/requirements.js';

export const run = promisify(execFile);
export const ansibleDir = path.join(packageRoot, 'ansible');
export const opsDir = path.join(packageRoot, 'ops');

/** The first folder on PATH (and the sbin folders, where nginx lives) holding `name`, or null. */
export function findCommand(name: string): string | null {
  const folders = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];
  for (const folder of folders) {
    if (!folder) continue;
    const candidate = path.join(folder, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * A test that needs these commands: skipped with the reason where one is missing, failed
 * instead under SLIDEBANK_REQUIRE_FIXTURES=1 (CI, where `.ci/run` installs them); see testNeeding.
 */
export function toolTest(title: string, commands: string[], implementation: ImplementationFn<[]>): void {
  const missing = commands.filter((name) => findCommand(name) === null);
  testNeedingAll(missing.map((name) => `${name} is not installed (.ci/run installs it with apt)`), title, implementation);
}
