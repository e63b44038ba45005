/**
 * Every page of the portal, as the kind of user it is for, checked by axe-core
 * at a desktop size (1440×900) and a phone size (390×844): no violation of
 * impact serious or critical, and at phone size no page that scrolls sideways.
 * One browser; one context per user, resized between the two passes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { makeSlide } from '../support/slides.js';
import { logIn, TEST_PASSWORD } from '../support/accounts.js';
import { browserTest, ensureWebBuilt, launchChromium, logInThroughPortal } from '../support/browser.js';
import { appliance } from '../support/appliance.js';
import { horizontalOverflow, severeAxeViolations } from '../support/axe.js';
import { testDialect } from '../support/database.js';

type Who = 'anonymous' | 'researcher' | 'admin' | 'pathologist';
const VIEWPORTS = [
  { width: 1440, height: 900 },
  { width: 390, height: 844 },
];

browserTest(`every portal page passes axe (serious, critical) at 1440 and 390 px wide and does not scroll sideways on a phone (${testDialect})`, async (t) => {
  t.timeout(300_000);
  await ensureWebBuilt();

  const { root, base, site, cli, serve } = await appliance(t);
  const people: [Exclude<Who, 'anonymous'>, string, string[]][] = [
    ['researcher', 'rita@partner.example', ['--level', 'L2']],
    ['admin', 'admin@hospital.example', ['--level', 'L1', '--role', 'admin']],
    ['pathologist', 'ana@hospital.example', ['--level', 'L1', '--role', 'pathologist']],
  ];
  for (const [, email, flags] of people) {
    await cli(['user', 'add', '--email', email, '--name', email.split('@')[0]!, ...flags], { SLIDEBANK_USER_PASSWORD: TEST_PASSWORD });
  }
  const inbox = path.join(root, 'in');
  await mkdir(inbox);
  await makeSlide({ width: 3000, height: 2000, seed: 5, out: inbox, name: 'colon-a' });
  await makeSlide({ width: 2400, height: 1600, seed: 6, out: inbox, name: 'colon-b' });
  await cli(['ingest', inbox, '--organ', 'CO', '--histology', 'ADC', '--stain', 'HE', '--differentiation', 'MD']);
  await serve();
  const adminApi = await logIn(site, 'admin@hospital.example');
  const slideId = (await adminApi.get<{ items: { id: number }[] }>('/api/slides')).body.items[0]!.id;
  // An AI proposal, so that the worklist has a row and the review page an outline.
  const proposal = path.join(root, 'proposal.geojson');
  const square = [[800, 600], [2200, 600], [2200, 1400], [800, 1400], [800, 600]];
  await writeFile(proposal, JSON.stringify({ type: 'FeatureCollection', features: [{ type: 'Feature', properties: { layerId: 1, layerName: 'Tumor' }, geometry: { type: 'Polygon', coordinates: [square] } }] }));
  await cli(['annotations', 'import', proposal, '--slide', String(slideId), '--model', 'unet-v3']);

  const pages: [Who, string][] = [
    ['anonymous', '/'],
    ['anonymous', '/guide'],
    ['anonymous', '/account/login'],
    ['anonymous', '/account/register'],
    ['anonymous', '/account/forgot-password'],
    ['anonymous', '/account/reset-password#token=not-a-real-token'],
    ['anonymous', '/no/such/page'],
    ['researcher', '/catalog'],
    ['researcher', `/slides/${slideId}`],
    ['researcher', '/account'],
    ['researcher', '/account/change-password'],
    ['admin', '/datasets'],
    ['admin', '/admin/dua'],
    ['admin', '/admin/users'],
    ['admin', '/admin/institutions'],
    ['admin', '/admin/pages'],
    ['admin', '/admin/audit'],
    ['admin', '/admin/slides'],
    ['admin', '/admin/ingest'],
    ['admin', '/admin/jobs'],
    ['admin', '/admin/queue'],
    ['pathologist', '/worklist'],
    ['pathologist', `/slides/${slideId}/review`],
  ];

  // What axe cannot see: checks of particular pages, each answering a list of problems.
  const describedBy = (page: Page, selector: string) =>
    page.locator(selector).evaluate((input) => {
      const element = input as unknown as { getAttribute(name: string): string | null; ownerDocument: { getElementById(id: string): { textContent: string | null } | null } };
      return (element.getAttribute('aria-describedby') ?? '').split(/\s+/).map((id) => element.ownerDocument.getElementById(id)?.textContent ?? '').join(' ');
    });
  const passwordHint = async (page: Page, selector: string) => (/12 characters/.test(await describedBy(page, selector)) ? [] : [`${selector} has no description with the password rules`]);
  const focused = (page: Page) => page.evaluate('document.activeElement ? (document.activeElement.id || document.activeElement.textContent) : null');
  const checks = new Map<string, (page: Page) => Promise<string[]>>([
    [
      '/',
      async (page) => {
        // The first Tab reaches the skip link; Enter moves the focus to the page's content.
        await page.locator('body').focus();
        await page.keyboard.press('Tab');
        if ((await focused(page)) !== 'Skip to main content') return [`the first Tab reaches ${String(await focused(page))}, not the skip link`];
        await page.keyboard.press('Enter');
        return (await focused(page)) === 'main' ? [] : ['the skip link does not move the focus to the content'];
      },
    ],
    ['/account/register', (page) => passwordHint(page, 'input[name=password]')],
    ['/account/reset-password#token=not-a-real-token', (page) => passwordHint(page, 'input[name=password]')],
    ['/account/change-password', (page) => passwordHint(page, 'input[name=newPassword]')],
    ['/account', (page) => passwordHint(page, 'input[name=newPassword]')],
    [
      '/catalog',
      async (page) => {
        const found: string[] = [];
        const links = await page.locator('.grid > li').evaluateAll((cards) => cards.map((card) => (card as unknown as { querySelectorAll(s: string): { length: number } }).querySelectorAll('a[href]').length));
        if (links.length === 0 || links.some((count) => count !== 1)) found.push(`links per catalog card: ${links.join(', ')} (one each expected)`);
        const live = await page.locator('[aria-live], [role=status], [role=alert]').evaluateAll((regions) => regions.filter((region) => (region as unknown as { querySelector(s: string): unknown }).querySelector('.grid') !== null).length);
        if (live > 0) found.push('a live region holds the whole result grid');
        if ((await page.getByRole('status').filter({ hasText: /\d+ slides?/ }).count()) !== 1) found.push('the result count is not a status');
        return found;
      },
    ],
    [
      `/slides/${slideId}`,
      async (page) => {
        const map = page.getByRole('region', { name: /^Slide / });
        if ((await map.count()) !== 1) return ['the slide viewer has no region named after the slide'];
        if ((await map.getAttribute('tabindex')) !== '0') return ['the slide viewer cannot be reached with the keyboard'];
        return /Arrow keys/.test(await describedBy(page, '[data-testid=viewer]')) ? [] : ['the slide viewer does not describe its keys'];
      },
    ],
    [`/slides/${slideId}/review`, async (page) => ((await page.getByRole('region', { name: 'Slide with the outline' }).count()) === 1 ? [] : ['the review map has no name'])],
  ]);

  const browser = await launchChromium();
  t.teardown(() => browser.close());
  const pageErrors: string[] = [];
  const tabs = new Map<Who, Page>();
  const contexts: BrowserContext[] = [];
  for (const who of ['anonymous', ...people.map(([kind]) => kind)] as Who[]) {
    const context = await browser.newContext({ viewport: VIEWPORTS[0] });
    contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (error) => pageErrors.push(`${who}: ${error.message}`));
    const email = people.find(([kind]) => kind === who)?.[1];
    if (email) await logInThroughPortal(page, base, email, TEST_PASSWORD, '/account');
    tabs.set(who, page);
  }

  const problems: string[] = [];
  for (const viewport of VIEWPORTS) {
    for (const page of tabs.values()) await page.setViewportSize(viewport);
    for (const [who, pathname] of pages) {
      const page = tabs.get(who)!;
      const where = `${pathname} (${who}, ${viewport.width}×${viewport.height})`;
      await page.goto(`${base}${pathname}`, { waitUntil: 'networkidle' });
      if (!(await page.locator('main h1').first().waitFor({ timeout: 10_000 }).then(() => true, () => false))) problems.push(`${where}: no heading h1 in main`);
      await page.locator('.loading').first().waitFor({ state: 'detached', timeout: 10_000 }).catch(() => undefined);
      t.false(/\/account\/login/.test(page.url()) && !pathname.startsWith('/account/login'), `${where} was not sent to the login form`);
      for (const finding of await severeAxeViolations(page)) {
        problems.push(`${where}: ${finding.rule} (${finding.impact}) ${finding.help}\n${finding.nodes.map((node) => `    ${node.target}: ${node.summary}`).join('\n')}`);
      }
      for (const problem of (await checks.get(pathname)?.(page)) ?? []) problems.push(`${where}: ${problem}`);
      if (viewport.width < 500) {
        const overflow = await horizontalOverflow(page);
        if (overflow.excess > 0) problems.push(`${where}: scrolls sideways by ${overflow.excess} px\n${overflow.culprits.map((culprit) => `    ${culprit}`).join('\n')}`);
      }
    }
  }
  for (const context of contexts) await context.close();

  t.is(problems.join('\n'), '');
  t.deepEqual(pageErrors, [], 'no script errors');
});
