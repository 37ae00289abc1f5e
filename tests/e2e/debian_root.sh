#!/usr/bin/env bash
# Prints the path of a cached Debian root built by debootstrap:
#
#   ROOT=$(tests/e2e/debian_root.sh SUITE [PACKAGE,PACKAGE...])
#
# minbase, plus the packages named (debootstrap --include). Users:
# tests/e2e/bullseye_root.sh (the older userland the static xdpguard runs in)
# and tests/fleet/test_fleet.sh (bookworm hosts booted with systemd-nspawn).
#
# The root is cached outside any checkout, in $XDPGUARD_TEST_CACHE (default
# /var/cache/xdpguard-test)/SUITE-root (SUITE-NAME-root with XDPGUARD_ROOT_NAME),
# and re-used while its key (suite, variant, packages, architecture, mirror and
# this script's own text) is the one in its .key beside it; otherwise, and on a
# clean machine, it is built with debootstrap from the Debian mirror apt uses
# here. A new root is built in a scratch directory and renamed into place only
# once it works, under a lock, so an interrupted or concurrent build never
# leaves half a root behind. debootstrap runs in a private mount namespace:
# whatever it mounts in the target (proc, sys) goes away with it, even if it
# fails or is killed.
#
# Users of the root must not write to it: mount it read-only or as the lower
# layer of an overlay. Needs root, debootstrap and the network to the mirror.
set -euo pipefail

SUITE=${1:?usage: debian_root.sh SUITE [PACKAGE,...]}
INCLUDE=${2:-}
VARIANT=minbase
CACHE=${XDPGUARD_TEST_CACHE:-/var/cache/xdpguard-test}
NAME=$SUITE${XDPGUARD_ROOT_NAME:+-$XDPGUARD_ROOT_NAME}
ROOT=$CACHE/$NAME-root
SELF=$(readlink -f "${BASH_SOURCE[0]}")

log() { printf '[%s-root +%ds] %s\n' "$NAME" "$SECONDS" "$*" >&2; }
fail() {
  printf '[%s-root] FAIL: %s\n' "$NAME" "$*" >&2
  exit 1
}

# The URI of the Debian archive that apt on this host uses for its own
# release (not -security or -updates), from sources.list (one-line) and
# *.sources (deb822) files: the same mirror, wherever this machine is.
debian_mirror() {
  local codename files=()
  codename=$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")
  [[ -f /etc/apt/sources.list ]] && files+=(/etc/apt/sources.list)
  files+=(/etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
  local f
  for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    if [[ $f == *.sources ]]; then
      awk -v codename="$codename" 'BEGIN { RS = ""; FS = "\n" }
        {
          types = uris = suites = ""
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^Types:/) types = " " substr($i, 7) " "
            if ($i ~ /^URIs:/) uris = substr($i, 6)
            if ($i ~ /^Suites:/) suites = " " substr($i, 8) " "
          }
          if (types ~ / deb / && suites ~ (" " codename " ")) {
            split(uris, u, " "); for (k in u) if (u[k] != "") { print u[k]; exit }
          }
        }' "$f"
    else
      # deb [options] URI SUITE COMPONENTS...
      awk -v codename="$codename" '$1 == "deb" {
          i = 2
          if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
          if ($(i + 1) == codename) { print $i; exit }
        }' "$f"
    fi
  done | head -n1
}

[[ $(id -u) == 0 ]] || fail "needs root"
command -v debootstrap >/dev/null || fail "debootstrap is missing (scripts/install-deps.sh)"
MIRROR=$(debian_mirror)
[[ -n $MIRROR ]] || fail "no Debian mirror for this host's release in /etc/apt/sources.list*"
ARCH=$(dpkg --print-architecture)
KEY=$(printf '%s\n' "$SUITE" "$VARIANT" "$INCLUDE" "$ARCH" "$MIRROR" "$(sha256sum <"$SELF")" |
  sha256sum | cut -c1-16)

mkdir -p "$CACHE"
exec 9>"$CACHE/$NAME-root.lock"
flock 9

# A usable root: the key matches and its libc is there.
if [[ -f $ROOT.key && $(cat "$ROOT.key") == "$KEY" && -x $ROOT/usr/bin/ldd ]]; then
  printf '%s\n' "$ROOT"
  exit 0
fi

# Under the lock nobody else is building: a scratch root left here was
# abandoned by a killed run.
for old in "$CACHE/$NAME-root.new."*; do
  [[ -e $old ]] || continue
  grep -q " $old/" /proc/mounts && fail "something is mounted under $old"
  rm -rf --one-file-system "$old"
done
NEW=$(mktemp -d "$CACHE/$NAME-root.new.XXXXXX")
cleanup() {
  local rc=$?
  ((rc == 0)) || printf '[%s-root] FAIL: exit %d at line %s\n' "$NAME" "$rc" "${FAILED_AT:-?}" >&2
  # Never delete through a mount (the private namespace makes one unlikely).
  if [[ -n ${NEW:-} && -d $NEW ]] && ! grep -q " $NEW/" /proc/mounts; then
    rm -rf --one-file-system "$NEW"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'FAILED_AT=$LINENO' ERR
chmod 755 "$NEW"
log "debootstrap --variant=$VARIANT $SUITE from $MIRROR into $NEW (key $KEY)"
if ! unshare --mount --propagation private \
    debootstrap --variant="$VARIANT" --arch="$ARCH" ${INCLUDE:+--include="$INCLUDE"} "$SUITE" "$NEW" "$MIRROR" \
    >"$NEW.log" 2>&1; then
  tail -n 20 "$NEW.log" >&2
  rm -f "$NEW.log"
  fail "debootstrap failed"
fi
rm -f "$NEW.log"
log "built: $(cat "$NEW/etc/debian_version"), $(du -sh --one-file-system "$NEW" | cut -f1)"

rm -f "$ROOT.key"
if [[ -d $ROOT ]]; then
  grep -q " $ROOT/" /proc/mounts && fail "something is mounted under the old $ROOT"
  rm -rf --one-file-system "$ROOT"
fi
mv "$NEW" "$ROOT"
NEW=""
printf '%s\n' "$KEY" >"$ROOT.key"
printf '%s\n' "$ROOT"
