# shellcheck shell=sh
# What the package scripts do, shared by the .deb (deploy/debian/) and the
# RPM (deploy/rpm/): each format's scripts decide *when*, from their own
# arguments; these functions say *what*. cmake/Packaging.cmake pastes this
# file into each script at @XDPGUARD_PACKAGE_ACTIONS@. Plain POSIX sh: RPM
# runs scriptlets with /bin/sh, which may be bash or dash.
#
# Nothing is enabled or started on install: which interface to guard is the
# operator's decision (systemctl enable --now xdpguard@IFACE). An upgrade
# restarts only instances that are running, so that they run the new binary;
# the pinned programs keep enforcing across the restart. Outside systemd (a
# container, a chroot) there is nothing to tell.

xdpguard_daemon_reload() {
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
  fi
}

xdpguard_restart_running() {
  if [ -d /run/systemd/system ]; then
    systemctl try-restart 'xdpguard@*.service' || true
  fi
}

# On removal: stop the daemons. Stopping does not remove the firewall (it
# stays attached and enforcing by design), so say where it still is.
xdpguard_stop_and_warn() {
  if [ -d /run/systemd/system ]; then
    systemctl stop 'xdpguard@*.service' || true
  fi
  if [ -d /sys/fs/bpf/xdpguard ]; then
    for dir in /sys/fs/bpf/xdpguard/*; do
      [ -e "$dir" ] || continue
      iface=${dir##*/}
      echo "xdpguard: warning: still attached to $iface and enforcing until" \
           "reboot; to remove it, reinstall and run 'xdpguard detach --iface ${iface%%@*}'" >&2
    done
  fi
}
