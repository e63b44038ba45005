import { linkSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExitCode, FatalError } from '../errors.js';
import type { Logger } from '../logging.js';
import { newSecret } from './secrets.js';

export const SESSION_SECRET_FILE = 'session-secret';
const MIN_LENGTH = 32;

/**
 * The keys that sign session cookies. `auth.sessionSecret` may list several,
 * comma-separated: the first signs, all verify (to rotate, put the new one
 * first and drop the old one a session lifetime later). Unset, a secret is
 * generated on the first start and kept in `<paths.data>/session-secret`
 * (mode 600); nodes that share the data folder share it, others need
 * `auth.sessionSecret` set to the same value.
 */
export function resolveSessionKeys(configured: string, dataDir: string, log: Logger): string[] {
  if (configured.trim() !== '') return configured.split(',').map((key) => key.trim()).filter((key) => key !== '');

  const file = path.join(dataDir, SESSION_SECRET_FILE);
  // Written aside and hard-linked into place: linking fails if the file exists, so two nodes starting at once keep one secret.
  const partial = `${file}.${process.pid}.partial`;
  writeFileSync(partial, `${newSecret(48)}\n`, { mode: 0o600 });
  try {
    linkSync(partial, file);
    log.info({ file }, 'generated the session secret (set auth.sessionSecret to share one between nodes)');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(partial);
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < MIN_LENGTH) {
    throw new FatalError(ExitCode.config, `${file}: the session secret is shorter than ${MIN_LENGTH} characters; delete the file to have a new one made`);
  }
  return [secret];
}
