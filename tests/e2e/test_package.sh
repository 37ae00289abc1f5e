#!/usr/bin/env bash
# The install layout, the Debian package and the RPM:
# - `cmake --install` into a DESTDIR puts the binary, the unit, the policy,
#   the docs and the man page where the unit and the man page say they are;
# - cpack builds xdpguard_<version>_<arch>.deb with the project's version,
#   the policy as a conffile, and the same files; its Depends is procps
#   alone for the static binary (XDPGUARD_STATIC), else the packages of the
#   libraries the binary links;
# - cpack builds xdpguard-<version>-<release>.<arch>.rpm from the same
#   description: the same files, owning no system directory, the policy as
#   %config(noreplace), requires without any library for the static binary,
#   the changelog's newest entry for this version, rpmlint clean (under
#   deploy/rpm/rpmlint.toml, which explains each filter); it installs into a
#   scratch root (rpm --root) with the same layout, verifies there, and an
#   edited policy survives its removal as .rpmsave;
# - the two packages' scripts make the same systemctl calls for the same
#   event (install, upgrade, removal), and none enables or starts a unit;
# - the unit from the package passes `systemd-analyze verify` against the
#   package's own tree (ExecStart resolved there, the man page found);
# - the binary from the package validates the policy from the package, and
#   rejects a broken one with its file:line.
# Needs: cmake/cpack, dpkg-deb, dpkg-shlibdeps (dpkg-dev), systemd-analyze
# (systemd), groff, rpm/rpmbuild (rpm), rpmlint, unshare (util-linux), and
# root (the scripts run in a private mount namespace). XDPGUARD is
# <build>/agent/xdpguard; the build directory is the first ancestor holding
# CMakeCache.txt.
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
[[ $(id -u) == 0 ]] || fail "needs root"
for tool in cmake cpack dpkg-deb dpkg-shlibdeps systemd-analyze groff rpm rpmbuild rpmlint unshare; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done

