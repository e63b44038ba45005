import test, { type ImplementationFn } from 'ava';

/**
 * A test of one of the native addons (native/*): it runs where the addon is
 * built, fails in CI (.ci/run builds the addons and sets
 * SLIDEBANK_REQUIRE_NATIVE=1), and is skipped with the reason elsewhere.
 */
export function nativeTest(unavailable: string | undefined, title: string, implementation: ImplementationFn<[]>): void {
  if (!unavailable) test(title, implementation);
  else if (process.env.CI || process.env.SLIDEBANK_REQUIRE_NATIVE === '1') test(title, (t) => t.fail(unavailable));
  else test.skip(`${title} (skipped: ${unavailable})`, implementation);
}
