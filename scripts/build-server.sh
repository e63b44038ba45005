#!/bin/sh
# `npm run build:server`: compile server/ into dist/ (incrementally) and stamp
# the build with the time it started, so that the tests of the built CLI can
# tell a build older than the source (test/support/cli.ts). tsc exits 2 when it
# reports type errors but wrote the JavaScript: that build is stamped too (type
# errors are for `npm run typecheck`), and the exit code is kept.
mkdir -p dist
touch dist/.build-started
tsc -p tsconfig.build.json "$@"
status=$?
if [ "$status" -eq 0 ] || [ "$status" -eq 2 ]; then mv dist/.build-started dist/.build-stamp; fi
exit "$status"
