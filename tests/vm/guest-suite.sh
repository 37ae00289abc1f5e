#!/usr/bin/env bash
# guest-suite.sh BUILD_DIR OUT_DIR [E2E_SCRIPT...]
#   What the kernel matrix runs inside each VM (tests/vm/matrix.sh): the
#   whole `bpf` test binary (the differential tests with the packet counts of
#   the sanitizer stage; verifier figures to OUT_DIR/verifier.tsv), then each
#   given end-to-end script of tests/e2e with real clients and servers.
#   Writes one line per step to OUT_DIR/summary and exits non-zero if any
#   step failed. Runs on the host too; nothing here is VM-specific.
set -uo pipefail

build=$(cd "${1:?build dir}" && pwd)
out=${2:?out dir}
shift 2
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
kernel=$(uname -r)
mkdir -p "$out"
: >"$out/summary"
: >"$out/verifier.tsv"
failed=0

step() { # NAME LOG CMD...
  local name=$1 log=$2 start rc
  shift 2
  start=$(date +%s)
  "$@" >"$log" 2>&1
  rc=$?
  local verdict=PASS
  ((rc == 0)) || { verdict=FAIL; failed=1; }
  printf '%s\t%s\t%s\t%ss\n' "$kernel" "$name" "$verdict" "$(($(date +%s) - start))" |
    tee -a "$out/summary"
  ((rc == 0)) || tail -n 60 "$log"
}

step bpf "$out/bpf.log" env XDPGUARD_DIFF_PACKETS=100000 XDPGUARD_FLOW_DIFF_PACKETS=80000 \
  XDPGUARD_LEARN_FLOOD=100000 \
  XDPGUARD_VERIFIER_REPORT="$out/verifier.tsv" \
  "$build/tests/xdpguard_bpf_tests" --gtest_color=no
# A skipped case proves nothing on this kernel: as test.sh, it fails.
if grep -q '^\[  SKIPPED \]' "$out/bpf.log"; then
  printf '%s\tbpf-skips\tFAIL\t%s\n' "$kernel" "$(grep -c '^\[  SKIPPED \]' "$out/bpf.log")" |
    tee -a "$out/summary"
  failed=1
fi
# gtest's own count, for the matrix table.
grep -E '^\[  (PASSED|FAILED)  \]' "$out/bpf.log" | sed "s/^/$kernel\tbpf-count\t/" >>"$out/summary"

for script in "$@"; do
  name=$(basename "$script" .sh)
  step "e2e.$name" "$out/$name.log" env XDPGUARD="$build/agent/xdpguard" \
    XDPGUARD_SOURCE_DIR="$src" bash "$src/tests/e2e/$name.sh"
done
exit "$failed"
