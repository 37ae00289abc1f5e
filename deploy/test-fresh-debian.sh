#!/usr/bin/env bash
# Does the .deb install and run on a fresh Debian 12? Builds a bookworm
# minbase chroot with debootstrap, installs the package with apt (its
# dependencies come from the mirror), and inside the chroot runs
# `xdpguard --help`, `xdpguard check` on the installed policy and
# `systemd-analyze verify` on the installed unit; then removes and purges the
# package (the policy, a conffile, survives remove and goes with purge).
# Attaching is not tested here (the chroot shares the host's kernel; the e2e
# tests cover that).
#
#   sudo deploy/test-fresh-debian.sh [path/to/xdpguard_VERSION_ARCH.deb]
#
# Needs root, debootstrap and the network to MIRROR (default
# http://deb.debian.org/debian). Not part of ctest: it downloads ~100 MB.
# Everything it mounts is unmounted and the chroot is removed on exit
# (KEEP=1 keeps the chroot, unmounted).
set -euo pipefail

MIRROR=${MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEB=${1:-$(ls -t "$SRC"/build/xdpguard_*.deb 2>/dev/null | head -1)}

log() { printf '[fresh-debian +%ds] %s\n' "$SECONDS" "$*" >&2; }
fail() {
  printf '[fresh-debian] FAIL: %s\n' "$*" >&2
  exit 1
}

[[ $(id -u) == 0 ]] || fail "needs root"
command -v debootstrap >/dev/null || fail "debootstrap is missing: apt-get install debootstrap"
[[ -n $DEB && -f $DEB ]] || fail "no package: build one with cpack or pass its path"
DEB=$(readlink -f "$DEB")

ROOT=$(mktemp -d /var/tmp/xdpguard-fresh.XXXXXX)
chmod 755 "$ROOT"  # apt downloads as _apt inside
MOUNTED=()
cleanup() {
  local rc=$? m i
  for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
    m=${MOUNTED[i]}
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  # Never delete through a mount that is still there.
  if grep -q " $ROOT/" /proc/mounts; then
    printf '[fresh-debian] mounts left under %s; not removing it\n' "$ROOT" >&2
  elif [[ ${KEEP:-0} == 1 ]]; then
    log "kept $ROOT"
  else
    rm -rf --one-file-system "$ROOT" "$ROOT.debootstrap.log"
  fi
  exit "$rc"
}
trap cleanup EXIT
in_root() {
  chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive HOME=/root "$@"
}

log "debootstrap $SUITE (minbase) from $MIRROR into $ROOT"
debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.debootstrap.log" 2>&1 ||
  fail "debootstrap failed: $(tail -5 "$ROOT.debootstrap.log")"
rm -f "$ROOT.debootstrap.log"

mount -t proc proc "$ROOT/proc"
MOUNTED+=("$ROOT/proc")
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No service may start inside the chroot.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"
cp "$DEB" "$ROOT/tmp/"
PKG=/tmp/$(basename "$DEB")

log "apt-get install $(basename "$DEB") (dependencies from the mirror)"
in_root apt-get update -qq
in_root apt-get install -y -q --no-install-recommends "$PKG" >"$ROOT/tmp/install.log" 2>&1 ||
  fail "apt-get install failed: $(tail -20 "$ROOT/tmp/install.log")"
grep -E '^(Setting up|Unpacking) ' "$ROOT/tmp/install.log" | sed 's/^/  /' >&2
in_root dpkg-query -W -f='${Package} ${Version} ${Status}\n' xdpguard | grep -q 'install ok installed' ||
  fail "xdpguard is not installed"

log "xdpguard --help"
in_root xdpguard --help | head -3 >&2
log "xdpguard check --policy /etc/xdpguard/policy.yaml"
in_root xdpguard check --policy /etc/xdpguard/policy.yaml >"$ROOT/tmp/check.out" 2>"$ROOT/tmp/check.err" ||
  fail "check failed: $(cat "$ROOT/tmp/check.err")"
head -4 "$ROOT/tmp/check.out" | sed 's/^/  /' >&2
log "  ... $(wc -l <"$ROOT/tmp/check.out") lines, $(grep -c '^warning' "$ROOT/tmp/check.err" || true) warnings"

log "systemd-analyze verify (systemd from the mirror)"
in_root apt-get install -y -q --no-install-recommends systemd man-db >"$ROOT/tmp/systemd.log" 2>&1 ||
  fail "installing systemd failed: $(tail -5 "$ROOT/tmp/systemd.log")"
in_root systemd-analyze verify xdpguard@eth0.service >"$ROOT/tmp/verify.log" 2>&1 ||
  fail "systemd-analyze verify: $(cat "$ROOT/tmp/verify.log")"
[[ ! -s $ROOT/tmp/verify.log ]] || fail "systemd-analyze verify is not clean: $(cat "$ROOT/tmp/verify.log")"
in_root man -w xdpguard >/dev/null || fail "man xdpguard finds no page"

log "remove keeps the policy, purge removes it"
echo "# local edit" >>"$ROOT/etc/xdpguard/policy.yaml"
in_root apt-get remove -y -q xdpguard >/dev/null 2>&1 || fail "apt-get remove failed"
[[ ! -e $ROOT/usr/sbin/xdpguard ]] || fail "binary still there after remove"
grep -q '^# local edit' "$ROOT/etc/xdpguard/policy.yaml" || fail "remove lost the edited policy"
in_root apt-get purge -y -q xdpguard >/dev/null 2>&1 || fail "apt-get purge failed"
[[ ! -e $ROOT/etc/xdpguard/policy.yaml ]] || fail "policy still there after purge"

log "PASS: $(basename "$DEB") installs and runs on a fresh Debian $SUITE"
