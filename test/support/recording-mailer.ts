import type { Mailer, MailMessage } from '../../server/mail/mailer.js';

/**
 * A test double of the Mailer: it sends nothing and keeps every message, so
 * that tests can read what a user would receive and follow its links. (Tests
 * of mail delivery itself use a real SMTP server: test/support/smtp.ts.)
 */
export class RecordingMailer implements Mailer {
  readonly sent: MailMessage[] = [];
  private held: Promise<void> | undefined;

  async send(message: MailMessage): Promise<void> {
    await this.held;
    this.sent.push({ ...message });
  }

  /** Until the returned function is called, every send waits (as for a slow mail server) before the message counts as sent. */
  hold(): () => void {
    let release!: () => void;
    this.held = new Promise<void>((resolve) => (release = resolve));
    return () => {
      this.held = undefined;
      release();
    };
  }

  to(address: string): MailMessage[] {
    return this.sent.filter((message) => message.to.toLowerCase() === address.toLowerCase());
  }

  /** The newest message to the address; throws when there is none. */
  last(address: string): MailMessage {
    const messages = this.to(address);
    const message = messages[messages.length - 1];
    if (!message) throw new Error(`no mail was sent to ${address} (sent: ${this.sent.map((m) => `${m.to}: ${m.subject}`).join('; ') || 'none'})`);
    return message;
  }

  /** Every http(s) link in the plain-text part. */
  static links(message: MailMessage): URL[] {
    return [...message.text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((match) => new URL(match[0].replace(/[.,;:!?)]+$/, '')));
  }

  /** The link to `pathname` in the message, and the token in its fragment (`#token=…`). */
  static link(message: MailMessage, pathname: string): { url: URL; token: string } {
    const url = RecordingMailer.links(message).find((link) => link.pathname === pathname);
    if (!url) throw new Error(`no link to ${pathname} in "${message.subject}":\n${message.text}`);
    const token = new URLSearchParams(url.hash.slice(1)).get('token');
    if (!token) throw new Error(`the link ${url.href} carries no token`);
    return { url, token };
  }
}
