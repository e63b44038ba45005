import { writeFile, chmod } from 'node:fs/promises';
import path from 'node:path';
import { isUniqueViolation } from '../db/index.js';
import type { Logger } from '../logging.js';
import { generatePassword, hashPassword } from './password.js';
import type { UsersRepository } from './users.repository.js';

export interface InitialAdmin {
  email: string;
  password: string;
  /** The file that keeps the password (mode 600) until the administrator changes it. */
  file: string;
}

/** Where the initial administrator's password is kept until it is changed. */
export function initialAdminFile(dataDir: string): string {
  return path.join(dataDir, 'initial-admin.txt');
}

/**
 * On the first start of an empty installation, create an administrator with a
 * random password and keep that password in `<data>/initial-admin.txt`, readable
 * only by the service user. Does nothing once any administrator exists, and
 * loses no race against another app node starting on the same database.
 */
export async function ensureInitialAdmin(
  users: UsersRepository,
  { email, dataDir, log }: { email: string; dataDir: string; log: Logger },
): Promise<InitialAdmin | undefined> {
  if ((await users.countWithRole('admin')) > 0) return undefined;

  const password = generatePassword();
  try {
    await users.create({
      email,
      name: 'Administrator',
      passwordHash: await hashPassword(password),
      level: 'L1',
      roles: ['admin'],
      emailConfirmedAt: new Date(),
      // The password travels in a file and on the console: its owner is asked for a new one at the first login.
      mustChangePassword: true,
    });
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    log.warn({ email }, 'initial administrator not created: the address is taken (another node, or an existing account)');
    return undefined;
  }

  const file = initialAdminFile(dataDir);
  const text = [
    '# Slidebank initial administrator. Log in: the portal asks for a new password, and this file is deleted once it is changed.',
    `email: ${email}`,
    `password: ${password}`,
    '',
  ].join('\n');
  await writeFile(file, text, { mode: 0o600 });
  await chmod(file, 0o600); // mode above applies only when the file is new
  log.info({ email, file }, 'created the initial administrator');
  return { email, password, file };
}
