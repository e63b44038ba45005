import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { loadConfig, type Config } from '../../../server/config/index.js';
import { FatalError } from '../../../server/errors.js';
import { createMailer, MailDeliveryError, mailSiteFrom, OutboxMailer, renderMail, SmtpMailer, type MailMessage } from '../../../server/mail/index.js';
import { packageRoot } from '../../../server/package-info.js';
import { memoryLogger } from '../../support/logs.js';
import { parseMail, startTestSmtp } from '../../support/smtp.js';

/** The shipped configuration with these environment variables, its data folder in a fresh temporary directory. */
async function configWith(t: ExecutionContext, env: Record<string, string> = {}): Promise<Config> {
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-mail-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  return loadConfig({ configDir: path.join(packageRoot, 'config'), env: { SLIDEBANK_PATHS_DATA: data, ...env } }).config;
}

const message: MailMessage = {
  to: 'researcher@university.example',
  subject: 'Größe & <Test> — ünïcödé',
  text: 'Plain words.\nA link: http://localhost:8080/confirm-email?token=a%2Fb%3D\n',
  html: '<p>Plain <b>words</b>.</p><p><a href="http://localhost:8080/confirm-email?token=a%2Fb%3D">link</a></p>',
};

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('mail.smtp.url sends through the SMTP server, authenticated, with text and HTML parts', async (t) => {
  const smtp = await startTestSmtp(t, { credentials: { user: 'slidebank', password: 'p@ss:word' } });
  const config = await configWith(t, { SLIDEBANK_MAIL_SMTP_URL: smtp.url, SLIDEBANK_MAIL_FROM: 'Slidebank <no-reply@hospital.example>' });
  const { log, lines } = memoryLogger();
  const mailer = createMailer(config, log);
  t.true(mailer instanceof SmtpMailer);

  await mailer.send(message);
  const [mail] = await smtp.waitForMessages(1);
  t.deepEqual(mail!.envelope, { from: 'no-reply@hospital.example', to: ['researcher@university.example'] });
  t.is(mail!.user, 'slidebank');
  t.is(mail!.header('from'), 'Slidebank <no-reply@hospital.example>');
  t.is(mail!.header('to'), 'researcher@university.example');
  t.is(mail!.header('subject'), message.subject);
  t.regex(mail!.header('content-type') ?? '', /^multipart\/alternative/);
  t.regex(mail!.header('message-id') ?? '', /^<.+@.+>$/);
  t.is(mail!.text, message.text);
  t.is(mail!.html, message.html);

  const sent = lines.find((line) => line.msg === 'mail sent');
  t.like(sent, { level: 30, to: 'researcher@university.example', server: `smtp://127.0.0.1:${smtp.port}` });
  t.false(JSON.stringify(lines).includes('p@ss:word'), 'the password is in no log line');
});

test('mail.smtp.host, port, user and password work as well as a URL', async (t) => {
  const smtp = await startTestSmtp(t, { credentials: { user: 'relay', password: 'secret' } });
  const config = await configWith(t, {
    SLIDEBANK_MAIL_SMTP_HOST: '127.0.0.1',
    SLIDEBANK_MAIL_SMTP_PORT: String(smtp.port),
    SLIDEBANK_MAIL_SMTP_USER: 'relay',
    SLIDEBANK_MAIL_SMTP_PASSWORD: 'secret',
  });
  const mailer = createMailer(config, memoryLogger().log);
  const rendered = renderMail('confirmEmail', { name: 'Kim', token: 'T0KEN', expiresAt: new Date('2027-01-01T00:00:00Z') }, mailSiteFrom(config));
  await mailer.send({ to: 'kim@example.org', ...rendered });
  const [mail] = await smtp.waitForMessages(1);
  t.is(mail!.user, 'relay');
  t.is(mail!.header('from'), 'Slidebank <no-reply@slidebank.local>', 'the default From');
  t.is(mail!.header('subject'), rendered.subject);
  t.is(mail!.text, rendered.text);
  t.is(mail!.html, rendered.html);
  t.true(mail!.text.includes('http://localhost:8080/account/confirm#token=T0KEN'), 'links start with the default mail.publicUrl');
});