WORK=$(mktemp -d /tmp/xdpguard-package.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt"; }
PREFIX=$(cache CMAKE_INSTALL_PREFIX)
VERSION=$(cache CMAKE_PROJECT_VERSION)
STATIC=$(cache XDPGUARD_STATIC)
[[ -n $PREFIX && -n $VERSION && -n $STATIC ]] ||
  fail "prefix, version or XDPGUARD_STATIC not in $BUILD/CMakeCache.txt"
UNIT=$PREFIX/lib/systemd/system/xdpguard@.service
EXPECTED=(
  "$PREFIX/sbin/xdpguard"
  "$UNIT"
  /etc/xdpguard/policy.yaml
  "$PREFIX/share/man/man8/xdpguard.8.gz"
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
  zcat "$root$PREFIX/share/man/man8/xdpguard.8.gz" | groff -man -ww -z 2>"$WORK/groff.err" ||
    fail "$what: man page does not format: $(cat "$WORK/groff.err")"
  [[ ! -s $WORK/groff.err ]] || fail "$what: man page warnings: $(cat "$WORK/groff.err")"
}

log "cmake --install into a DESTDIR"
DESTDIR="$WORK/destdir" cmake --install "$BUILD" >"$WORK/install.log" 2>&1 ||
  fail "cmake --install failed: $(tail -5 "$WORK/install.log")"
check_tree "$WORK/destdir" "cmake --install"

# contents_ok LIST WHAT: LIST (one path a line, directories left out) holds
# every expected file and nothing but the agent's: no test, bench or fuzz
# binaries.
contents_ok() {
  local list=$1 what=$2 f extra
  for f in "${EXPECTED[@]}"; do
    grep -qx "$f" "$list" || fail "$what: $f not in the package"
  done
  extra=$(grep -Ev '^/etc/xdpguard/|/share/(doc|man)/|/lib/systemd/system/xdpguard@\.service$|/sbin/xdpguard$' \
    "$list" || true)
  [[ -z $extra ]] || fail "$what: unexpected files in the package: $extra"
}

log "cpack -G DEB;RPM"
# cpack installs the project again into its own staging tree; -B keeps the
# packages out of the build directory.
cpack -G 'DEB;RPM' --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$WORK/cpack.log")"
ARCH=$(dpkg --print-architecture)
DEB=$WORK/pkg/xdpguard_${VERSION}_${ARCH}.deb
[[ -f $DEB ]] || fail "cpack made no $DEB: $(ls "$WORK/pkg")"
RPMS=("$WORK"/pkg/xdpguard-"$VERSION"-*."$(uname -m)".rpm)
[[ ${#RPMS[@]} == 1 && -f ${RPMS[0]} ]] || fail "cpack made no single RPM: $(ls "$WORK/pkg")"
RPM=${RPMS[0]}

log "package metadata"
field() { dpkg-deb -f "$DEB" "$1"; }
[[ $(field Package) == xdpguard ]] || fail "Package is '$(field Package)'"
[[ $(field Version) == "$VERSION" ]] || fail "Version is '$(field Version)', project says $VERSION"
[[ $(field Architecture) == "$ARCH" ]] || fail "Architecture is '$(field Architecture)'"
[[ -n $(field Maintainer) ]] || fail "no Maintainer"
DEPENDS=$(field Depends)
log "Depends: $DEPENDS"
needed=$(readelf -d "$XDPGUARD" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
if [[ $STATIC == ON ]]; then
  # Nothing to depend on but /bin/kill (procps), which the unit's ExecReload runs.
  [[ -z $needed ]] || fail "XDPGUARD_STATIC=ON but $XDPGUARD needs: $needed"
  # ldd exits 1 for a static binary, and says why.
  lddout=$(ldd "$XDPGUARD" 2>&1) || true
  [[ $lddout == *'not a dynamic executable'* ]] || fail "ldd does not call $XDPGUARD static: $lddout"
  [[ $DEPENDS == procps ]] || fail "a static binary's Depends should be procps alone: $DEPENDS"
else
  # Each library the binary links against directly must come from a package
  # in Depends (or one that package provides: libspdlog1.10 provides
  # libspdlog1.10-fmt9, which its shlibs file names); procps gives /bin/kill.
  dep_names=$(sed 's/ *([^)]*)//g; s/ *| */\n/g; s/, */\n/g' <<<"$DEPENDS")
  has_dep() { grep -qx "$1" <<<"$dep_names"; }
  has_dep procps || fail "Depends lacks procps: $DEPENDS"
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
fi
dpkg-deb --ctrl-tarfile "$DEB" | tar -tf - >"$WORK/control.list"
grep -qx './conffiles' "$WORK/control.list" || fail "no conffiles in the package"
dpkg-deb -I "$DEB" conffiles >"$WORK/conffiles"
grep -qx /etc/xdpguard/policy.yaml "$WORK/conffiles" ||
  fail "/etc/xdpguard/policy.yaml is not a conffile: $(cat "$WORK/conffiles")"
for script in postinst prerm postrm; do
  grep -qx "./$script" "$WORK/control.list" || fail "no $script in the package"
done

log "package contents"
dpkg-deb -c "$DEB" | awk '{print $NF}' | sed 's#^\./#/#' | grep -v '/$' >"$WORK/contents"
contents_ok "$WORK/contents" ".deb"

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

log "package scripts: the same systemctl calls from both formats"
# Each script runs as its package manager would run it, in a private mount
# namespace whose /run says systemd is running (or not) and whose bpffs holds
# one xdpguard pin directory; a systemctl on PATH prints what it was asked.
# Debian's and RPM's scripts get their own arguments for the same event.
dpkg-deb -e "$DEB" "$WORK/debian"
mkdir -p "$WORK/rpm" "$WORK/fake"
for tag in POSTIN PREUN POSTUN; do
  prog=$(rpm -qp --qf "%{${tag}PROG}" "$RPM" 2>/dev/null)
  [[ $prog == /bin/sh ]] || fail "the RPM's $tag scriptlet runs '$prog', not /bin/sh"
  rpm -qp --qf "%{$tag}" "$RPM" >"$WORK/rpm/$tag" 2>/dev/null
  [[ -s $WORK/rpm/$tag ]] || fail "the RPM has no $tag scriptlet"
done
printf '#!/bin/sh\necho "systemctl $*"\n' >"$WORK/fake/systemctl"
chmod 755 "$WORK/fake/systemctl"
PIN=eth7@netns4026531840
run_script() {  # SYSTEMD(0|1) SCRIPT ARGS...: its systemctl calls and stderr
  unshare --mount --propagation private sh -c '
    fake=$1 systemd=$2 pin=$3
    shift 3
    mount -t tmpfs tmpfs /run
    if [ "$systemd" = 1 ]; then mkdir -p /run/systemd/system; fi
    mount -t tmpfs tmpfs /sys/fs/bpf
    mkdir -p "/sys/fs/bpf/xdpguard/$pin"
    PATH="$fake:$PATH" sh "$@" 2>&1' sh "$WORK/fake" "$1" "$PIN" "${@:2}"
}
# same_calls EVENT EXPECTED DEB-SCRIPT DEB-ARGS... -- RPM-SCRIPT RPM-ARGS...
same_calls() {
  local event=$1 expected=$2 deb=() out
  shift 2
  while [[ $1 != -- ]]; do deb+=("$1"); shift; done
  shift
  out=$(run_script 1 "$WORK/debian/${deb[0]}" "${deb[@]:1}") ||
    fail "$event: the .deb's ${deb[*]} failed: $out"
  [[ $out == "$expected" ]] || fail "$event: the .deb's ${deb[*]} did"$'\n'"$out"$'\n'"expected"$'\n'"$expected"
  out=$(run_script 1 "$WORK/rpm/$1" "${@:2}") || fail "$event: the RPM's $* failed: $out"
  [[ $out == "$expected" ]] || fail "$event: the RPM's $* did"$'\n'"$out"$'\n'"expected"$'\n'"$expected"
  log "ok: $event: ${expected//$'\n'/; }"
}
reload='systemctl daemon-reload'
same_calls "install" "$reload" postinst configure '' -- POSTIN 1
same_calls "upgrade, new package configured" "$reload"$'\n''systemctl try-restart xdpguard@*.service' \
  postinst configure 0.0.9 -- POSTIN 2
same_calls "upgrade, old package going" "" prerm upgrade "$VERSION" -- PREUN 1
same_calls "upgrade, old package gone" "$reload" postrm upgrade "$VERSION" -- POSTUN 1
same_calls "removal, before" 'systemctl stop xdpguard@*.service'$'\n'"xdpguard: warning: still attached to $PIN and enforcing until reboot; to remove it, reinstall and run 'xdpguard detach --iface ${PIN%%@*}'" \
  prerm remove -- PREUN 0
same_calls "removal, after" "$reload" postrm remove -- POSTUN 0
# Outside systemd (a container, a chroot) nothing is asked of systemctl.
for script in "$WORK/debian/postinst configure 0.0.9" "$WORK/rpm/POSTIN 2" "$WORK/rpm/PREUN 0"; do
  # shellcheck disable=SC2086  # the script and its arguments
  out=$(run_script 0 $script) || fail "$script without systemd failed: $out"
  [[ $out != *systemctl* ]] || fail "$script called systemctl without systemd: $out"
done

log "RPM metadata"
rpmq() { rpm -qp "$@" "$RPM" 2>/dev/null; }
[[ $(rpmq --qf '%{NAME}') == xdpguard ]] || fail "RPM Name is '$(rpmq --qf '%{NAME}')'"
[[ $(rpmq --qf '%{VERSION}') == "$VERSION" ]] ||
  fail "RPM Version is '$(rpmq --qf '%{VERSION}')', project says $VERSION"
[[ $(rpmq --qf '%{ARCH}') == "$(uname -m)" ]] || fail "RPM Arch is '$(rpmq --qf '%{ARCH}')'"
RELEASE=$(rpmq --qf '%{RELEASE}')
rpmq -i >"$WORK/rpm.info"
grep -q '^Summary *: XDP/eBPF host firewall' "$WORK/rpm.info" || fail "RPM summary: $(cat "$WORK/rpm.info")"
grep -q 'xdpguard makes a host permit' "$WORK/rpm.info" ||
  fail "RPM description is not the package's: $(cat "$WORK/rpm.info")"
# The changelog is deploy/changelog, whose newest entry is this version.
newest=$(rpmq --changelog | head -n1)
[[ $newest == "$(head -n1 "$SRC/deploy/changelog")" ]] ||
  fail "RPM changelog starts '$newest', deploy/changelog '$(head -n1 "$SRC/deploy/changelog")'"
[[ $newest == *" - $VERSION-$RELEASE" ]] || fail "newest changelog entry is not $VERSION-$RELEASE: $newest"
rpmq -R >"$WORK/rpm.requires"
log "RPM requires: $(paste -sd, "$WORK/rpm.requires")"
grep -qx 'util-linux' "$WORK/rpm.requires" || fail "the RPM does not require util-linux (/usr/bin/kill)"
grep -qx '/bin/sh' "$WORK/rpm.requires" || fail "the RPM does not require its scriptlets' /bin/sh"
if [[ $STATIC == ON ]]; then
  ! grep -q '\.so' "$WORK/rpm.requires" || fail "a static binary's RPM requires a library"
else
  for so in $needed; do
    grep -qxF "$so()(64bit)" "$WORK/rpm.requires" || fail "the RPM does not require $so"
  done
fi

log "RPM contents"
# FLAGS|MODE|PATH for each entry: directories apart, the rest like the .deb.
rpmq --qf '[%{FILEFLAGS:fflags}|%{FILEMODES:perms}|%{FILENAMES}\n]' >"$WORK/rpm.files"
awk -F'|' '$2 !~ /^d/ {print $3}' "$WORK/rpm.files" >"$WORK/rpm.contents"
contents_ok "$WORK/rpm.contents" "RPM"
# It owns its own directories, none of the system's (/usr/sbin, the man section...).
dirs=$(awk -F'|' '$2 ~ /^d/ {print $3}' "$WORK/rpm.files" | sort | paste -sd' ')
[[ $dirs == "/etc/xdpguard $PREFIX/share/doc/xdpguard" ]] || fail "the RPM owns the directories: $dirs"
policy_flags=$(awk -F'|' '$3 == "/etc/xdpguard/policy.yaml" {print $1}' "$WORK/rpm.files")
[[ $policy_flags == *c* && $policy_flags == *n* ]] ||
  fail "/etc/xdpguard/policy.yaml is not %config(noreplace) (flags '$policy_flags')"

log "rpmlint"
rpmlint -c "$SRC/deploy/rpm/rpmlint.toml" "$RPM" >"$WORK/rpmlint.out" 2>&1 || true
grep -q ' 0 errors, 0 warnings' "$WORK/rpmlint.out" || fail "rpmlint: $(cat "$WORK/rpmlint.out")"

log "rpm --root: install into a scratch root"
# The scriptlets ran above; here they would run chrooted into a root without
# a shell, hence --noscripts.
R=$WORK/rpmroot
rpm --root "$R" --nodeps --noscripts -i "$RPM" >"$WORK/rpm-install.log" 2>&1 ||
  fail "rpm --root -i failed: $(cat "$WORK/rpm-install.log")"
check_tree "$R" "rpm --root"
rpm --root "$R" --nodeps -V xdpguard >"$WORK/rpm-verify.log" 2>&1 ||
  fail "rpm -V in the scratch root: $(cat "$WORK/rpm-verify.log")"
[[ $(rpm --root "$R" -qf "$PREFIX/sbin/xdpguard") == "xdpguard-$VERSION-$RELEASE.$(uname -m)" ]] ||
  fail "the installed binary does not belong to xdpguard-$VERSION-$RELEASE"
# The same binary: rpmbuild also strips the .comment section (brp-strip-comment-note).
objcopy -R .comment "$X$PREFIX/sbin/xdpguard" "$WORK/deb-xdpguard"
cmp -s "$R$PREFIX/sbin/xdpguard" "$WORK/deb-xdpguard" || fail "the RPM's binary is not the .deb's"
echo "# local edit" >>"$R/etc/xdpguard/policy.yaml"
rpm --root "$R" --nodeps --noscripts -e xdpguard >"$WORK/rpm-erase.log" 2>&1 ||
  fail "rpm --root -e failed: $(cat "$WORK/rpm-erase.log")"
[[ ! -e $R$PREFIX/sbin/xdpguard ]] || fail "rpm -e left the binary"
grep -q '^# local edit' "$R/etc/xdpguard/policy.yaml.rpmsave" 2>/dev/null ||
  fail "rpm -e did not keep the edited policy as policy.yaml.rpmsave: $(ls "$R/etc/xdpguard" 2>&1)"

log "PASS"
