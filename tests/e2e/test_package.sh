#!/usr/bin/env bash
# The install layout and the Debian package:
# - `cmake --install` into a DESTDIR puts the binary, the unit, the policy,
#   the docs and the man page where the unit and the man page say they are;
# - cpack builds xdpguard_<version>_<arch>.deb with the project's version,
#   library dependencies computed from the binary, the policy as a conffile,
#   and the same files;
# - the unit from the package passes `systemd-analyze verify` against the
#   package's own tree (ExecStart resolved there, the man page found);
# - the binary from the package validates the policy from the package, and
#   rejects a broken one with its file:line.
# Needs: cmake/cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), systemd-analyze
# (systemd), groff. XDPGUARD is <build>/agent/xdpguard; the build directory
# is the first ancestor holding CMakeCache.txt.
set -euo pipefail

NAME=test_package
log() { printf '[%s +%ds] %s\n' "$NAME" "$SECONDS" "$*" >&2; }
fail() {
  printf '[%s] FAIL: %s\n' "$NAME" "$*" >&2
  exit 1
}

XDPGUARD=${XDPGUARD:?XDPGUARD must name the built binary}
SRC=${XDPGUARD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
BUILD=$(dirname "$(readlink -f "$XDPGUARD")")
while [[ ! -f $BUILD/CMakeCache.txt ]]; do
  [[ $BUILD == / ]] && fail "no CMakeCache.txt above $XDPGUARD"
  BUILD=$(dirname "$BUILD")
done
for tool in cmake cpack dpkg-deb dpkg-shlibdeps systemd-analyze groff; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

WORK=$(mktemp -d /tmp/xdpguard-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
PREFIX=$(cache CMAKE_INSTALL_PREFIX)
VERSION=$(cache CMAKE_PROJECT_VERSION)
[[ -n $PREFIX && -n $VERSION ]] || fail "prefix or version not in $BUILD/CMakeCache.txt"
UNIT=$PREFIX/lib/systemd/system/xdpguard@.service
EXPECTED=(
  "$PREFIX/sbin/xdpguard"
  "$UNIT"
  /etc/xdpguard/policy.yaml
  "$PREFIX/share/man/man8/xdpguard.8"
  "$PREFIX/share/doc/xdpguard/README.md"
  "$PREFIX/share/doc/xdpguard/policy-format.md"
  "$PREFIX/share/doc/xdpguard/datapath.md"
)

# The checks that hold for any tree the project installs into.
check_tree() {
  local root=$1 what=$2 f
  for f in "${EXPECTED[@]}"; do
    [[ -f $root$f ]] || fail "$what: $f missing"
  done
  [[ -x $root$PREFIX/sbin/xdpguard ]] || fail "$what: the binary is not executable"
  grep -qx "ExecStart=$PREFIX/sbin/xdpguard run --iface %i --policy /etc/xdpguard/policy.yaml" \
    "$root$UNIT" || fail "$what: the unit's ExecStart is not the installed binary"
  cmp -s "$root/etc/xdpguard/policy.yaml" "$SRC/policy/ovoc-single-node.yaml" ||
    fail "$what: /etc/xdpguard/policy.yaml is not the default policy"
  groff -man -ww -z "$root$PREFIX/share/man/man8/xdpguard.8" 2>"$WORK/groff.err" ||
    fail "$what: man page does not format: $(cat "$WORK/groff.err")"
  [[ ! -s $WORK/groff.err ]] || fail "$what: man page warnings: $(cat "$WORK/groff.err")"
}

log "cmake --install into a DESTDIR"
DESTDIR="$WORK/destdir" cmake --install "$BUILD" >"$WORK/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -5 "$WORK/install.log")"
check_tree "$WORK/destdir" "cmake --install"

log "cpack -G DEB"
# cpack installs the project again into its own staging tree; -B keeps the
# package out of the build directory.
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$WORK/cpack.log")"
ARCH=$(dpkg --print-architecture)
DEB=$WORK/pkg/xdpguard_${VERSION}_${ARCH}.deb
[[ -f $DEB ]] || fail "cpack made no $DEB: $(ls "$WORK/pkg")"

log "package metadata"
field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == xdpguard ]] || fail "Package is '$(field Package)'"
[[ $(field Version) == "$VERSION" ]] || fail "Version is '$(field Version)', project says $VERSION"
[[ $(field Architecture) == "$ARCH" ]] || fail "Architecture is '$(field Architecture)'"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
DEPENDS=$(field Depends)
log "Depends: $DEPENDS"
# Each library the binary links against directly must come from a package in
# Depends (or one that package provides: libspdlog1.10 provides
# libspdlog1.10-fmt9, which its shlibs file names); procps gives /bin/kill.
dep_names=$(sed 's/ *([^)]*)//g; s/ *| */\n/g; s/, */\n/g' <<<"$DEPENDS")
has_dep() { grep -qx "$1" <<<"$dep_names"; }
has_dep procps || fail "Depends lacks procps: $DEPENDS"
needed=$(readelf -d "$XDPGUARD" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
[[ -n $needed ]] || fail "readelf found no shared libraries in $XDPGUARD"
for so in $needed; do
  path=$(ldd "$XDPGUARD" | awk -v so="$so" '$1 == so {print $3}')
  owner=$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null) ||
    fail "no package owns $so ($path)"
  pkg=${owner%%:*}
  provides=$(dpkg-query -W -f='${Provides}' "$pkg" | sed 's/ *([^)]*)//g; s/, */\n/g')
  ok=0
  for name in "$pkg" $provides; do has_dep "$name" && ok=1; done
  ((ok)) || fail "$so comes from $pkg, which Depends does not name: $DEPENDS"