test('without SMTP, each message becomes a parseable .eml file in the outbox and the log says so', async (t) => {
  const config = await configWith(t);
  const { log, lines } = memoryLogger();
  const mailer = createMailer(config, log);
  t.true(mailer instanceof OutboxMailer);

  await mailer.send(message);
  await mailer.send({ ...message, to: 'second@example.org' });
  const files = (await readdir(config.paths.outbox)).sort();
  t.is(files.length, 2, `only finished files, no temporary ones: ${files.join(', ')}`);
  for (const file of files) t.regex(file, /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z-[0-9a-f]{8}\.eml$/);

  const raw = await readFile(path.join(config.paths.outbox, files[0]!), 'utf8');
  t.true(raw.includes('\r\n'), 'CRLF line ends, as on the wire');
  const mail = parseMail(raw);
  t.true(['researcher@university.example', 'second@example.org'].includes(mail.header('to') ?? ''));
  t.is(mail.header('from'), 'Slidebank <no-reply@slidebank.local>');
  t.is(mail.header('subject'), message.subject);
  t.is(mail.header('mime-version'), '1.0');
  t.truthy(mail.header('date'));
  t.regex(mail.header('message-id') ?? '', /^<.+>$/);
  t.is(mail.text, message.text);
  t.is(mail.html, message.html);
  t.is((await stat(path.join(config.paths.outbox, files[0]!))).mode & 0o777, 0o600, 'readable by the service account only: mails carry reset links');

  const logged = lines.filter((line) => /SMTP is not configured/.test(line.msg));
  t.is(logged.length, 2);
  t.is(logged[0]!.level, 30, 'info');
  t.true(files.some((file) => logged[0]!.msg.endsWith(path.join(config.paths.outbox, file))), 'the line names the file');
});

test('a refused recipient fails the send with the server’s answer', async (t) => {
  const smtp = await startTestSmtp(t, { rejectRecipients: ['gone@example.org'] });
  const mailer = createMailer(await configWith(t, { SLIDEBANK_MAIL_SMTP_URL: smtp.url }), memoryLogger().log);
  const error = await t.throwsAsync(mailer.send({ ...message, to: 'gone@example.org' }), { instanceOf: MailDeliveryError });
  t.regex(error!.message, new RegExp(`^Mail to gone@example.org could not be sent through smtp://127.0.0.1:${smtp.port}: .*550.*Mailbox gone@example.org unavailable`));
  t.is(smtp.messages.length, 0);
});

test('wrong credentials fail with the server’s 535 and never show the password', async (t) => {
  const smtp = await startTestSmtp(t, { credentials: { user: 'relay', password: 'right' } });
  const url = `smtp://relay:wrong-secret@127.0.0.1:${smtp.port}`;
  const mailer = createMailer(await configWith(t, { SLIDEBANK_MAIL_SMTP_URL: url }), memoryLogger().log);
  const error = await t.throwsAsync(mailer.send(message), { instanceOf: MailDeliveryError });
  t.regex(error!.message, /535/);
  t.false(error!.message.includes('wrong-secret'));
});

test('an SMTP server that is not there fails fast with a message naming it', async (t) => {
  const port = await closedPort();
  const mailer = createMailer(await configWith(t, { SLIDEBANK_MAIL_SMTP_HOST: '127.0.0.1', SLIDEBANK_MAIL_SMTP_PORT: String(port) }), memoryLogger().log);
  const error = await t.throwsAsync(mailer.send(message), { instanceOf: MailDeliveryError });
  t.regex(error!.message, new RegExp(`^Mail to researcher@university.example could not be sent through smtp://127.0.0.1:${port}: .*ECONNREFUSED`));
  t.truthy(error!.cause, 'nodemailer’s error is kept as the cause');
});

test('an outbox that cannot be written fails with a message naming the folder', async (t) => {
  const config = await configWith(t);
  const blocked = path.join(config.paths.data, 'not-a-folder');
  await writeFile(blocked, 'a file where the outbox should be');
  const mailer = new OutboxMailer(blocked, config.mail.from, memoryLogger().log);
  const error = await t.throwsAsync(mailer.send(message), { instanceOf: MailDeliveryError });
  t.regex(error!.message, new RegExp(`could not be written to the outbox ${blocked}`));
});

test('mail settings are checked at start: URL scheme, URL and host together, a password without a user, publicUrl', async (t) => {
  const config = (env: Record<string, string>) => loadConfig({ configDir: path.join(packageRoot, 'config'), env });
  const error = t.throws(() =>
    config({
      SLIDEBANK_MAIL_SMTP_URL: 'http://mail.example',
      SLIDEBANK_MAIL_PUBLIC_URL: 'slidebank.example',
      SLIDEBANK_MAIL_SMTP_PASSWORD: 'x',
    }),
  );
  t.true(error instanceof FatalError);
  t.regex(error!.message, /mail\.smtp\.url \(env SLIDEBANK_MAIL_SMTP_URL\): must be an smtp:\/\/ or smtps:\/\/ URL/);
  t.regex(error!.message, /mail\.publicUrl \(env SLIDEBANK_MAIL_PUBLIC_URL\): must be an http:\/\/ or https:\/\/ URL/);
  const both = t.throws(() => config({ SLIDEBANK_MAIL_SMTP_URL: 'smtp://a.example', SLIDEBANK_MAIL_SMTP_HOST: 'b.example', SLIDEBANK_MAIL_SMTP_PASSWORD: 'x' }));
  t.regex(both!.message, /mail\.smtp\.host .*give either mail\.smtp\.url or mail\.smtp\.host, not both/);
  t.regex(both!.message, /mail\.smtp\.user .*must be set when mail\.smtp\.password is/);
});
