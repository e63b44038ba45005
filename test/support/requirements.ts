import test, { type ImplementationFn } from 'ava';

/**
 * A test that needs something the repository does not hold: the real slides in
 * ../shared/fixtures, or a system tool that .ci/run installs (OpenSlide,
 * tiffcp, chromium, ansible, ...). `problems` names what is missing here, one
 * reason each (undefined or null for what is present). With nothing missing the
 * test runs. Otherwise it is skipped with the reasons in its title, or, under
 * SLIDEBANK_REQUIRE_FIXTURES=1 (as in CI), fails with them, so that it can
 * never skip unseen.
 */
export function testNeeding(
  problems: (string | undefined | null)[],
  title: string,
  implementation: ImplementationFn<[]>,
  { serial = false }: { serial?: boolean } = {},
): void {
  const missing = problems.filter((problem): problem is string => typeof problem === 'string');
  const declare = serial ? test.serial : test;
  if (missing.length === 0) declare(title, implementation);
  else if (missingFails()) declare(title, (t) => t.fail(`${missing.join('; ')} (SLIDEBANK_REQUIRE_FIXTURES=1)`));
  else declare.skip(`${title} (skipped: ${missing.join('; ')})`, implementation);
}

/** Whether what a test needs must be there (CI): SLIDEBANK_REQUIRE_FIXTURES=1. */
export function missingFails(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.SLIDEBANK_REQUIRE_FIXTURES === '1';
}
