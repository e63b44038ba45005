// Plain JavaScript: ava reads its configuration, and .ci/run this module, without tsx.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Subsets of the suite, found by rule rather than listed, so that a new file
 * cannot be left out. A file belongs to a subset when it, or a module under
 * test/ that it imports (at any depth), imports the subset's helper or names
 * what the helper stands for.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const RELATIVE_IMPORT = /\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]|\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/**
 * The files whose outcome depends on the test database (`npm run test:db`):
 * they import test/support/database.ts or read TEST_DATABASE_URL.
 *
 * @param {string} [dir] the project folder
 * @returns {string[]} paths relative to `dir`, sorted
 */
export function databaseTestFiles(dir = root) {
  return testFilesUsing(dir, 'test/support/database.ts', /TEST_DATABASE_URL/);
}

/**
 * The files whose outcome depends on ../shared/fixtures being there (.ci/run
 * runs them once without it): they import test/support/fixtures.ts or name
 * the folder themselves.
 *
 * @param {string} [dir] the project folder
 * @returns {string[]} paths relative to `dir`, sorted
 */
export function fixtureTestFiles(dir = root) {
  return testFilesUsing(dir, 'test/support/fixtures.ts', /shared\/fixtures|SLIDEBANK_FIXTURES_DIR|['"]shared['"]/);
}

/** @returns {string[]} */
function testFilesUsing(dir, helper, mention) {
  const helperFile = path.join(dir, helper);
  const testDir = path.join(dir, 'test') + path.sep;
  const supportDir = path.join(dir, 'test', 'support') + path.sep;
  const memo = new Map();
  const uses = (file, visiting) => {
    if (file === helperFile) return true;
    if (memo.has(file)) return memo.get(file);
    if (visiting.has(file)) return false;
    visiting.add(file);
    const text = readFileSync(file, 'utf8');
    // The helpers in test/support speak of what they stand for; only their imports count.
    let found = !file.startsWith(supportDir) && mention.test(text);
    for (const match of text.matchAll(RELATIVE_IMPORT)) {
      if (found) break;
      const target = path.resolve(path.dirname(file), match[1] ?? match[2]);
      const source = target.replace(/\.js$/, '.ts');
      const module = existsSync(source) ? source : target;
      if (module.startsWith(testDir) && existsSync(module)) found = uses(module, visiting);
    }
    visiting.delete(file);
    memo.set(file, found);
    return found;
  };
  // test/cluster/ runs on its own (`npm run test:cluster`), as in ava.config.js.
  const clusterDir = path.join(dir, 'test', 'cluster') + path.sep;
  const files = testFiles(testDir).filter((file) => !file.startsWith(clusterDir) && uses(file, new Set()));
  if (files.length === 0) throw new Error(`no test file uses ${helper}: the rule in test/support/test-files.js is broken`);
  return files.map((file) => path.relative(dir, file)).sort();
}

/** @returns {string[]} */
function testFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(file);
    return entry.name.endsWith('.test.ts') ? [file] : [];
  });
}
