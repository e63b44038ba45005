import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Config } from '../config/index.js';
import type { Logger } from '../logging.js';
import type { MailMessage, Mailer } from './mailer.js';

/** A message that could not be handed to the SMTP server (or written to the outbox); the cause is nodemailer's error. */
export class MailDeliveryError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'MailDeliveryError';
  }
}

/**
 * The mailer the configuration asks for: SMTP when `mail.smtp.url` or
 * `mail.smtp.host` is set, otherwise the file outbox in `paths.outbox`.
 */
export function createMailer(config: Pick<Config, 'mail' | 'paths'>, log: Logger): Mailer {
  const { smtp, from } = config.mail;
  if (smtp.url === '' && smtp.host === '') return new OutboxMailer(config.paths.outbox, from, log);
  return new SmtpMailer(config.mail, log);
}

/**
 * An SMTP server that does not answer should fail a request in seconds, not
 * in nodemailer's default two minutes. A `?connectionTimeout=…` in the URL
 * still overrides these.
 */
const TIMEOUTS = { connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 60_000, dnsTimeout: 10_000 } as const;

/** Sends through the configured SMTP server, one connection per message (mail here is rare: confirmations, decisions, reminders). */
export class SmtpMailer implements Mailer {
  private readonly transport: Transporter<SMTPTransport.SentMessageInfo>;
  /** `smtp://host:port` without credentials, for messages and logs. */
  readonly server: string;

  constructor(
    mail: Config['mail'],
    private readonly log: Logger,
  ) {
    const { smtp } = mail;
    const options: SMTPTransport.Options =
      smtp.url !== ''
        ? { url: smtp.url, ...TIMEOUTS }
        : {
            host: smtp.host,
            port: smtp.port,
            secure: smtp.secure,
            ...(smtp.user !== '' ? { auth: { user: smtp.user, pass: smtp.password } } : {}),
            ...TIMEOUTS,
          };
    this.transport = nodemailer.createTransport(options, { from: mail.from });
    this.server = describeServer(smtp);
  }

  async send(message: MailMessage): Promise<void> {
    let info: SMTPTransport.SentMessageInfo;
    try {
      info = await this.transport.sendMail(message);
    } catch (error) {
      throw new MailDeliveryError(`Mail to ${message.to} could not be sent through ${this.server}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.log.info({ to: message.to, messageId: info.messageId, server: this.server, response: info.response }, 'mail sent');
  }
}

/**
 * Writes each message as an RFC 5322 `.eml` file (real MIME with text and HTML
 * parts, as nodemailer would send it) when no SMTP server is configured, so
 * that an operator can read or forward what the appliance would have sent.
 * Files are written under a temporary name and renamed, so that a reader of
 * `*.eml` never sees half a message; they may hold reset links, hence 0600.
 */
export class OutboxMailer implements Mailer {
  private readonly composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });

  constructor(
    readonly folder: string,
    private readonly from: string,
    private readonly log: Logger,
  ) {}

  async send(message: MailMessage): Promise<void> {
    const { message: raw } = await this.composer.sendMail({ from: this.from, ...message });
    const name = `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`;
    const file = path.join(this.folder, name);
    const partial = path.join(this.folder, `.${name}.tmp`);
    try {
      await mkdir(this.folder, { recursive: true, mode: 0o700 });
      await writeFile(partial, raw, { mode: 0o600, flag: 'wx' });
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true }).catch(() => undefined);
      throw new MailDeliveryError(`Mail to ${message.to} could not be written to the outbox ${this.folder}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    this.log.info({ to: message.to, file }, `SMTP is not configured (mail.smtp.url or mail.smtp.host); mail written to ${file}`);
  }
}

function describeServer(smtp: Config['mail']['smtp']): string {
  if (smtp.url === '') return `${smtp.secure ? 'smtps' : 'smtp'}://${smtp.host}:${smtp.port}`;
  try {
    const url = new URL(smtp.url);
    return `${url.protocol}//${url.host}`;
  } catch {
    return 'the SMTP server in mail.smtp.url';
  }
}
