#!/bin/busybox sh
# PID 1 of the test VM (tests/vm/run.sh packs it as /init). Loads the modules
# the shares need, mounts the host's root read-only over 9p with a tmpfs
# overlay on top (so builds and ctest can write; the writes vanish with the
# VM), binds the kernel's modules and the results share into it, runs the
# command there, writes its exit status to the share and powers off.
/bin/busybox --install -s /bin
ln -s bin /sbin # the kernel autoloads modules with /sbin/modprobe, from here
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev

for m in $(cat /modules.order); do
  insmod "/modules/$m" || echo "init: insmod $m failed"
done

mkdir -p /host /out /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 vmout /out
. /out/params # OUT_DIR, ROOT_DIR, MODULES_DIR (host paths)

mount -t tmpfs -o size=1536m tmpfs /upper
mkdir -p /upper/data /upper/work
mount -t overlay overlay \
  -o "lowerdir=/host$ROOT_DIR,upperdir=/upper/data,workdir=/upper/work" /newroot
r=/newroot
mount -t proc proc $r/proc
mount -t sysfs sys $r/sys
mount -t devtmpfs dev $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts devpts $r/dev/pts
mount -t tmpfs tmpfs $r/dev/shm
mount -t tmpfs tmpfs $r/tmp
mount -t tmpfs tmpfs $r/run
# The host's checkout and the command's directory stay visible (and
# writable, in the overlay's way) where they live under the fresh /tmp or
# /run, or outside another root (--root).
n=0
for d in $KEEP_DIRS; do
  case $d in /tmp/* | /run/*) ;; *) [ -n "$ROOT_DIR" ] || continue ;; esac
  n=$((n + 1))
  mkdir -p /upper/keep$n/data /upper/keep$n/work $r$d
  mount -t overlay overlay \
    -o "lowerdir=/host$d,upperdir=/upper/keep$n/data,workdir=/upper/keep$n/work" $r$d
done
mount -t bpf bpf $r/sys/fs/bpf
mount -t debugfs debugfs $r/sys/kernel/debug 2>/dev/null
# The kernel's modules, for modprobe in the command and for the kernel's
# own autoloading (sch_ingress, cls_bpf...), which runs in this root.
mkdir -p /lib/modules $r/lib/modules $r$OUT_DIR
mount --bind "/host$MODULES_DIR" /lib/modules
mount --bind "/host$MODULES_DIR" $r/lib/modules
mount --bind /out $r$OUT_DIR
ip link set lo up 2>/dev/null

chroot $r /bin/sh "$OUT_DIR/command.sh"
echo $? >/out/status
sync
umount $r$OUT_DIR /out 2>/dev/null
poweroff -f
