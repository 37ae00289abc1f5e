#!/usr/bin/env bash
# clang-tidy (the checked-in .clang-tidy) over agent/, with the compile
# commands of a build directory. Exits non-zero if clang-tidy reports any
# finding. Usage: scripts/lint.sh [BUILD_DIR] [FILE-REGEX]
#   BUILD_DIR   a configured build (default: build); it must have been built
#               once, since the BPF skeleton header is generated there
#   FILE-REGEX  only files whose path matches (default: every agent/ source)
# Takes a few minutes on two cores; not part of ctest.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
filter=${2:-$PWD/agent/}
tidy=$(command -v run-clang-tidy-14 || command -v run-clang-tidy || true)
[[ -n $tidy ]] || { echo "lint.sh: run-clang-tidy-14 not found (apt install clang-tidy-14)" >&2; exit 2; }
[[ -f $build/compile_commands.json ]] ||
  { echo "lint.sh: no $build/compile_commands.json; configure and build first" >&2; exit 2; }

out=$(mktemp /tmp/xdpguard-lint.XXXXXX)
trap 'rm -f "$out"' EXIT
# The build is g++'s: its GCC-only warning flags mean nothing to clang.
"$tidy" -p "$build" -j"$(nproc)" -quiet -extra-arg=-Wno-unknown-warning-option \
  "$filter" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >"$out" || true
# Findings are "file:line:col: warning|error: ... [check]".
findings=$(grep -E '^/[^ ]+:[0-9]+:[0-9]+: (warning|error): .*\[[a-z0-9.,-]+\]$' "$out" |
  sort -u || true)
if [[ -n $findings ]]; then
  printf '%s\n' "$findings"
  echo "lint.sh: $(wc -l <<<"$findings") finding(s)" >&2
  exit 1
fi
if grep -q 'Error while processing' "$out"; then
  grep -B3 'Error while processing' "$out" >&2
  echo "lint.sh: clang-tidy could not process some files" >&2
  exit 1
fi
echo "lint.sh: clean"
