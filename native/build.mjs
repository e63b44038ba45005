// Builds the optional native addons with node-gyp, as part of `npm run build`
// and so of `npm ci`:
//   native/scaled-jpeg  libjpeg-turbo's scaled decoding of stored JPEG tiles
//                       (needs libturbojpeg0-dev on Debian, turbojpeg-devel on RHEL);
//   native/page-cache   tile reads served from the page cache on the calling thread.
// Without a C compiler or the headers an addon is skipped with a warning and the
// tile engine uses its general path; CI sets SLIDEBANK_REQUIRE_NATIVE=1 so that
// a failed build fails there.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const required = process.env.SLIDEBANK_REQUIRE_NATIVE === '1';
// npm names its bundled node-gyp in every script's environment.
const nodeGyp = process.env.npm_config_node_gyp;

const ADDONS = [
  {
    dir: 'scaled-jpeg',
    file: 'scaled_jpeg.node',
    headers: ['turbojpeg.h'],
    install: 'a C compiler and libturbojpeg0-dev (Debian) or turbojpeg-devel (RHEL)',
    without: 'tiles between stored levels are decoded in full and resized (slower)',
  },
  {
    dir: 'page-cache',
    file: 'page_cache.node',
    headers: [],
    install: 'a C compiler',
    without: 'every tile read goes through the thread pool (slower)',
  },
];

let failed = false;
for (const addon of ADDONS) {
  const reason = build(addon);
  if (!reason) continue;
  const message = `native/${addon.dir} not built: ${reason}. Tiles are still served: ${addon.without}.`;
  if (required) {
    console.error(`${message} SLIDEBANK_REQUIRE_NATIVE=1: failing.`);
    failed = true;
  } else {
    console.warn(`warning: ${message} Install ${addon.install}, then npm run build:native.`);
  }
}
process.exit(failed ? 1 : 0);

/** Builds one addon unless it is newer than its sources (`npm start` builds first); returns why it could not. */
function build({ dir, file, headers }) {
  const addonDir = path.join(here, dir);
  const built = path.join(addonDir, 'build', 'Release', file);
  const sources = ['binding.gyp', ...readdirSync(path.join(addonDir, 'src')).map((name) => path.join('src', name))];
  if (existsSync(built) && sources.every((source) => statSync(path.join(addonDir, source)).mtimeMs <= statSync(built).mtimeMs)) {
    console.log(`native/${dir} is up to date`);
    return undefined;
  }
  if (!nodeGyp || !existsSync(nodeGyp)) return 'node-gyp not found (run this through npm: npm run build:native)';
  const missing = headers.find((header) => !existsSync(`/usr/include/${header}`) && !existsSync(`/usr/local/include/${header}`));
  if (missing) return `${missing} not found`;
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--loglevel=warn'], { cwd: addonDir, stdio: 'inherit' });
  if (result.status !== 0) return `node-gyp exited with ${result.status ?? result.signal}`;
  console.log(`native/${dir} built`);
  return undefined;
}
