import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { AxeResults, ImpactValue } from 'axe-core';
import type { Page } from 'playwright-core';

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeFinding {
  rule: string;
  impact: ImpactValue | undefined;
  help: string;
  /** CSS selectors of the offending elements, with axe's summary of what is wrong. */
  nodes: { target: string; summary: string }[];
}

const SEVERE: ImpactValue[] = ['serious', 'critical'];

/**
 * The axe-core violations of impact serious or critical on the page as it is
 * now. axe is evaluated through the DevTools protocol rather than as an
 * inline script, which the portal's Content-Security-Policy would refuse.
 */
export async function severeAxeViolations(page: Page): Promise<AxeFinding[]> {
  if (!(await page.evaluate('typeof window.axe === "object"'))) await page.evaluate(axeSource);
  // A string, not a function: the tests are compiled without the DOM's types.
  const results = (await page.evaluate(`window.axe.run(document, { resultTypes: ['violations'] })`)) as AxeResults;
  return results.violations
    .filter((violation) => violation.impact && SEVERE.includes(violation.impact))
    .map((violation) => ({
      rule: violation.id,
      impact: violation.impact ?? undefined,
      help: violation.help,
      nodes: violation.nodes.map((node) => ({ target: node.target.join(' '), summary: (node.failureSummary ?? '').replace(/\s+/g, ' ').trim() })),
    }));
}

/**
 * How far the page scrolls sideways (0 when it does not), and the elements
 * that reach beyond the window's right edge, innermost first, to name the
 * culprit.
 */
export async function horizontalOverflow(page: Page): Promise<{ excess: number; culprits: string[] }> {
  return (await page.evaluate(`(() => {
    const excess = document.documentElement.scrollWidth - window.innerWidth;
    if (excess <= 0) return { excess: 0, culprits: [] };
    const describe = (element) => element.tagName.toLowerCase() + (element.id ? '#' + element.id : '') + [...element.classList].map((c) => '.' + c).join('');
    const wide = [...document.body.querySelectorAll('*')].filter((element) => element.getBoundingClientRect().right > window.innerWidth + 1);
    const innermost = wide.filter((element) => !wide.some((other) => other !== element && element.contains(other)));
    return { excess, culprits: innermost.slice(0, 8).map((element) => {
      const path = [];
      for (let at = element; at && at !== document.body && path.length < 4; at = at.parentElement) path.unshift(describe(at));
      return path.join(' > ') + ' (right ' + Math.round(element.getBoundingClientRect().right) + ')';
    }) };
  })()`)) as { excess: number; culprits: string[] };
}
