#!/usr/bin/env bash
# matrix.sh [BUILD_DIR]
#   The kernel matrix: boots each Debian kernel under qemu (tests/vm/run.sh)
#   and runs tests/vm/guest-suite.sh there against BUILD_DIR (default build):
#   the bpf tests with the verifier's figures, and real traffic end to end.
#   Bullseye's 5.10 also runs the static binary from a bullseye root
#   (e2e test_bullseye): an older kernel and an older userland together.
#   Prints per kernel what passed, how long the VM ran and the verifier
#   table; fails if any kernel failed. Results stay in BUILD_DIR/vm-matrix.
#
#   XDPGUARD_VM_KERNELS   kernels to boot (default: bullseye bookworm trixie)
#   XDPGUARD_VM_E2E       e2e scripts run on each (default below)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
kernels=${XDPGUARD_VM_KERNELS:-bullseye bookworm trixie}
e2e=${XDPGUARD_VM_E2E:-test_kernel_paths test_jumbo}
results=$build/vm-matrix
rm -rf "$results"
mkdir -p "$results"

# What the guests cannot fetch themselves (they have no network).
for k in $kernels; do "$here/fetch-kernel.sh" "$k" >/dev/null; done
if [[ " $kernels " == *" bullseye "* ]]; then bash "$src/tests/e2e/bullseye_root.sh" >/dev/null; fi

failed=()
for k in $kernels; do
  scripts=($e2e)
  [[ $k != bullseye ]] || scripts+=(test_bullseye)
  start=$(date +%s)
  if ! (cd "$src" && "$here/run.sh" --kernel "$k" --out "$results/$k" --timeout 2400 -- \
    "$here/guest-suite.sh" "$build" "$results/$k" "${scripts[@]}"); then
    failed+=("$k")
  fi
  echo "$k: VM $(($(date +%s) - start)) s in all" | tee -a "$results/times"
done

echo
echo "== kernel matrix: steps"
cat "$results"/*/summary 2>/dev/null || true
echo
echo "== verifier (kernel, policy, program, insns processed, limit, peak states, insns after rewrites, verification us, load ms)"
cat "$results"/*/verifier.tsv 2>/dev/null || true
cat "$results/times"
if ((${#failed[@]})); then
  echo "matrix.sh: FAILED on: ${failed[*]}" >&2
  exit 1
fi
echo "matrix.sh: every kernel passed ($kernels)"
