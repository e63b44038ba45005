/**
 * Single sign-on in a real browser (Debian's chromium through playwright-core)
 * against a real OpenID Connect provider in the test process
 * (test/support/oidc-provider.ts): the login page's button, the provider's
 * own login and consent pages, the redirect back, the roles the groups give,
 * the provider's tokens kept on the server, logging out at the provider; and
 * the answers that must be refused: a tampered state, an ID token for another
 * audience, an expired one.
 */
import type { ExecutionContext } from 'ava';
import type { BrowserContext, Page } from 'playwright-core';
import { OidcProviders } from '../../server/access/oidc/oidc-providers.js';
import { createUser, TEST_PASSWORD } from '../support/accounts.js';
import { browserTest, ensureWebBuilt, launchChromium } from '../support/browser.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { memoryLogger } from '../support/logs.js';
import { startOidcProvider, type TestProvider } from '../support/oidc-provider.js';

interface Me {
  email: string;
  name: string;
  roles: string[];
  source: string;
}

async function withProvider(t: ExecutionContext): Promise<{ app: TestApp; provider: TestProvider; context: BrowserContext; page: Page }> {
  await ensureWebBuilt();
  const provider = await startOidcProvider(t);
  provider.people.set('p.kim', { email: 'p.kim@hospital.example', name: 'Kim Pathologist', groups: ['pathology', 'all-staff'] });
  provider.people.set('no.mail', { name: 'Nobody Mailable', groups: [] });
  const app = await startTestApp(t, {
    env: {
      SLIDEBANK_AUTH_OIDC_PROVIDERS: JSON.stringify([
        {
          name: 'hospital',
          label: 'Hospital single sign-on',
          issuer: provider.issuer,
          clientId: provider.clientId,
          clientSecret: provider.clientSecret,
          scopes: ['openid', 'email', 'profile', 'groups'],
          groupsClaim: 'groups',
          roleGroups: { admin: ['slidebank-admins'], curator: [], pathologist: ['pathology'] },
        },
      ]),
    },
  });
  // The test app listens on a port of its own choosing: the sign-in's addresses name it (an installation names mail.publicUrl).
  const signIn = app.services.access.signIn;
  signIn.oidc = new OidcProviders(app.config.auth.oidc.providers, app.http.url, memoryLogger().log);
  signIn.settings = { ...signIn.settings, publicUrl: app.http.url };
  provider.register(`${app.http.url}/api/auth/oidc/hospital/callback`, `${app.http.url}/`);

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  return { app, provider, context, page: await context.newPage() };
}

/** The provider's login and consent pages, as a person fills them in. */
async function signInAtProvider(page: Page, provider: TestProvider, login: string): Promise<void> {
  await page.waitForURL((url) => url.href.startsWith(provider.issuer));
  await page.fill('input[name=login]', login);
  await page.fill('input[name=password]', 'any password: the test provider takes any');
  await page.click('button[type=submit]');
  await page.waitForSelector('button[type=submit]:has-text("Continue")');
  await page.click('button[type=submit]:has-text("Continue")');
}

const me = (page: Page) => page.evaluate(async () => (await (await globalThis.fetch('/api/auth/me')).json()) as Me | null);

browserTest('“Sign in with …” goes through the provider and back: the account is made with its source and the roles its groups give; the tokens stay on the server; logout ends the provider’s session too', async (t) => {
  const { app, provider, context, page } = await withProvider(t);
  await page.goto(`${app.http.url}/account/login?next=/account`);
  const button = page.locator('a[data-provider=hospital]');
  t.is((await button.textContent())?.trim(), 'Sign in with Hospital single sign-on');
  await button.click();
  await signInAtProvider(page, provider, 'p.kim');
  await page.waitForURL(`${app.http.url}/account`);
  await page.waitForSelector('[data-testid=account-source]');
  t.is((await page.textContent('[data-testid=account-source]'))?.trim(), 'single sign-on (hospital)');

  const who = await me(page);
  t.like(who, { email: 'p.kim@hospital.example', name: 'Kim Pathologist', roles: ['pathologist'], source: 'oidc:hospital' });
  t.like(app.audit.of('user.created')[0], { details: { source: 'oidc:hospital', externalId: 'p.kim' } });
  t.like(app.audit.of('auth.login').at(-1), { details: { source: 'oidc:hospital', roles: ['pathologist'] } });

  // The ID token is in the session on the server, and nowhere in the browser.
  const rows = (await app.database.db.knex('sessions').select('data')) as { data: string }[];
  const stored = rows.map((row) => (typeof row.data === 'string' ? row.data : JSON.stringify(row.data))).find((data) => data.includes('idToken'));
  t.truthy(stored, 'the session keeps the ID token for logging out at the provider');
  const idToken = (JSON.parse(stored!) as { sso: { idToken: string } }).sso.idToken;
  const cookies = await context.cookies();
  t.false(cookies.some((cookie) => cookie.value.includes(idToken.split('.')[1]!)), 'no cookie carries the ID token');
  // Evaluated in the page, where localStorage and sessionStorage exist; the test's own types know no DOM.
  const storage = await page.evaluate('JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage })');
  t.false(String(storage).includes(idToken.split('.')[1]!));
  t.false((await page.content()).includes(idToken.split('.')[1]!));

  // Logging out: the portal sends the browser to the provider's end-session page, which comes back here.
  await page.click('button:has-text("Log out")');
  await page.waitForURL((url) => url.href.startsWith(`${provider.issuer}/session/end`));
  await page.click('button:has-text("Yes, sign me out")');
  await page.waitForURL((url) => url.href.startsWith(app.http.url));
  t.is(await me(page), null);
  t.true(app.audit.actions().includes('auth.logout'));
});

