/**
 * The first run and the way into an account in a real browser (Debian's
 * chromium through playwright-core) against the real server as its own
 * process, with mail over a real SMTP server: the initial administrator logs
 * in with the printed password and is made to choose a new one first; a
 * researcher whose address is not confirmed is refused at login and asks for
 * the confirmation mail again right there; logging in from the register page
 * returns to the page the visitor came from. Nobody logged in causes no
 * console error. Screenshots go to test/artifacts/ (git-ignored).
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { Client, TEST_PASSWORD } from '../support/accounts.js';
import { appliance } from '../support/appliance.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium } from '../support/browser.js';
import { testDialect } from '../support/database.js';
import { linksIn, parseMail, startTestSmtp } from '../support/smtp.js';

const NEW_ADMIN_PASSWORD = 'a kestrel above the meadow 77';

/** A URL predicate for waitForURL: this page, with this `next` (none when undefined). */
const at = (pathname: string, next?: string) => (url: URL) => url.pathname === pathname && url.searchParams.get('next') === (next ?? null);

browserTest(`first run in the browser: the initial administrator changes the printed password, an unconfirmed user asks for the mail again, login from the register page returns where the visitor was (${testDialect})`, async (t) => {
  t.timeout(300_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-first-run-${name}.png`), fullPage: true });

  const smtp = await startTestSmtp(t);
  const { root, base, site, serve } = await appliance(t, { smtpUrl: smtp.url });
  await serve();
  const file = path.join(root, 'var', 'initial-admin.txt');
  const text = await readFile(file, 'utf8');
  const email = /^email: (.+)$/m.exec(text)![1]!;
  const printed = /^password: (.+)$/m.exec(text)![1]!;

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const consoleErrors: string[] = [];
  /** Console errors but those `expected` allows; nobody logged in must cause none. */
  const watch = (page: Page, expected: { current: RegExp | null }) => {
    page.on('pageerror', (error) => consoleErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !(expected.current && expected.current.test(message.text()))) consoleErrors.push(`${page.url()}: ${message.text()}`);
    });
  };

  // 1. The initial administrator: the printed password logs in, then the portal asks for a new one before anything else.
  const adminContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await adminContext.newPage();
  watch(admin, { current: null });
  await admin.goto(`${base}/admin`);
  await admin.waitForURL(at('/account/login', '/admin'));
  await admin.fill('input[name=email]', email);
  await admin.fill('input[name=password]', printed);
  await admin.click('form button[type=submit]');
  await admin.waitForURL(at('/account/change-password', '/admin'));
  await admin.getByText('Choose your own before you go on').waitFor();
  await shot(admin, '1-change-password');
  // Nothing else opens until it is changed.
  await admin.goto(`${base}/catalog`);
  await admin.waitForURL(at('/account/change-password', '/catalog'));
  const form = admin.getByTestId('change-password-form');
  await form.locator('input[name=currentPassword]').fill(printed);
  await form.locator('input[name=newPassword]').fill(NEW_ADMIN_PASSWORD);
  await form.locator('input[name=repeat]').fill(NEW_ADMIN_PASSWORD);
  await form.locator('button[type=submit]').click();
  await admin.waitForURL(`${base}/catalog`);
  t.false(existsSync(file), 'the server deleted initial-admin.txt');
  const me = (await (await admin.request.get(`${base}/api/auth/me`)).json()) as { mustChangePassword: boolean };
  t.false(me.mustChangePassword);
  await admin.goto(`${base}/admin`);
  await admin.waitForURL(`${base}/admin`);
  await adminContext.close();

  // The new password works, the printed one no longer does.
  t.is((await new Client(site).post('/api/auth/login', { email, password: printed })).status, 401);
  t.is((await new Client(site).post('/api/auth/login', { email, password: NEW_ADMIN_PASSWORD })).status, 200);

  // 2. A researcher registered but never confirmed: refused at login, the login page offers the mail again.
  // The administrator's notice of the password change is the first mail; the registration's link the second.
  t.is((await new Client(site).post('/api/auth/register', { name: 'Rosa', institution: 'Uni', email: 'rosa@uni.example', password: TEST_PASSWORD })).status, 202);
  await smtp.waitForMessages(2);
  const researcherContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const researcher = await researcherContext.newPage();
  const expected = { current: null as RegExp | null };
  watch(researcher, expected);
  await researcher.goto(`${base}/account/login`);
  await researcher.fill('input[name=email]', 'rosa@uni.example');
  await researcher.fill('input[name=password]', TEST_PASSWORD);
  expected.current = /403/; // the refused login
  await researcher.click('form button[type=submit]');
  const offer = researcher.getByTestId('resend-confirmation');
  await offer.getByText('Your address is not confirmed yet').waitFor();
  expected.current = null;
  t.is(await offer.locator('input[name=resendEmail]').inputValue(), 'rosa@uni.example', 'the address typed is filled in');
  await shot(researcher, '2-resend-offer');
  await offer.getByRole('button', { name: 'Send the confirmation mail again' }).click();
  await offer.getByRole('status').filter({ hasText: 'If rosa@uni.example has an account waiting for confirmation' }).waitFor();
  const again = (await smtp.waitForMessages(3))[2];
  t.deepEqual(again!.envelope.to, ['rosa@uni.example']);
  const link = linksIn(parseMail(again!.raw).text).find((l) => l.startsWith(`${base}/account/confirm#token=`));
  t.truthy(link, 'the new mail links to the confirmation page');
  await researcher.goto(link!);
  await researcher.getByText('Your address is confirmed').waitFor();
  await shot(researcher, '3-confirmed');
  await researcherContext.close();

  // 3. Logging in from the register page returns to the page the visitor came from.
  const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const visitor = await visitorContext.newPage();
  watch(visitor, { current: null });
  await visitor.goto(`${base}/guide`);
  await visitor.getByRole('banner').getByRole('link', { name: 'Register' }).click();
  await visitor.waitForURL(at('/account/register', '/guide'));
  await visitor.getByRole('main').getByRole('link', { name: 'Log in' }).click();
  await visitor.waitForURL(at('/account/login', '/guide'));
  await visitor.fill('input[name=email]', 'rosa@uni.example');
  await visitor.fill('input[name=password]', TEST_PASSWORD);
  await visitor.click('form button[type=submit]');
  await visitor.waitForURL(`${base}/guide`);
  await shot(visitor, '4-back-from-register');
  await visitor.getByRole('button', { name: 'Log out' }).click();
  await visitor.waitForURL(`${base}/`);

  // From the home page's own Register button (no `next`), and the header's Log in on the register page.
  await visitor.getByRole('main').getByRole('link', { name: 'Register' }).first().click();
  await visitor.waitForURL(at('/account/register'));
  await visitor.getByRole('main').getByRole('link', { name: 'Log in' }).click();
  await visitor.waitForURL(at('/account/login', '/'));
  await visitor.goto(`${base}/guide`);
  await visitor.getByRole('banner').getByRole('link', { name: 'Register' }).click();
  await visitor.waitForURL(at('/account/register', '/guide'));
  await visitor.getByRole('banner').getByRole('link', { name: 'Log in' }).click();
  await visitor.waitForURL(at('/account/login', '/guide'));
  await visitor.fill('input[name=email]', 'rosa@uni.example');
  await visitor.fill('input[name=password]', TEST_PASSWORD);
  await visitor.click('form button[type=submit]');
  await visitor.waitForURL(`${base}/guide`);
  await visitorContext.close();

  t.deepEqual(consoleErrors, [], 'no console errors, none for GET /api/auth/me while logged out');
});
