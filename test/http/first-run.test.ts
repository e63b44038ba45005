/**
 * The first run and the way into an account: the appliance started in this
 * process as `slidebank serve` starts it (startAppliance, logs in memory),
 * with mail going to a real SMTP server where a test reads it.
 *
 * - the initial administrator must change the printed password; the change
 *   clears the mark and deletes initial-admin.txt;
 * - mail.publicUrl left at its default while the server listens elsewhere is
 *   a warning at start and in `slidebank config check`;
 * - an unconfirmed account, refused at login, asks for the confirmation mail
 *   again without logging in; the answer is the same for any address;
 * - `GET /api/auth/me` with nobody logged in is 200 `null`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { hashPassword } from '../../server/access/password.js';
import { UsersRepository } from '../../server/access/users.repository.js';
import { startAppliance, type Appliance } from '../../server/boot.js';
import { loadConfig } from '../../server/config/index.js';
import { publicUrlWarning } from '../../server/config/public-url.js';
import { packageRoot } from '../../server/package-info.js';
import { Client, TEST_PASSWORD } from '../support/accounts.js';
import { startTestApp } from '../support/app.js';
import { freePort, runCliInProcess } from '../support/cli.js';
import { createTestDatabase, testDialect } from '../support/database.js';
import { memoryLogger, type LogLine } from '../support/logs.js';
import { startTestSmtp } from '../support/smtp.js';

interface Me {
  email: string;
  roles: string[];
  mustChangePassword: boolean;
}
interface ErrorBody {
  error: { code: string; message: string };
}

const NEW_PASSWORD = 'a lantern by the harbour wall 19';

/** The appliance on a fresh database and data folder of its own, in this process; stopped when the test ends. */
async function boot(t: ExecutionContext, env: Record<string, string> = {}): Promise<{ appliance: Appliance; logs: LogLine[]; data: string; site: { url(pathname: string): string } }> {
  const database = await createTestDatabase();
  t.teardown(() => database.drop());
  const data = await mkdtemp(path.join(os.tmpdir(), 'slidebank-first-run-'));
  t.teardown(() => rm(data, { recursive: true, force: true }));
  const { config } = loadConfig({
    configDir: path.join(packageRoot, 'config'),
    env: {
      DATABASE_URL: database.url,
      PORT: '0',
      SLIDEBANK_HOST: '127.0.0.1',
      SLIDEBANK_PATHS_DATA: data,
      SLIDEBANK_DEMO: '0',
      SLIDEBANK_QUEUE_WORKERS: '0',
      SLIDEBANK_JOBS_PREPROCESS_SCHEDULE: '',
      SLIDEBANK_AUTH_SESSION_SECRET: randomBytes(32).toString('hex'),
      ...env,
    },
  });
  const { log, lines } = memoryLogger();
  const appliance = await startAppliance(config, log);
  t.teardown(() => appliance.stop('test over'));
  return { appliance, logs: lines, data, site: { url: (pathname) => `${appliance.http.url}${pathname}` } };
}

const publicUrlWarnings = (logs: LogLine[]) => logs.filter((line) => line.level === 40 && line.key === 'mail.publicUrl');

