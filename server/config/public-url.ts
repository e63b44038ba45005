import { envNameFor } from './env.js';

/** `mail.publicUrl` as config/default.json has it: right only for a trial on the machine itself. */
export const DEFAULT_PUBLIC_URL = 'http://localhost:8080';

const ALL_INTERFACES = new Set(['', '0.0.0.0', '::']);
const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/**
 * The sentence to warn with when `mail.publicUrl` is still its default but
 * the server does not listen there (another port, or an address that is not
 * this machine's loopback): every link in a mail would then lead nowhere.
 * Undefined when there is nothing to say.
 */
export function publicUrlWarning(publicUrl: string, listening: { host: string; port: number }): string | undefined {
  if (publicUrl.replace(/\/+$/, '') !== DEFAULT_PUBLIC_URL) return undefined;
  const url = new URL(DEFAULT_PUBLIC_URL);
  const reachable = ALL_INTERFACES.has(listening.host) || LOOPBACK.has(listening.host);
  if (reachable && listening.port === Number(url.port)) return undefined;
  const host = ALL_INTERFACES.has(listening.host) ? 'all addresses' : listening.host.includes(':') ? `[${listening.host}]` : listening.host;
  const where = listening.port === 0 ? `${host}, on a port picked at start` : `${host}, port ${listening.port}`;
  return (
    `mail.publicUrl is still its default, ${DEFAULT_PUBLIC_URL}, but this server listens on ${where}: ` +
    `links in confirmation and password-reset mails will not reach it. ` +
    `Set mail.publicUrl (environment variable ${envNameFor('mail.publicUrl')}) to the address users reach the portal at.`
  );
}
