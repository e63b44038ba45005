/**
 * The data use agreement in a real browser against the real server as its
 * own process, from a fresh installation: the first start installs the
 * default text, which the administration asks to review; the administrator
 * edits it as a draft, previews it and publishes it; a researcher reads it,
 * downloads the page to print and sign, and applies with "I accept"; the
 * administrators are mailed and the header shows the administrator a badge;
 * the approval asks for confirmation and says what it did. Screenshots go to
 * test/artifacts/ (git-ignored).
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { Client, logIn, TEST_PASSWORD } from '../support/accounts.js';
import { artifactsDir, browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { appliance } from '../support/appliance.js';
import { testDialect } from '../support/database.js';

async function mailsIn(folder: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(folder, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile() && entry.name.endsWith('.eml')) found.push(await readFile(path.join(entry.parentPath, entry.name), 'utf8'));
  }
  return found;
}

browserTest(`the agreement in the browser: default text reviewed and republished, "I accept", the template to sign, the admin's badge and confirmed approval (${testDialect})`, async (t) => {
  t.timeout(300_000);
  await ensureWebBuilt();
  await mkdir(artifactsDir, { recursive: true });
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(artifactsDir, `web-agreements-${name}.png`), fullPage: true });

  const { root, base, site, cli, serve } = await appliance(t);
  await cli(['user', 'add', '--email', 'admin@hospital.example', '--level', 'L1', '--role', 'admin', '--name', 'Admin'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await cli(['user', 'add', '--email', 'alice@uni.example', '--level', 'L1', '--name', 'Alice'], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  await serve();

  const adminApi = await logIn(site, 'admin@hospital.example');
  const installed = await adminApi.get<{ items: { version: string; isDefault: boolean }[] }>('/api/admin/dua/versions');
  t.deepEqual(installed.body.items.map((v) => [v.version, v.isDefault]), [['1', true]], 'the first start installed the default text');

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const watch = (page: Page) => {
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/401/.test(message.text())) pageErrors.push(message.text());
    });
  };

  // The administrator is asked to review the default text, in the overview and on the agreements tab.
  const adminContext = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  const admin = await adminContext.newPage();
  watch(admin);
  await logInThroughPortal(admin, base, 'admin@hospital.example', TEST_PASSWORD, '/admin/users');
  await admin.getByTestId('default-agreement-reminder').waitFor();
  await admin.getByTestId('default-agreement-reminder').getByRole('link', { name: 'Review the agreement text' }).click();
  await admin.waitForURL(`${base}/admin/dua`);
  const notice = admin.getByTestId('default-agreement-notice');
  await notice.waitFor();
  t.regex((await notice.textContent()) ?? '', /default agreement text installed with Slidebank is in force/);
  t.regex((await admin.getByTestId('current-agreement').textContent()) ?? '', /CC BY-NC 4\.0/);
  await shot(admin, '1-review');

  // Edited as a draft, previewed, published after a confirmation.
  await admin.getByRole('button', { name: 'Edit as a new draft' }).click();
  const editor = admin.getByTestId('draft-editor');
  await editor.locator('input[name=title]').fill('Slidebank data use agreement, hospital edition');
  const body = editor.locator('textarea[name=body]');
  await body.fill(`${await body.inputValue()}\n## 9. Contact\n\nWrite to the **data protection office** of the hospital.\n`);
  await editor.getByRole('button', { name: 'Save draft and preview' }).click();
  await editor.getByTestId('draft-preview').locator('strong', { hasText: 'data protection office' }).waitFor();
  t.is((await new Client(site).get<{ version: string }>('/api/dua/current')).body.version, '1', 'the draft is not shown to researchers');
  await editor.getByRole('button', { name: 'Publish…' }).click();
  await editor.getByRole('button', { name: 'Yes, publish' }).click();
  await admin.getByTestId('published').waitFor();
  t.regex((await admin.getByTestId('published').textContent()) ?? '', /Version 2 is published/);
  // Once another text is in force, the notice to review the default one is gone.
  await admin.getByTestId('default-agreement-notice').waitFor({ state: 'detached' });
  t.is(await admin.getByTestId('dua-pending-badge').count(), 0, 'nothing waits yet');
  await shot(admin, '2-published');

  // The researcher reads the text, gets the page to print and sign, and applies with "I accept".
  const researcherContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await researcherContext.newPage();
  watch(page);
  await logInThroughPortal(page, base, 'alice@uni.example', TEST_PASSWORD, '/account');
  const text = page.getByTestId('agreement-text');
  await text.waitFor();
  t.regex((await text.textContent()) ?? '', /data protection office/);
  t.is(await text.locator('h2', { hasText: 'No attempt to re-identify patients' }).count(), 1, 'the Markdown is rendered');
  const templateLink = page.getByTestId('agreement-template');
  const [printable] = await Promise.all([researcherContext.waitForEvent('page'), templateLink.click()]);
  await printable.waitForLoadState();
  t.regex(await printable.title(), /hospital edition \(version 2\)/);
  t.regex((await printable.locator('body').textContent()) ?? '', /Signature[\s\S]*Place and date/);
  await printable.close();

  const form = page.getByTestId('dua-form');
  await form.locator('input[name=project]').fill('KidneySeg');
  await form.locator('input[name=principalInvestigator]').fill('Prof. Example');
  await form.locator('textarea[name=researchPurpose]').fill('Tumour segmentation');
  t.true(await form.locator('button[type=submit]').isDisabled(), 'no application without "I accept"');
  await form.getByLabel('I accept').check();
  await form.locator('button[type=submit]').click();
  await page.getByText('Your application is submitted.').waitFor();
  await shot(page, '3-applied');

  // The administrators are mailed (the outbox, without SMTP), and the header shows the administrator a badge.
  let mails: string[] = [];
  for (let i = 0; i < 50 && !mails.some((m) => /New Slidebank data use agreement application/.test(m)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    mails = await mailsIn(root);
  }
  const toAdmin = mails.find((m) => /New Slidebank data use agreement application/.test(m));
  t.truthy(toAdmin, 'a mail to the administrator');
  t.regex(toAdmin ?? '', /To: admin@hospital\.example/i);

  await admin.goto(`${base}/admin/users`);
  const badge = admin.getByTestId('dua-pending-badge');
  await badge.waitFor();
  t.is((await badge.textContent())?.trim(), '1');
  t.regex((await badge.getAttribute('aria-label')) ?? '', /1 DUA application waiting for a decision/);
  await shot(admin, '4-badge');
  await badge.click();
  await admin.waitForURL(`${base}/admin/dua`);
  const application = admin.locator('[data-application-id]', { hasText: 'KidneySeg' });
  await application.getByRole('button', { name: 'Approve' }).click();
  await application.getByText('Approve alice@uni.example?').waitFor();
  await application.getByRole('button', { name: 'Yes, approve' }).click();
  await admin.getByTestId('decision-outcome').waitFor();
  t.regex((await admin.getByTestId('decision-outcome').textContent()) ?? '', /Approved: alice@uni\.example may download until/);
  await admin.getByText('No application waits for a decision').waitFor();
  await admin.getByTestId('dua-pending-badge').waitFor({ state: 'detached' });
  await shot(admin, '5-approved');

  // Approved, the researcher files the annual report: the form closes and says what happens next.
  await page.reload();
  const reportForm = page.getByTestId('report-form');
  await reportForm.waitFor();
  await reportForm.getByLabel('What you used the data for').fill('Segmentation training');
  await reportForm.getByLabel('Results').fill('Dice 0.86');
  await reportForm.getByRole('button', { name: 'File the report' }).click();
  await page.getByTestId('report-filed').waitFor();
  t.regex((await page.getByTestId('report-filed').textContent()) ?? '', /once it is approved your agreement runs a year longer/);
  t.is(await page.getByTestId('report-form').count(), 0, 'the form is closed while the report waits');
  await shot(page, '6-report-filed');
  await admin.goto(`${base}/admin/users`);
  await admin.getByTestId('dua-pending-badge').waitFor();
  t.regex((await admin.getByTestId('dua-pending-badge').getAttribute('aria-label')) ?? '', /1 usage report waiting/);
  await admin.goto(`${base}/admin/dua`);

  // The decisions of one user, and an approval revoked with a reason (audited; the holder is mailed).
  await admin.getByTestId('history-lookup').locator('select[name=user]').selectOption({ label: 'alice@uni.example' });
  await admin.getByRole('button', { name: 'Show the history' }).click();
  const history = admin.getByTestId('dua-history');
  await history.locator('tr[data-status=approved]').waitFor();
  await history.getByRole('button', { name: 'Revoke…' }).click();
  await history.getByRole('textbox', { name: 'Reason for the revocation' }).fill('Data shared outside the project');
  await history.getByRole('button', { name: 'Yes, revoke' }).click();
  await history.locator('tr[data-status=revoked]', { hasText: 'Data shared outside the project' }).waitFor();
  t.regex((await admin.getByTestId('decision-outcome').textContent()) ?? '', /Revoked: alice@uni\.example can no longer download/);
  const audit = (await adminApi.get<{ items: { action: string }[] }>('/api/admin/audit?pageSize=100')).body.items.map((e) => e.action);
  t.true(audit.includes('dua.revoked'));
  await shot(admin, '7-revoked');

  t.deepEqual(pageErrors, [], 'no script errors or CSP violations in the console');
});
