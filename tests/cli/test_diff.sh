#!/usr/bin/env bash
# `xdpguard diff` on the command line (no root): profiles, both files, usage.
set -euo pipefail
: "${XDPGUARD:?path of the xdpguard binary}" "${XDPGUARD_SOURCE_DIR:?}"
data="$XDPGUARD_SOURCE_DIR/tests/data/policies"
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$XDPGUARD" diff default default --new-profile secured-only) || fail "diff exited $?"
grep -q "^refused  *tcp to local port 80  *0.0.0.0/0, ::/0  *device-http-80 (line 179)  *-$" <<<"$out" ||
  fail "no refused port 80: $out"
[[ $(grep -c "^refused" <<<"$out") == 8 ]] || fail "not 8 refused lines: $out"

out=$("$XDPGUARD" diff "$data/new-operator.yaml" "$data/new-operator.yaml") || fail "diff exited $?"
grep -q "^no difference" <<<"$out" || fail "a policy differs from itself: $out"

rc=0
"$XDPGUARD" diff default >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "diff without NEW exited $rc, not 2"
rc=0
"$XDPGUARD" diff default "$data/new-operator-typos.yaml" >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "diff with a broken NEW exited $rc, not 1"
echo "diff: 4 cases passed"
