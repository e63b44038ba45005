#!/usr/bin/env node
// The installed command runs the compiled code; `npm run build` (run by `npm install`) makes it.
import { existsSync } from 'node:fs';

const compiled = new URL('../dist/server/cli/main.js', import.meta.url);
if (!existsSync(compiled)) {
  process.stderr.write('slidebank: not built yet. Run `npm run build` in the Slidebank folder first.\n');
  process.exit(1);
}
await import(compiled.href);
