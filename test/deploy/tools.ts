import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test, { type ImplementationFn } from 'ava';
import { packageRoot } from '../../server/package-info.js';

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
 * A test that needs these commands: skipped with the reason when one is missing, except
 * under CI (`.ci/run` installs them), where a missing tool fails the test instead.
 */
export function toolTest(title: string, commands: string[], implementation: ImplementationFn<[]>): void {
  const missing = commands.filter((name) => findCommand(name) === null);
  if (missing.length === 0) {
    test(title, implementation);
  } else if (process.env.CI) {
    test(title, (t) => t.fail(`${missing.join(', ')} not installed; .ci/run installs them with apt`));
  } else {
    test.skip(`${title} — skipped: ${missing.join(', ')} not installed (apt-get install ansible ansible-lint nginx)`, implementation);
  }
}
