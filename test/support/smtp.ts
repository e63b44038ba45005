import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/**
 * A real SMTP server (the `smtp-server` package) on a free loopback port that
 * keeps every message it accepts, for tests that send mail and then read it:
 *
 *     const smtp = await startTestSmtp(t);
 *     ... SLIDEBANK_MAIL_SMTP_URL: smtp.url ...
 *     const [mail] = await smtp.waitForMessages(1);
 *     mail.text, mail.html, mail.header('subject'), linksIn(mail.text)
 */

export interface ReceivedMail {
  /** MAIL FROM and RCPT TO of the SMTP envelope. */
  envelope: { from: string; to: string[] };
  /** The user the client authenticated as, if it did. */
  user: string | undefined;
  /** The message as received, CRLF line ends and all. */
  raw: string;
  /** Header names lower-cased; encoded words (RFC 2047) decoded. */
  headers: Map<string, string>;
  header(name: string): string | undefined;
  /** The decoded text/plain and text/html parts (empty when absent). */
  text: string;
  html: string;
}

export interface TestSmtp {
  port: number;
  /** `smtp://[user:password@]127.0.0.1:port`, for `mail.smtp.url`. */
  url: string;
  messages: ReceivedMail[];
  waitForMessages(count: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

export interface TestSmtpOptions {
  /** Require AUTH PLAIN/LOGIN with these credentials. */
  credentials?: { user: string; password: string };
  /** Refuse these recipients with 550. */
  rejectRecipients?: string[];
}

export async function startTestSmtp(
  t: { teardown(fn: () => Promise<void> | void): void },
  { credentials, rejectRecipients = [] }: TestSmtpOptions = {},
): Promise<TestSmtp> {
  const messages: ReceivedMail[] = [];
  const options: SMTPServerOptions = {
    // No certificate to offer here: plain SMTP on loopback, so STARTTLS is off.
    disabledCommands: credentials ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    authOptional: credentials === undefined,
    logger: false,
    onAuth(auth, _session, callback) {
      if (credentials && auth.username === credentials.user && auth.password === credentials.password) {
        callback(null, { user: auth.username });
      } else {
        callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      }
    },
    onRcptTo(address, _session, callback) {
      if (rejectRecipients.includes(address.address)) {
        callback(Object.assign(new Error(`Mailbox ${address.address} unavailable`), { responseCode: 550 }));
      } else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (chunk: Buffer) => chunks.push(chunk));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const from = session.envelope.mailFrom;
        messages.push({
          ...parseMail(raw),
          envelope: { from: from ? from.address : '', to: session.envelope.rcptTo.map((r) => r.address) },
          user: typeof session.user === 'string' ? session.user : undefined,
        });
        callback();
      });
    },
  };
  const server = new SMTPServer(options);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.server.address() as AddressInfo;
  const auth = credentials ? `${encodeURIComponent(credentials.user)}:${encodeURIComponent(credentials.password)}@` : '';
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= new Promise<void>((resolve) => server.close(() => resolve())));
  t.teardown(close);
  return {
    port,
    url: `smtp://${auth}127.0.0.1:${port}`,
    messages,
    async waitForMessages(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} messages, the SMTP server received ${messages.length}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return messages.slice(0, count);
    },
    close,
  };
}

/**
 * Just enough MIME to read what nodemailer writes: headers, multipart/alternative
 * (also inside multipart/mixed), quoted-printable and base64 bodies in UTF-8.
 */
export function parseMail(raw: string): Pick<ReceivedMail, 'raw' | 'headers' | 'header' | 'text' | 'html'> {
  const { headers, body } = splitPart(raw);
  const parts: { text: string; html: string } = { text: '', html: '' };
  collectParts(headers, body, parts);
  return { raw, headers, header: (name) => headers.get(name.toLowerCase()), ...parts };
}

/** Every http(s) link in a text, without the punctuation of the sentence that ends with it. */
export function linksIn(text: string): string[] {
  return [...text.matchAll(/https?:\/\/[^\s<>"]+/g)].map((m) => m[0].replace(/[.,;:!?)]+$/, ''));
}

function splitPart(raw: string): { headers: Map<string, string>; body: string } {
  const normalized = raw.replace(/\r\n/g, '\n');
  const end = normalized.indexOf('\n\n');
  const head = end < 0 ? normalized : normalized.slice(0, end);
  const body = end < 0 ? '' : normalized.slice(end + 2);
  const headers = new Map<string, string>();
  for (const line of head.replace(/\n[ \t]+/g, ' ').split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), decodeWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

function collectParts(headers: Map<string, string>, body: string, into: { text: string; html: string }): void {
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (/^multipart\//i.test(type) && boundary) {
    const sections = body.split(`--${boundary}`).slice(1);
    for (const section of sections) {
      if (section.startsWith('--')) break;
      // The line break before a delimiter belongs to the delimiter (RFC 2046 §5.1.1).
      const part = splitPart(section.replace(/^\n/, '').replace(/\n$/, ''));
      collectParts(part.headers, part.body, into);
    }
    return;
  }
  const decoded = decodeBody(body, headers.get('content-transfer-encoding') ?? '7bit');
  if (/^text\/html/i.test(type)) into.html ||= decoded;
  else if (/^text\/plain/i.test(type)) into.text ||= decoded;
}

function decodeBody(body: string, encoding: string): string {
  switch (encoding.toLowerCase()) {
    case 'base64':
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    case 'quoted-printable':
      return decodeQuotedPrintable(body);
    default:
      return body;
  }
}

function decodeQuotedPrintable(text: string): string {
  const bytes: number[] = [];
  const soft = text.replace(/=\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i]!;
    if (c === '=' && /^[0-9A-F]{2}$/i.test(soft.slice(i + 1, i + 3))) {
      bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(c, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

/** RFC 2047 encoded words, `=?UTF-8?Q?…?=` and `=?UTF-8?B?…?=`; white space between two of them is dropped. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, '$1$2')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, kind: string, data: string) =>
      kind.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : decodeQuotedPrintable(data.replace(/_/g, ' ')),
    );
}
