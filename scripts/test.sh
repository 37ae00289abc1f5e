#!/usr/bin/env bash
# Everything CI runs: install dependencies, build (Release), run every ctest
# label (unit, bpf, e2e), the kernel matrix (tests/vm/), then the unit and
# bpf labels under ASan/UBSan. Fails if any test fails, is skipped or did not
# run, or if no tests were found. Needs root (bpf and e2e tests).
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

# The kernel matrix: the bpf tests and real traffic on Debian's 5.10, 6.1
# and 6.12 kernels under qemu, against this build (tests/vm/matrix.sh).
# VM_MATRIX=0 leaves it out.
if [[ ${VM_MATRIX:-1} != 0 ]]; then
  tests/vm/matrix.sh "$BUILD_DIR" || rc=1
fi

# The unit and BPF tests again under AddressSanitizer and UBSan, in a build
# directory of their own (XDPGUARD_SANITIZE=ON); the differential tests run a
# tenth of their packets there. The unit label includes the command-line tests
# (tests/cli, the schema), so the sanitized xdpguard is built too: check, diff
# and replay run under the sanitizers as well. SANITIZE=0 leaves this out.
if [[ ${SANITIZE:-1} != 0 ]]; then
  asan_dir=${ASAN_BUILD_DIR:-build-asan}
  cmake -S . -B "$asan_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXDPGUARD_SANITIZE=ON
  cmake --build "$asan_dir" -j"$(nproc)" --target xdpguard_unit_tests xdpguard_bpf_tests xdpguard
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    XDPGUARD_DIFF_PACKETS=100000 XDPGUARD_FLOW_DIFF_PACKETS=80000 \
    ctest --test-dir "$asan_dir" -L '^(unit|bpf)$' --output-on-failure || rc=1
fi
exit "$rc"
