// Builds the optional native parts (native/scaled-jpeg) with node-gyp, as part of
// `npm run build` and so of `npm ci`. Without a C compiler or libjpeg-turbo's
// headers (Debian: libturbojpeg0-dev; RHEL: turbojpeg-devel) the build is skipped
// with a warning and the tile engine uses its general path; CI sets
// SLIDEBANK_REQUIRE_NATIVE=1 so that a failed build fails there.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const required = process.env.SLIDEBANK_REQUIRE_NATIVE === '1';
// npm names its bundled node-gyp in every script's environment.
const nodeGyp = process.env.npm_config_node_gyp;

function skip(reason) {
  const message = `native/scaled-jpeg not built: ${reason}. Tiles are still served, through the general (slower) path.`;
  if (required) {
    console.error(`${message} SLIDEBANK_REQUIRE_NATIVE=1: failing.`);
    process.exit(1);
  }
  console.warn(`warning: ${message} Install a C compiler and libturbojpeg0-dev (Debian) or turbojpeg-devel (RHEL), then npm run build:native.`);
  process.exit(0);
}

// `npm start` builds first: an addon newer than its sources is left as it is.
const addonDir = path.join(here, 'scaled-jpeg');
const built = path.join(addonDir, 'build', 'Release', 'scaled_jpeg.node');
const sources = ['binding.gyp', ...readdirSync(path.join(addonDir, 'src')).map((name) => path.join('src', name))];
if (existsSync(built) && sources.every((source) => statSync(path.join(addonDir, source)).mtimeMs <= statSync(built).mtimeMs)) {
  console.log('native/scaled-jpeg is up to date');
  process.exit(0);
}

if (!nodeGyp || !existsSync(nodeGyp)) skip('node-gyp not found (run this through npm: npm run build:native)');
if (!existsSync('/usr/include/turbojpeg.h') && !existsSync('/usr/local/include/turbojpeg.h')) skip('turbojpeg.h not found');
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--loglevel=warn'], { cwd: addonDir, stdio: 'inherit' });
if (result.status !== 0) skip(`node-gyp exited with ${result.status ?? result.signal}`);
console.log('native/scaled-jpeg built');
