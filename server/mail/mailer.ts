/** One e-mail: plain text always, HTML alongside. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/**
 * Sends mail: over SMTP when configured, otherwise into the file outbox
 * (paths.outbox/*.eml). Services depend on this interface only.
 */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
}