test(`the initial administrator logs in with the printed password, must change it, and the change clears the mark and deletes initial-admin.txt (${testDialect})`, async (t) => {
  const { appliance, logs, data, site } = await boot(t);
  const file = path.join(data, 'initial-admin.txt');
  const printed = /^password: (.+)$/m.exec(await readFile(file, 'utf8'))?.[1];
  t.truthy(printed);
  t.is(appliance.initialAdmin?.password, printed);

  const admin = new Client(site);
  const login = await admin.post<Me>('/api/auth/login', { email: appliance.initialAdmin!.email, password: printed });
  t.is(login.status, 200);
  t.like(login.body, { roles: ['admin'], mustChangePassword: true }, 'the login answer says so');
  t.like((await admin.get<Me>('/api/auth/me')).body, { mustChangePassword: true }, 'and so does /api/auth/me');

  const wrong = await admin.post<ErrorBody>('/api/account/password', { currentPassword: 'not it at all, no', newPassword: NEW_PASSWORD });
  t.is(wrong.status, 403);
  t.true(existsSync(file), 'a refused change keeps the file');

  t.is((await admin.post('/api/account/password', { currentPassword: printed, newPassword: NEW_PASSWORD })).status, 204);
  t.like((await admin.get<Me>('/api/auth/me')).body, { mustChangePassword: false }, 'the mark is cleared');
  t.false(existsSync(file), 'the file with the printed password is deleted');
  t.truthy(
    logs.find((line) => line.level === 30 && line.file === file && /deleted/.test(line.msg)),
    'the log says the file was deleted',
  );
  // Only the initial administrator is marked: others start without.
  const users = new UsersRepository(appliance.db.knex);
  const other = await users.create({ email: 'curator@hospital.example', passwordHash: await hashPassword(TEST_PASSWORD), level: 'L1', roles: ['curator'], emailConfirmedAt: new Date() });
  t.false(other.mustChangePassword);
});

test(`a start with mail.publicUrl at its default on another port warns, naming the key and its variable; at the server's own address it does not (${testDialect})`, async (t) => {
  const first = await boot(t);
  const [warning, ...more] = publicUrlWarnings(first.logs);
  t.is(more.length, 0);
  t.truthy(warning, 'a warning at start');
  t.regex(warning!.msg, /^mail\.publicUrl is still its default, http:\/\/localhost:8080, but this server listens on 127\.0\.0\.1, port \d+: /);
  t.regex(warning!.msg, /Set mail\.publicUrl \(environment variable SLIDEBANK_MAIL_PUBLIC_URL\) to the address users reach the portal at\.$/);

  const port = await freePort();
  const second = await boot(t, { PORT: String(port), SLIDEBANK_MAIL_PUBLIC_URL: `http://127.0.0.1:${port}` });
  t.truthy(second.logs.find((line) => /listening on/.test(line.msg)), 'the server started');
  t.deepEqual(publicUrlWarnings(second.logs), [], 'no warning once it is set');

  // The default is right for a trial on the machine itself: all addresses or loopback, port 8080.
  t.is(publicUrlWarning('http://localhost:8080', { host: '0.0.0.0', port: 8080 }), undefined);
  t.is(publicUrlWarning('http://localhost:8080/', { host: '127.0.0.1', port: 8080 }), undefined);
  t.regex(publicUrlWarning('http://localhost:8080', { host: '10.1.2.3', port: 8080 }) ?? '', /listens on 10\.1\.2\.3, port 8080/);
  t.regex(publicUrlWarning('http://localhost:8080', { host: '0.0.0.0', port: 9090 }) ?? '', /listens on all addresses, port 9090/);
  t.is(publicUrlWarning('https://slidebank.hospital.example', { host: '0.0.0.0', port: 9090 }), undefined);
});

test('config check warns about mail.publicUrl at its default on another port, and still says the configuration is valid', async (t) => {
  const warned = await runCliInProcess(['config', 'check'], { env: { PORT: '9090' } });
  t.is(warned.code, 0, warned.stderr);
  t.regex(warned.stdout, /^warning: mail\.publicUrl is still its default, http:\/\/localhost:8080, but this server listens on all addresses, port 9090: .*SLIDEBANK_MAIL_PUBLIC_URL/m);
  t.regex(warned.stdout, /^configuration is valid, with warnings$/m);

  const json = await runCliInProcess(['config', 'check', '--json'], { env: { PORT: '9090' } });
  t.is(json.code, 0);
  t.like(JSON.parse(json.stdout), { port: { value: 9090 } });
  t.regex(json.stderr, /^slidebank: warning: mail\.publicUrl is still its default/m, 'beside JSON, the warning goes to stderr');

  for (const env of [{ PORT: '8080' }, { PORT: '9090', SLIDEBANK_MAIL_PUBLIC_URL: 'https://slidebank.hospital.example' }]) {
    const quiet = await runCliInProcess(['config', 'check'], { env });
    t.is(quiet.code, 0);
    t.notRegex(quiet.stdout, /warning/, JSON.stringify(env));
    t.regex(quiet.stdout, /^configuration is valid$/m);
  }
});

