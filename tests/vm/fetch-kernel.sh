#!/usr/bin/env bash
# fetch-kernel.sh RELEASE
#   Fetches the newest Debian kernel image of RELEASE (bullseye = 5.10,
#   bookworm = 6.1, trixie = 6.12) as a package, through a private apt
#   configuration: the system's sources and lists are never changed. The
#   mirror is the one the system's own apt sources name. Unpacks it, with a
#   modules.dep, under the cache and prints the directory:
#     $XDPGUARD_VM_CACHE/kernels/RELEASE/{vmlinuz,version,lib/modules/VERSION}
#   A cached kernel younger than a week is reused.
set -euo pipefail

release=${1:?usage: fetch-kernel.sh bullseye|bookworm|trixie}
cache=${XDPGUARD_VM_CACHE:-/var/cache/xdpguard-vm}
out=$cache/kernels/$release

if [[ -f $out/version && -n $(find "$out/version" -mtime -7) ]]; then
  echo "$out"
  exit 0
fi

# The Debian archive and its security archive, as configured on this host
# (one-line and deb822 sources alike).
mirror_uri() {
  local suffix=$1
  # A missing sources file is no error here.
  set +o pipefail
  {
    grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      sed 's/\[[^]]*\]//' | awk '{print $2}'
  } 2>/dev/null | grep -E "/$suffix/?\$" | head -n 1 | sed 's:/$::'
}
archive=$(mirror_uri debian)
security=$(mirror_uri debian-security)
[[ -n $archive && -n $security ]] || {
  echo "fetch-kernel.sh: no Debian archive in this host's apt sources" >&2
  exit 1
}

case $release in
  bullseye) sec_suite=bullseye-security ;;
  bookworm | trixie) sec_suite=$release-security ;;
  *) echo "fetch-kernel.sh: unknown release $release" >&2; exit 2 ;;
esac

apt_dir=$cache/apt/$release
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
cat >"$apt_dir/sources.list" <<SRC
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $archive $release main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $security $sec_suite main
SRC
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list"
  -o "Dir::Etc::SourceParts=-"
  -o "Dir::State::Lists=$apt_dir/lists"
  -o "Dir::Cache=$apt_dir"
  -o "Dir::Cache::archives=$apt_dir/archives"
  -o "Dir::State::status=/dev/null"
  -o "APT::Architecture=amd64"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
apt-get "${apt_opts[@]}" -qq update
# The metapackage names the current ABI's image (linux-image-6.1.0-NN-amd64).
image=$(apt-cache "${apt_opts[@]}" depends linux-image-amd64 |
  awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[[ -n $image ]] || { echo "fetch-kernel.sh: no kernel image in $release" >&2; exit 1; }
(cd "$apt_dir/archives" && rm -f linux-image-*.deb && apt-get "${apt_opts[@]}" -qq download "$image")

rm -rf "$out.new"
mkdir -p "$out.new"
dpkg-deb -x "$apt_dir"/archives/linux-image-*.deb "$out.new/root"
# trixie's packages install under /usr/lib (merged /usr).
modules=$out.new/root/lib/modules
[[ -d $modules ]] || modules=$out.new/root/usr/lib/modules
version=$(ls "$modules")
mv "$out.new/root/boot/vmlinuz-$version" "$out.new/vmlinuz"
mkdir -p "$out.new/lib/modules"
mv "$modules/$version" "$out.new/lib/modules/"
rm -rf "$out.new/root"
# Modules compressed with xz (trixie) are unpacked: busybox insmod in the
# initramfs reads plain .ko files only.
find "$out.new/lib/modules" -name '*.ko.xz' -exec xz -d {} +
# The package leaves modules.dep to its postinst.
busybox depmod -b "$out.new" "$version"
echo "$version" >"$out.new/version"
rm -rf "$out"
mv "$out.new" "$out"
echo "$out"
