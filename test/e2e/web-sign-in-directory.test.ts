/**
 * Directory sign-in in a real browser (Debian's chromium through
 * playwright-core) against a real OpenLDAP server (test/support/slapd.ts): a
 * member of the directory's admins group logs in on the portal's login form
 * with the directory password, and finds, in the administration, each user's
 * source, the group mapping in effect, and the switch for a directory
 * account's local password; the account page says where the account comes from.
 */
import { createUser } from '../support/accounts.js';
import { ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { startTestApp } from '../support/app.js';
import { GROUPS, ldapEnv, PEOPLE, slapdTest, startSlapd } from '../support/slapd.js';

slapdTest('a directory administrator logs in on the portal and sees where accounts come from and the mapping in effect', async (t) => {
  await ensureWebBuilt();
  const slapd = await startSlapd(t);
  const app = await startTestApp(t, { env: ldapEnv(slapd) });
  await createUser(app, { level: 'L1', email: 'researcher@university.example' });
  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const page = await browser.newPage();

  await page.goto(`${app.http.url}/account/login`);
  const hint = page.locator('p', { hasText: 'Hospital staff' });
  await hint.waitFor();
  t.regex((await hint.textContent()) ?? '', /Hospital staff: log in with your hospital e-mail address and your directory password\s+\(@hospital\.example\)/);
  await logInThroughPortal(page, app.http.url, PEOPLE.dave.mail, PEOPLE.dave.password, '/account');
  await page.waitForSelector('[data-testid=account-source]');
  t.is((await page.textContent('[data-testid=account-source]'))?.trim(), 'the hospital directory');

  await page.goto(`${app.http.url}/admin/users`);
  const dave = page.locator(`tr[data-user-email="${PEOPLE.dave.mail}"]`);
  await dave.waitFor();
  t.regex((await dave.locator('td[data-source]').textContent()) ?? '', /the hospital directory/);
  t.regex((await dave.textContent()) ?? '', /Forbid local password/);
  t.regex((await page.locator('tr[data-user-email="researcher@university.example"] td[data-source]').textContent()) ?? '', /registered here/);

  const mapping = page.locator('[data-testid=sign-in-mapping]');
  await mapping.locator('summary').click();
  const text = (await mapping.textContent()) ?? '';
  t.true(text.includes(slapd.ldapsUrl) && text.includes('(ldaps)'));
  t.true(text.includes(GROUPS.admins), 'the admin role’s group');
  t.true(text.includes('Partner Laboratory (L3)'));
  t.regex(text, /1 the hospital directory, 1 registered here/);
  t.false(text.includes('service account secret'), 'never the bind password');

  await dave.getByRole('button', { name: `Forbid the local password of ${PEOPLE.dave.mail}` }).click();
  await dave.getByRole('button', { name: `Allow the local password of ${PEOPLE.dave.mail}` }).waitFor();
  t.is(app.audit.of('user.local_login_disabled').length, 1);
});
