#!/usr/bin/env bash
# Everything CI runs: install dependencies, build (Release), run every ctest
# label (unit, bpf, e2e). Fails if any test fails, is skipped or did not run,
# or if no tests were found. Needs root (bpf and e2e tests).
# BUILD_DIR (default: build) is the build directory.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUILD_DIR=${BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release
cmake --build "$BUILD_DIR" -j"$(nproc)"

log=$(mktemp /tmp/xdpguard-ctest.XXXXXX)
trap 'rm -f "$log"' EXIT
set +e
ctest --test-dir "$BUILD_DIR" --output-on-failure 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

if grep -q 'No tests were found' "$log"; then
  echo "test.sh: ctest found no tests" >&2
  exit 1
fi
# A skipped test proves nothing; ctest still exits 0 for it.
if grep -Eq '\*\*\*(Skipped|Not Run)|\((Skipped|Not Run|Disabled)\)|tests did not run' "$log"; then
  echo "test.sh: some tests were skipped or did not run:" >&2
  grep -E '\*\*\*(Skipped|Not Run)|\((Skipped|Not Run|Disabled)\)' "$log" >&2 || true
  exit 1
fi
# A GTEST_SKIP inside a test that ctest counted as passed: the full output of
# every test is in LastTest.log.
last="$BUILD_DIR/Testing/Temporary/LastTest.log"
if [[ -f $last ]] && grep -q '^\[  SKIPPED \]' "$last"; then
  echo "test.sh: some gtest cases were skipped:" >&2
  grep '^\[  SKIPPED \]' "$last" >&2 || true
  exit 1
fi
exit "$rc"