browserTest('a tampered state is refused before any token is fetched', async (t) => {
  const { app, provider, context, page } = await withProvider(t);
  // Chromium does not show redirects to routes: the provider's answer to the consent form is followed here, through the
  // browser's own cookies, and the browser sent on to the callback with another state.
  await page.route(
    (url) => url.href.startsWith(`${provider.issuer}/interaction/`),
    async (route) => {
      if (route.request().method() !== 'POST' || !(route.request().postData() ?? '').includes('prompt=consent')) return route.continue();
      let response = await route.fetch({ maxRedirects: 0 });
      let location = response.headers().location;
      while (location && new URL(location, provider.issuer).href.startsWith(provider.issuer)) {
        response = await context.request.get(new URL(location, provider.issuer).href, { maxRedirects: 0 });
        location = response.headers().location;
      }
      const callback = new URL(location ?? '', provider.issuer);
      t.is(callback.pathname, '/api/auth/oidc/hospital/callback');
      t.truthy(callback.searchParams.get('code'));
      callback.searchParams.set('state', 'state-of-an-attacker');
      await route.fulfill({ status: 303, headers: { location: callback.href } });
    },
  );
  await page.goto(`${app.http.url}/account/login`);
  await page.click('a[data-provider=hospital]');
  await signInAtProvider(page, provider, 'p.kim');
  await page.waitForURL(/\/account\/login\?signInError=sign_in_refused/);
  await page.waitForSelector('[data-testid=sign-in-error]');
  t.regex((await page.textContent('[data-testid=sign-in-error]')) ?? '', /could not be verified/);
  t.is(await me(page), null);
  t.is(provider.tokenRequests, 0, 'the code was never exchanged');
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'oidc:hospital', reason: 'sign_in_refused' } });
  t.is(app.audit.of('user.created').length, 0);
});

for (const tamper of ['wrong-audience', 'expired'] as const) {
  browserTest(`an ID token ${tamper === 'expired' ? 'that has expired' : 'for another audience'} is refused, though the provider signed it`, async (t) => {
    const { app, provider, page } = await withProvider(t);
    provider.tamper = tamper;
    await page.goto(`${app.http.url}/account/login`);
    await page.click('a[data-provider=hospital]');
    await signInAtProvider(page, provider, 'p.kim');
    await page.waitForURL(/\/account\/login\?signInError=sign_in_refused/);
    t.is(await me(page), null);
    t.is(provider.tokenRequests, 1, 'the token was fetched, and its ID token refused');
    t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'oidc:hospital', reason: 'sign_in_refused' } });
    t.is(app.audit.of('user.created').length, 0);
    t.is(Number((await app.database.db.knex('users').count({ n: '*' }).first())?.n), 0);
  });
}

browserTest('a provider account without an address is refused with a sentence that says why', async (t) => {
  const { app, provider, page } = await withProvider(t);
  await page.goto(`${app.http.url}/account/login`);
  await page.click('a[data-provider=hospital]');
  await signInAtProvider(page, provider, 'no.mail');
  await page.waitForURL(/\/account\/login\?signInError=no_email/);
  await page.waitForSelector('[data-testid=sign-in-error]');
  t.regex((await page.textContent('[data-testid=sign-in-error]')) ?? '', /no e-mail address/);
  t.like(app.audit.of('auth.login_failed').at(-1), { details: { source: 'oidc:hospital', reason: 'no_email' } });
});

browserTest('single sign-on for an address with a local account asks for its local password once, then links the two', async (t) => {
  const { app, provider, page } = await withProvider(t);
  const local = await createUser(app, { level: 'L1', email: 'p.kim@hospital.example', name: 'Kim (registered here)' });
  await page.goto(`${app.http.url}/account/login?next=/account`);
  await page.click('a[data-provider=hospital]');
  await signInAtProvider(page, provider, 'p.kim');
  await page.waitForURL(/\/account\/login\?link=1/);
  await page.waitForSelector('[data-testid=link-accounts]');
  t.regex((await page.textContent('[data-testid=link-accounts]')) ?? '', /p\.kim@hospital\.example has a Slidebank account already/);
  t.is(await me(page), null, 'not logged in before the local password is given');

  await page.fill('input[name=linkPassword]', 'not the local password');
  await page.click('[data-testid=link-accounts] button[type=submit]');
  await page.waitForSelector('[data-testid=link-accounts] [role=alert]');
  t.is(await me(page), null);

  await page.fill('input[name=linkPassword]', TEST_PASSWORD);
  await page.click('[data-testid=link-accounts] button[type=submit]');
  await page.waitForURL(`${app.http.url}/account`);
  t.like(await me(page), { email: 'p.kim@hospital.example', source: 'oidc:hospital', roles: ['pathologist'] });
  t.like(app.audit.of('user.linked')[0], { subjectId: local.id, details: { source: 'oidc:hospital', externalId: 'p.kim' } });
  t.is(app.audit.of('user.created').length, 0, 'the local account, not a new one');
});
