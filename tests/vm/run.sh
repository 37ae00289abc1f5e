#!/usr/bin/env bash
# run.sh --kernel RELEASE [--root DIR] [--timeout SECONDS] [--out DIR] -- COMMAND [ARGS...]
#
# Boots a Debian kernel (bullseye = 5.10, bookworm = 6.1, trixie = 6.12;
# tests/vm/fetch-kernel.sh) under qemu and runs COMMAND inside, as root, in
# the current directory, on this host's own root file system (or DIR, e.g. an
# older Debian root): read-only over 9p with a tmpfs overlay, so the checkout
# and its build are the ones tested and nothing the guest writes persists.
# /tmp, /run, bpffs are fresh (but the checkout and the current directory
# stay where they are, also under /tmp); the kernel's modules are at /lib/modules.
# --out DIR (default: a temporary directory) is shared writable, at the same
# path inside; COMMAND may leave results there. Exits with COMMAND's status,
# or 124 when the VM timed out or died before reporting one.
#
# No KVM on these machines: TCG, about 10 s to boot, BPF_PROG_TEST_RUN runs
# 10-15x slower than on the host. Compile nothing inside.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
release="" root=/ timeout=1800 out=""
while (($#)); do
  case $1 in
    --kernel) release=$2; shift 2 ;;
    --root) root=$(cd "$2" && pwd); shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $release && $# -gt 0 ]] || { sed -n '2,3p' "$0" >&2; exit 2; }

kdir=$("$here/fetch-kernel.sh" "$release")
kver=$(cat "$kdir/version")
work=$(mktemp -d /tmp/xdpguard-vm.XXXXXX)
cleanup() { rm -rf "$work"; [[ -n ${own_out:-} ]] && rm -rf "$out"; return 0; }
trap cleanup EXIT
if [[ -z $out ]]; then
  out=$(mktemp -d /tmp/xdpguard-vm-out.XXXXXX)
  own_out=1
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out/status"

# The initramfs: busybox, init.sh, and the modules that mounting the shares
# needs, in load order (dependencies first), unless built in.
initrd=$work/initrd
mkdir -p "$initrd"/{bin,modules,proc,sys,dev}
cp /bin/busybox "$initrd/bin/busybox"
cp "$here/init.sh" "$initrd/init"
chmod +x "$initrd/init"
moddir=$kdir/lib/modules/$kver
declare -A loaded=()
add_module() { # NAME or path relative to moddir
  local name=$1 line path dep
  if [[ $name == */* ]]; then
    path=$name
  else
    path=$(grep -E "(^|/)$name\.ko:" "$moddir/modules.dep" | cut -d: -f1 || true)
    [[ -n $path ]] || return 0 # built in
  fi
  [[ -z ${loaded[$path]:-} ]] || return 0
  loaded[$path]=1
  line=$(grep -E "^$path:" "$moddir/modules.dep" | cut -d: -f2)
  for dep in $line; do add_module "$dep"; done
  cp "$moddir/$path" "$initrd/modules/"
  basename "$path" >>"$initrd/modules.order"
}
: >"$initrd/modules.order"
for m in virtio_pci 9pnet_virtio 9p overlay; do add_module "$m"; done
(cd "$initrd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

checkout=$(cd "$here/../.." && pwd)
cat >"$out/params" <<P
OUT_DIR='$out'
ROOT_DIR='${root%/}'
MODULES_DIR='$kdir/lib/modules'
KEEP_DIRS='$checkout $PWD'
P
{
  echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root"
  echo "export XDPGUARD_VM_KERNEL=$(printf %q "$release")"
  printf 'cd %q || exit 125\n' "$PWD"
  printf '%q ' "$@"
  echo
} >"$out/command.sh"

# TCG offers no stable TSC, so the guest would fall back to the emulated HPET,
# whose every read is a trip through qemu: bpf_ktime_get_ns (5.10's datapath
# clock) then costs ~0.5 ms a packet. tsc=reliable keeps the clock cheap, as
# on real hardware.
echo "run.sh: booting $release ($kver) for: $*" >&2
start=$(date +%s)
set +e
timeout --foreground "$timeout" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -smp 2 -m 2G -nographic -no-reboot -nic none \
  -kernel "$kdir/vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic tsc=reliable clocksource=tsc" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$out,mount_tag=vmout,security_model=none,multidevs=remap" \
  </dev/null
qemu_rc=$?
set -e
echo "run.sh: $release VM ran $(($(date +%s) - start)) s (qemu exit $qemu_rc)" >&2
if [[ ! -s $out/status ]]; then
  echo "run.sh: the VM reported no exit status (timed out or crashed)" >&2
  exit 124
fi
exit "$(cat "$out/status")"