test(`an unconfirmed user refused at login asks for the confirmation mail again: the same answer for any address, a mail only to the unconfirmed one, limited like other account requests (${testDialect})`, async (t) => {
  const smtp = await startTestSmtp(t);
  const { appliance, site } = await boot(t, { SLIDEBANK_MAIL_SMTP_URL: smtp.url, SLIDEBANK_AUTH_ACCOUNT_REQUESTS_MAX_PER_ADDRESS: '5' });
  const users = new UsersRepository(appliance.db.knex);
  const passwordHash = await hashPassword(TEST_PASSWORD);
  await users.create({ email: 'waiting@hospital.example', name: 'Wanda', passwordHash, level: 'L0', roles: [], emailConfirmedAt: null });
  await users.create({ email: 'confirmed@hospital.example', name: 'Carl', passwordHash, level: 'L1', roles: [], emailConfirmedAt: new Date() });

  const visitor = new Client(site);
  const refused = await visitor.post<ErrorBody>('/api/auth/login', { email: 'waiting@hospital.example', password: TEST_PASSWORD });
  t.is(refused.status, 403);
  t.is(refused.body.error.code, 'email_unconfirmed');

  const ask = (email: string) => visitor.post<{ status: string; message: string }>('/api/auth/confirm/resend', { email });
  const answers = [];
  for (const email of ['nobody@hospital.example', 'confirmed@hospital.example', 'waiting@hospital.example']) {
    const answer = await ask(email);
    answers.push({ status: answer.status, body: { ...answer.body, message: answer.body.message.replace(email, '<address>') } });
  }
  t.is(answers[0]!.status, 202);
  t.deepEqual(answers[1], answers[0], 'a confirmed account gets the answer an unknown address gets');
  t.deepEqual(answers[2], answers[0], 'and so does the unconfirmed one');

  const [mail] = await smtp.waitForMessages(1);
  t.deepEqual(mail!.envelope.to, ['waiting@hospital.example']);
  t.regex(mail!.text, /\/account\/confirm#token=/);
  await new Promise((resolve) => setTimeout(resolve, 500));
  t.is(smtp.messages.length, 1, 'no mail to the unknown or the confirmed address');

  // The link in the mail confirms the account, which can then log in.
  const token = /#token=([\w-]+)/.exec(mail!.text)?.[1];
  t.is((await visitor.post('/api/auth/confirm', { token })).status, 200);
  t.is((await visitor.post('/api/auth/login', { email: 'waiting@hospital.example', password: TEST_PASSWORD })).status, 200);

  // The same limit per client address as registrations and reset requests: three used, two left.
  const anonymous = new Client(site);
  t.is((await anonymous.post('/api/auth/password-reset', { email: 'nobody@hospital.example' })).status, 202);
  t.is((await anonymous.post('/api/auth/confirm/resend', { email: 'nobody@hospital.example' })).status, 202);
  const limited = await anonymous.post<ErrorBody>('/api/auth/confirm/resend', { email: 'nobody@hospital.example' });
  t.is(limited.status, 429);
  t.is(limited.body.error.code, 'too_many_requests');
  t.truthy(limited.headers.get('retry-after'));
});

test(`GET /api/auth/me with nobody logged in is 200 and null; a bad bearer token is still a 401 (${testDialect})`, async (t) => {
  const app = await startTestApp(t);
  const anonymous = await fetch(app.url('/api/auth/me'));
  t.is(anonymous.status, 200);
  t.regex(anonymous.headers.get('content-type') ?? '', /^application\/json/);
  t.is(await anonymous.text(), 'null');
  const bad = await new Client(app, 'sbk_not-a-real-token').get<ErrorBody>('/api/auth/me');
  t.is(bad.status, 401);
  t.is(bad.headers.get('www-authenticate'), 'Bearer realm="slidebank", error="invalid_token"');
});
