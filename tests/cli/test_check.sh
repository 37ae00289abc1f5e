#!/usr/bin/env bash
# `xdpguard check`'s exit codes and findings on the policies in tests/data
# (no root, no kernel): 0 valid, 1 errors, 3 warnings with --warnings-as-errors.
set -euo pipefail
: "${XDPGUARD:?path of the xdpguard binary}" "${XDPGUARD_SOURCE_DIR:?}"
data="$XDPGUARD_SOURCE_DIR/tests/data/policies"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect CODE ARGS...: run check, keep stdout/stderr in $work/out, $work/err.
expect() {
  local want=$1 got=0
  shift
  "$XDPGUARD" check "$@" >"$work/out" 2>"$work/err" || got=$?
  [[ $got == "$want" ]] || fail "check $* exited $got, not $want: $(cat "$work/err")"
}

expect 0 "$data/new-operator.yaml"  # FILE alone is --policy FILE
[[ ! -s "$work/err" ]] || fail "warnings on the new operator's policy: $(cat "$work/err")"
expect 0 --policy "$data/new-operator.yaml" --warnings-as-errors
expect 1 --policy "$data/new-operator.yaml" --strict
grep -q "missing required key 'section' (--strict" "$work/err" || fail "--strict: $(cat "$work/err")"
expect 1 --policy "$data/new-operator-typos.yaml"
grep -q "did you mean 'devices'?" "$work/err" || fail "no guess for 'device': $(cat "$work/err")"

# The default policy warns (open sets, rules never counted) but is valid.
expect 0 --policy "$XDPGUARD_SOURCE_DIR/policy/ovoc-single-node.yaml" --strict
grep -q "rule 'ntp-upstream-123' is never counted" "$work/err" || fail "no shadowing warning"
grep -q "^tcp to local port 443 .* nbif-clients-https (line 84)" "$work/out" ||
  fail "no counting table: $(cat "$work/out")"
expect 3 --policy "$XDPGUARD_SOURCE_DIR/policy/ovoc-single-node.yaml" --warnings-as-errors
echo "check: 7 cases passed"
