// Builds the optional native addons with node-gyp, as part of `npm run build`
// and so of `npm ci`:
//   native/scaled-jpeg  libjpeg-turbo's scaled decoding of stored JPEG tiles;
//   native/page-cache   tile reads served from the page cache on the calling thread.
// Both need only a C compiler. The scaled-JPEG addon links the system's
// libturbojpeg where its headers are installed (libturbojpeg0-dev on Debian,
// turbojpeg-devel on RHEL: the distribution then keeps it patched), and
// otherwise the libturbojpeg that the @julusian/jpeg-turbo npm package ships
// prebuilt for Linux, copied beside the addon (see src/turbojpeg-api.h).
// SLIDEBANK_TURBOJPEG=system or =npm forces one of the two.
// Without a compiler or a library an addon is skipped with a warning and the
// tile engine uses its general path; CI sets SLIDEBANK_REQUIRE_NATIVE=1 so that
// a failed build fails there.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const required = process.env.SLIDEBANK_REQUIRE_NATIVE === '1';
// npm names its bundled node-gyp in every script's environment.
const nodeGyp = process.env.npm_config_node_gyp;
const TURBOJPEG_PACKAGE = '@julusian/jpeg-turbo';
/** Written beside each built addon: what it was built against, so that a change of library rebuilds it. */
const BUILD_RECORD = 'slidebank-build.json';

const ADDONS = [
  {
    dir: 'scaled-jpeg',
    file: 'scaled_jpeg.node',
    library: turbojpegLibrary,
    without: 'tiles between stored levels are decoded in full and resized (slower)',
  },
  {
    dir: 'page-cache',
    file: 'page_cache.node',
    library: () => ({ library: { source: 'none' } }),
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
    console.warn(`warning: ${message} Then run npm run build:native.`);
  }
}
process.exit(failed ? 1 : 0);

/** Builds one addon unless it is newer than its sources and built against the same library (`npm start` builds first); returns why it could not. */
function build({ dir, file, library: chooseLibrary }) {
  const addonDir = path.join(here, dir);
  const release = path.join(addonDir, 'build', 'Release');
  const built = path.join(release, file);
  const { library, problem } = chooseLibrary();
  if (!library) return problem;
  const record = JSON.stringify({ library });
  const sources = ['binding.gyp', ...readdirSync(path.join(addonDir, 'src')).map((name) => path.join('src', name))];
  if (
    existsSync(built) &&
    sources.every((source) => statSync(path.join(addonDir, source)).mtimeMs <= statSync(built).mtimeMs) &&
    readRecord(release) === record
  ) {
    console.log(`native/${dir} is up to date${describe(library)}`);
    return undefined;
  }
  if (!nodeGyp || !existsSync(nodeGyp)) return 'node-gyp not found (run this through npm: npm run build:native)';
  const defines = library.source === 'npm' ? ['--', `-Dturbojpeg_dir=${path.dirname(library.file)}`] : [];
  const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--loglevel=warn', ...defines], { cwd: addonDir, stdio: 'inherit' });
  if (result.status !== 0) return `node-gyp exited with ${result.status ?? result.signal} (it needs a C compiler: build-essential on Debian, gcc and make on RHEL)`;
  // The addon finds the library beside itself (its run path is $ORIGIN).
  if (library.source === 'npm') copyFileSync(library.file, path.join(release, path.basename(library.file)));
  writeFileSync(path.join(release, BUILD_RECORD), `${record}\n`);
  console.log(`native/${dir} built${describe(library)}`);
  return undefined;
}

/**
 * The libturbojpeg to link: the system's where its headers are installed,
 * else the one @julusian/jpeg-turbo ships for this platform; or the reason
 * there is none.
 */
function turbojpegLibrary() {
  const wanted = process.env.SLIDEBANK_TURBOJPEG ?? 'auto';
  if (!['auto', 'system', 'npm'].includes(wanted)) return { problem: `SLIDEBANK_TURBOJPEG must be auto, system or npm, not ${wanted}` };
  const header = ['/usr/include', '/usr/local/include'].map((dir) => path.join(dir, 'turbojpeg.h')).find((file) => existsSync(file));
  if (wanted !== 'npm' && header) return { library: { source: 'system', header } };
  if (wanted === 'system') return { problem: 'turbojpeg.h not found (SLIDEBANK_TURBOJPEG=system: install libturbojpeg0-dev on Debian, turbojpeg-devel on RHEL)' };
  const shipped = npmTurbojpeg();
  if (shipped.file) return { library: { source: 'npm', package: shipped.package, file: shipped.file } };
  return { problem: `neither the system's libturbojpeg (turbojpeg.h not found) nor ${TURBOJPEG_PACKAGE}'s: ${shipped.problem}; install libturbojpeg0-dev (Debian) or turbojpeg-devel (RHEL)` };
}

/** libturbojpeg.so.0 as @julusian/jpeg-turbo ships it for this platform (Linux only: elsewhere it links the library into its own addon). */
function npmTurbojpeg() {
  let manifest;
  try {
    // Resolved from the project (npm runs scripts in its root), not from this folder.
    manifest = createRequire(path.join(process.cwd(), 'package.json')).resolve(`${TURBOJPEG_PACKAGE}/package.json`);
  } catch {
    return { problem: `${TURBOJPEG_PACKAGE} is not installed (npm install)` };
  }
  if (process.platform !== 'linux') return { problem: `${TURBOJPEG_PACKAGE} ships a separate library for Linux only` };
  const { version } = JSON.parse(readFileSync(manifest, 'utf8'));
  const musl = !process.report?.getReport().header?.glibcVersionRuntime;
  const folder = `jpeg-turbo-linux-${process.arch}${musl ? '-musl' : ''}`;
  const file = path.join(path.dirname(manifest), 'prebuilds', folder, 'libturbojpeg.so.0');
  if (!existsSync(file)) return { problem: `${TURBOJPEG_PACKAGE} ${version} has no prebuilds/${folder}/libturbojpeg.so.0` };
  return { file, package: `${TURBOJPEG_PACKAGE}@${version}` };
}

function readRecord(release) {
  try {
    return readFileSync(path.join(release, BUILD_RECORD), 'utf8').trim();
  } catch {
    return undefined;
  }
}

function describe(library) {
  if (library.source === 'system') return ` (the system's libturbojpeg, ${library.header})`;
  if (library.source === 'npm') return ` (libturbojpeg of ${library.package})`;
  return '';
}
