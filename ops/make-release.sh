#!/usr/bin/env bash
# Build a release tarball that the Ansible role unpacks on hospital servers:
#   slidebank-<version>/{package.json,package-lock.json,bin,config,docs,ops,dist,web/dist,native/…/scaled_jpeg.node,node_modules}
# dist/ and web/dist/ are built here (the servers get no TypeScript toolchain); node_modules
# holds the production dependencies only, with their native parts (better-sqlite3, sharp)
# built for this machine's platform: build on the same OS and architecture as the servers
# (Debian 12 / RHEL 9, x86_64), so that they need no access to a package registry.
#
#   ops/make-release.sh [--out DIR] [--version V] [--without-modules]
#
# --without-modules leaves node_modules out; the role then runs `npm ci --omit=dev`
# on each server (slidebank_dependencies: npm), which needs a registry or a mirror.
# Prints the tarball's path on the last line.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/release"
version=""
modules=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --version) version=$2; shift 2 ;;
    --without-modules) modules=no; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "make-release: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
cd "$root"
if [ -z "$version" ]; then
  version=$(node -p "require('./package.json').version")
  commit=$(git rev-parse --short HEAD 2>/dev/null || true)
  [ -z "$commit" ] || version="$version+$commit"
fi
[[ "$version" =~ ^[0-9A-Za-z.+_-]+$ ]] || { echo "make-release: version '$version' may hold only letters, digits and . + _ -" >&2; exit 2; }
[ -d node_modules ] || { echo "make-release: run npm ci first (the build tools and dependencies come from node_modules)" >&2; exit 2; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
name="slidebank-$version"
stage="$work/$name"
mkdir -p "$stage/web"
cp -a package.json package-lock.json README.md bin config docs ops "$stage/"

echo "make-release: compiling the server" >&2
npx tsc -p tsconfig.build.json --outDir "$stage/dist" --tsBuildInfoFile "$work/tsbuildinfo" >&2
echo "make-release: building the portal" >&2
npx vite build web --outDir "$stage/web/dist" --emptyOutDir --logLevel warn >&2

if [ "$modules" = yes ]; then
  echo "make-release: production dependencies" >&2
  cp -a node_modules "$stage/"
  (cd "$stage" && npm prune --omit=dev --ignore-scripts --offline --no-audit --no-fund --loglevel=error >&2)
fi
# The native addons are built by npm ci (npm run build:native). The scaled-JPEG addon links
# libjpeg-turbo: built against the system's, the servers need its runtime library (libturbojpeg0 /
# turbojpeg), which the common role installs; built against the one @julusian/jpeg-turbo ships, that
# library lies beside the addon and goes with it. The page-cache addon needs nothing beyond the C library.
for addon in native/scaled-jpeg/build/Release/scaled_jpeg.node native/page-cache/build/Release/page_cache.node; do
  if [ -f "$addon" ]; then
    mkdir -p "$stage/$(dirname "$addon")"
    cp "$addon" "$stage/$addon"
  else
    echo "make-release: warning: $addon is not built (npm run build:native); the servers will serve tiles through the slower general path" >&2
  fi
done
if [ -f native/scaled-jpeg/build/Release/libturbojpeg.so.0 ]; then
  cp native/scaled-jpeg/build/Release/libturbojpeg.so.0 "$stage/native/scaled-jpeg/build/Release/"
fi
printf '%s\n' "$version" >"$stage/RELEASE"

tarball="$out/$name.tar.gz"
tar -C "$work" -cf - "$name" | gzip -1 >"$tarball.partial"
mv "$tarball.partial" "$tarball"
(cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
echo "make-release: $(du -h "$tarball" | cut -f1) $tarball" >&2
echo "$tarball"