done
dpkg-deb --ctrl-tarfile "$DEB" | tar -tf - >"$WORK/control.list"
grep -qx './conffiles' "$WORK/control.list" || fail "no conffiles in the package"
dpkg-deb -I "$DEB" conffiles >"$WORK/conffiles"
grep -qx /etc/xdpguard/policy.yaml "$WORK/conffiles" ||
  fail "/etc/xdpguard/policy.yaml is not a conffile: $(cat "$WORK/conffiles")"
for script in postinst prerm postrm; do
  grep -qx "./$script" "$WORK/control.list" || fail "no $script in the package"
done

log "package contents"
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's#^\./#/#' >"$WORK/contents"
for f in "${EXPECTED[@]}"; do
  grep -qx "$f" "$WORK/contents" || fail "$f not in the package"
done
# Nothing but the agent: no test, bench or fuzz binaries.
extra=$(grep -Ev '/$|^/etc/xdpguard/|/share/(doc|man)/|/lib/systemd/system/xdpguard@\.service$|/sbin/xdpguard$' \
  "$WORK/contents" || true)
[[ -z $extra ]] || fail "unexpected files in the package: $extra"

X=$WORK/extracted
dpkg -x "$DEB" "$X"
check_tree "$X" "package"

log "systemd-analyze verify"
# Verified against the package's tree: ExecStart must exist there. /bin/kill
# (ExecReload) comes from procps, a dependency, so it is supplied.
mkdir -p "$X/bin"
cp /bin/kill "$X/bin/kill"
if ! (cd "$WORK" && MANPATH="$X$PREFIX/share/man" \
      systemd-analyze verify --root="$X" xdpguard@eth0.service) >"$WORK/verify.log" 2>&1; then
  fail "systemd-analyze verify: $(cat "$WORK/verify.log")"
fi
[[ ! -s $WORK/verify.log ]] || fail "systemd-analyze verify is not clean: $(cat "$WORK/verify.log")"
# And it does check: a unit whose ExecStart is missing from the tree fails.
mv "$X$PREFIX/sbin/xdpguard" "$X$PREFIX/sbin/xdpguard.bak"
if (cd "$WORK" && MANPATH="$X$PREFIX/share/man" \
    systemd-analyze verify --root="$X" xdpguard@eth0.service) >/dev/null 2>&1; then
  fail "systemd-analyze verify passed with the binary missing: the check checks nothing"
fi
mv "$X$PREFIX/sbin/xdpguard.bak" "$X$PREFIX/sbin/xdpguard"

log "the packaged binary checks the packaged policy"
BIN=$X$PREFIX/sbin/xdpguard
"$BIN" check --policy "$X/etc/xdpguard/policy.yaml" >"$WORK/check.out" 2>"$WORK/check.err" ||
  fail "xdpguard check on the packaged policy failed: $(cat "$WORK/check.err")"
grep -q 'ovoc-single-node' "$WORK/check.out" "$WORK/check.err" ||
  fail "check output does not name the policy: $(head -5 "$WORK/check.out")"
"$BIN" --help >"$WORK/help.out" || fail "xdpguard --help failed"
grep -q '^usage: xdpguard' "$WORK/help.out" || fail "xdpguard --help prints no usage"
# A broken copy is rejected with its file and line.
bad=$WORK/bad.yaml
{ cat "$X/etc/xdpguard/policy.yaml"; printf 'rules: [\n'; } >"$bad"
if "$BIN" check --policy "$bad" >/dev/null 2>"$WORK/bad.err"; then
  fail "xdpguard check accepted a broken policy"
fi
grep -q "bad.yaml:[0-9]" "$WORK/bad.err" || fail "no file:line for the broken policy: $(cat "$WORK/bad.err")"

log "PASS"
