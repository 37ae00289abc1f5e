#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) in a build directory of
# their own and runs each for SECONDS on a fresh copy of the seed corpus.
# Fails on any crash, leak, sanitizer report or broken invariant; the input is
# kept under $build/artifacts for reproduction (./fuzz_x artifact).
#
# Usage: tests/fuzz/run.sh [SECONDS]     (default 60)
# Env:   XDPGUARD_FUZZ_BUILD   build directory (default <repo>/build-fuzz)
#        XDPGUARD_FUZZ_JOBS    fuzzers run at once (default: 2 if 2+ CPUs, else 1)
set -euo pipefail

seconds=${1:-60}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${XDPGUARD_FUZZ_BUILD:-$src/build-fuzz}
jobs=${XDPGUARD_FUZZ_JOBS:-$(( $(nproc) >= 2 ? 2 : 1 ))}

for tool in clang clang++ python3; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool not found (scripts/install-deps.sh)" >&2; exit 1; }
done

start=$(date +%s)
if [[ ! -f $build/CMakeCache.txt ]]; then
  cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXDPGUARD_FUZZ=ON >/dev/null
fi
cmake --build "$build" --target fuzz_policy fuzz_reference fuzz_replay -j"$(nproc)" >/dev/null
echo "fuzz build ready in $(( $(date +%s) - start )) s: $build"

work=$(mktemp -d /tmp/xdpguard-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
artifacts=$build/artifacts
rm -rf "$artifacts"  # only this run's findings
mkdir -p "$artifacts" "$work/policy" "$work/reference" "$work/replay"

# Seeds are copied: libFuzzer adds what it finds to the corpus directory.
cp "$src"/tests/fuzz/corpus/policy/* "$src"/policy/*.yaml "$src"/tests/data/policies/* "$work/policy/"
python3 "$src/tests/fuzz/make_frames.py" "$work/reference"
python3 "$src/tests/fuzz/make_pcaps.py" "$work/reference" "$work/replay"

run_one() {  # name extra-flags...
  local name=$1; shift
  "$build/tests/fuzz/$name" "$work/$1" "${@:2}" -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    >"$work/$name.log" 2>&1
}

declare -A pid status
for spec in "fuzz_policy policy -dict=$src/tests/fuzz/policy.dict -max_len=32768" \
            "fuzz_reference reference -max_len=4096" \
            "fuzz_replay replay -max_len=8192"; do
  read -r -a args <<<"$spec"
  if ((jobs > 1)); then
    run_one "${args[@]}" &
    pid[${args[0]}]=$!
  else
    status[${args[0]}]=0
    run_one "${args[@]}" || status[${args[0]}]=$?
  fi
done

failed=0
for name in fuzz_policy fuzz_reference fuzz_replay; do
  rc=${status[$name]:-0}
  [[ -z ${pid[$name]:-} ]] || wait "${pid[$name]}" || rc=$?
  log=$work/$name.log
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  corpus=$(ls "$work/${name#fuzz_}" | wc -l)
  echo "$name: ${runs:-?} executions in ${seconds} s (${rate:-?} exec/s), corpus $corpus inputs, exit $rc"
  if ((rc != 0)); then
    failed=1
    echo "---- $name log (last 60 lines) ----"
    tail -n 60 "$log"
    ls -1 "$artifacts"/"$name"-* 2>/dev/null | sed 's/^/artifact: /'
  fi
done
echo "total $(( $(date +%s) - start )) s"
exit $failed
