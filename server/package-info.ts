import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root folder and version. Found by walking up from
 * this file, so it is the same whether the code runs from `server/` (tsx) or
 * from `dist/server/` (compiled).
 */
function findRoot(): { root: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'slidebank') return { root: dir, version: pkg.version ?? '0.0.0' };
    } catch {
      // no package.json here: keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('slidebank: cannot find the package root (package.json named "slidebank")');
    dir = parent;
  }
}

export const { root: packageRoot, version } = findRoot();
