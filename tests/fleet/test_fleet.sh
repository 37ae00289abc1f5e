#!/usr/bin/env bash
# The fleet (issue 16): deploy/ansible's role and rollout against three real
# hosts. Each host is a `systemd-nspawn --boot` container of a debootstrapped
# bookworm (cached, tests/e2e/debian_root.sh; each host an overlay of its own
# on it): its own root file system, systemd as PID 1 (and udevd), its own
# network namespace holding eth0, the interface xdpguard guards, and sshd.
# The controller (ansible-playbook) and two clients live in a network
# namespace of their own with a bridge; each host's eth0 is one end of a veth
# pair (nspawn --network-veth-extra) whose other end is on that bridge. What
# BPF needs inside a container:
#   --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN (nspawn's default set has
#   CAP_SYS_ADMIN, which mounts bpffs; the unit narrows to its own three),
#   --system-call-filter=bpf (nspawn's seccomp filter refuses bpf()),
#   a bpffs of its own (an instance the test mounts, --bind to /sys/fs/bpf):
#   pins never leave the container, and every host can use the name eth0,
#   SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 (udevd runs only on a writable /sys).
# Ansible connects as the user `ops` with sudo (become), as operators do.
#
# What it asserts, in order:
# 1. site.yml in check mode on the fresh hosts: changes reported, nothing
#    installed; applied: the .deb installed, xdpguard@IF active under
#    systemd, the policy enforcing; applied again: changed=0 on every host.
# 2. `systemctl restart xdpguard@IF` under traffic: a TCP stream to an allowed
#    port keeps flowing (every line arrives, the connection never breaks)
#    and a blocked port stays blocked throughout.
# 3. rollout.yml with a policy that misses a client: every host in audit, the
#    gate names the rule that would drop the client and stops the rollout;
#    no host enforces.
# 4. rollout.yml with the client added, and one host (fleet2) whose new
#    policy cuts the controller off: all in audit, the gate passes, batch 1
#    (fleet1) enforces and confirms, batch 2 (fleet2) cannot be reached,
#    rolls back by itself to audit after the confirm timeout, and the
#    rollout stops: fleet3 is never touched (audit), fleet1 stays enforcing,
#    the clients' traffic to fleet1 and fleet3 is unaffected.
# Needs root, systemd-nspawn (systemd-container), ansible, debootstrap (first
# run), cpack, socat. XDPGUARD is <build>/agent/xdpguard.
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

for tool in systemd-nspawn ansible-playbook ssh ssh-keygen cpack socat; do
  command -v "$tool" >/dev/null || fail "$tool is missing (scripts/install-deps.sh installs it)"
done
[[ $(id -u) == 0 ]] || fail "needs root"
BUILD=$(dirname "$(readlink -f "$XDPGUARD")")
while [[ ! -f $BUILD/CMakeCache.txt ]]; do
  [[ $BUILD == / ]] && fail "no CMakeCache.txt above $XDPGUARD"
  BUILD=$(dirname "$BUILD")
done

HOSTS=(1 2 3)
NET=10.201.$(($$ % 250 + 1))
CTL_IP=$NET.1
CLIENT_A=$NET.101 # listed in ovoc-clients from the start
CLIENT_B=$NET.102 # missing from ovoc-clients in the first rollout
CTL_NS="xdpg-fleet-$$-ctl"
BRIDGE="xf$$br"
host_ip() { printf '%s.1%s' "$NET" "$1"; }
host_if() { printf eth0; }                 # inside the container (xdpguard's)
peer_if() { printf 'xf%sp%s' "$$" "$1"; } # the other end, on the bridge
machine() { printf 'xdpg-fleet-%s-h%s' "$$" "$1"; }

WORK=""
NSPAWN_PIDS=()
PIDS=()
cleanup() {
  local rc=$? i
  set +e
  trap - EXIT INT TERM
  for i in "${PIDS[@]}"; do kill "$i" 2>/dev/null; done
  for i in "${PIDS[@]}"; do wait "$i" 2>/dev/null; done
  # What ansible left in the controller's namespace (ssh ControlPersist masters).
  [[ -e /run/netns/$CTL_NS ]] && for i in $(ip netns pids "$CTL_NS"); do kill "$i" 2>/dev/null; done
  if ((rc != 0)) && [[ -n $WORK ]]; then
    for i in "${HOSTS[@]}"; do
      on "$i" journalctl -u 'xdpguard@*' -n 40 --no-pager >"$WORK/h$i-journal.log" 2>&1
    done
  fi
  # SIGTERM to nspawn --boot powers the container off (SIGRTMIN+3 to its
  # init); its network namespace, the veth end in it, the XDP programs on
  # it and its bpffs go with it.
  for i in "${NSPAWN_PIDS[@]}"; do kill "$i" 2>/dev/null; done
  for i in "${NSPAWN_PIDS[@]}"; do
    timeout 30 tail --pid="$i" -f /dev/null || kill -9 "$i" 2>/dev/null
    wait "$i" 2>/dev/null
  done
  ip netns del "$CTL_NS" 2>/dev/null
  for i in "${HOSTS[@]}"; do ip link del "$(peer_if "$i")" 2>/dev/null; done
  if [[ -n $WORK && -d $WORK ]]; then
    for i in "${HOSTS[@]}"; do
      for m in root bpffs; do
        mountpoint -q "$WORK/h$i/$m" && { umount "$WORK/h$i/$m" || umount -l "$WORK/h$i/$m"; }
      done
    done
    if ((rc != 0)); then
      local f
      for f in "$WORK"/*.log; do
        [[ -s $f ]] || continue
        printf '===== %s =====\n' "${f#"$WORK"/}" >&2
        tail -n 80 "$f" >&2
      done
    fi
    if grep -q " $WORK/" /proc/mounts; then
      log "mounts left under $WORK; not removing it"
    elif [[ ${E2E_KEEP:-0} != 1 ]]; then
      rm -rf --one-file-system "$WORK"
    fi
  fi
  ((rc == 0)) && log "PASS"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

phase "the host root (cached) and the package"
T0=$SECONDS
ROOT=$(XDPGUARD_ROOT_NAME=fleet bash "$E2E_SRC/tests/e2e/debian_root.sh" bookworm \
  systemd,systemd-sysv,udev,dbus,openssh-server,python3,python3-apt,sudo,procps,iproute2) ||
  fail "no bookworm root"
log "root $ROOT ready in $((SECONDS - T0)) s"
WORK=$(mktemp -d /tmp/xdpguard-fleet.XXXXXX)
chmod 755 "$WORK"
cpack -G DEB --config "$BUILD/CPackConfig.cmake" -B "$WORK/pkg" >"$WORK/cpack.log" 2>&1 ||
  fail "cpack failed: $(tail -20 "$WORK/cpack.log")"
DEB=$(ls "$WORK"/pkg/xdpguard_*.deb)
ssh-keygen -q -t ed25519 -N '' -f "$WORK/id" -C fleet-test

phase "network: the controller's namespace and a bridge"
ip netns add "$CTL_NS"
ctl() { nsenter --net="/run/netns/$CTL_NS" "$@"; }
ip -n "$CTL_NS" link set lo up
ip -n "$CTL_NS" link add "$BRIDGE" type bridge
ip -n "$CTL_NS" addr add "$CTL_IP/24" dev "$BRIDGE"
ip -n "$CTL_NS" addr add "$CLIENT_A/24" dev "$BRIDGE"
ip -n "$CTL_NS" addr add "$CLIENT_B/24" dev "$BRIDGE"
ip -n "$CTL_NS" link set "$BRIDGE" up

phase "boot ${#HOSTS[@]} hosts"
T0=$SECONDS
for i in "${HOSTS[@]}"; do
  d=$WORK/h$i
  mkdir -p "$d/upper" "$d/work" "$d/root"
  mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$d/upper,workdir=$d/work" "$d/root"
  r=$d/root
  printf 'fleet%s\n' "$i" >"$r/etc/hostname"
  printf '127.0.1.1 fleet%s\n' "$i" >>"$r/etc/hosts"
  # The container's own bpffs: an instance of its own, bound in.
  mkdir -p "$d/bpffs"
  mount -t bpf bpf "$d/bpffs"
  mkdir -p "$r/etc/systemd/network"
  printf '[Match]\nName=%s\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\n' \
    "$(host_if "$i")" "$(host_ip "$i")" >"$r/etc/systemd/network/10-fleet.network"
  ln -sf /lib/systemd/system/systemd-networkd.service \
    "$r/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
  chroot "$r" useradd -m -s /bin/bash ops
  printf 'ops ALL=(ALL) NOPASSWD: ALL\n' >"$r/etc/sudoers.d/ops"
  chmod 440 "$r/etc/sudoers.d/ops"
  install -d -m 700 -o "$(chroot "$r" id -u ops)" "$r/home/ops/.ssh"
  install -m 600 -o "$(chroot "$r" id -u ops)" "$WORK/id.pub" "$r/home/ops/.ssh/authorized_keys"
  # --keep-unit and --register=no: no D-Bus or machined needed on the
  # machine that runs the test. A writable /sys (API VFS) lets the
  # container's udevd run: it makes the device unit the xdpguard@ unit binds
  # to (sys-subsystem-net-devices-eth0.device).
  SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 \
    systemd-nspawn --quiet --boot --register=no --keep-unit --console=read-only \
    -D "$r" -M "$(machine "$i")" --network-veth-extra="$(peer_if "$i"):$(host_if "$i")" \
    --capability=CAP_BPF,CAP_PERFMON,CAP_NET_ADMIN --system-call-filter=bpf \
    --bind="$d/bpffs:/sys/fs/bpf" --resolv-conf=off --timezone=off --link-journal=no \
    >"$d/console.log" 2>&1 </dev/null &
  NSPAWN_PIDS+=($!)
  for _ in $(seq 100); do
    ip link show "$(peer_if "$i")" >/dev/null 2>&1 && break
    sleep 0.1
  done
  ip link set "$(peer_if "$i")" netns "$CTL_NS" || fail "nspawn made no veth for fleet$i"
  ip -n "$CTL_NS" link set "$(peer_if "$i")" master "$BRIDGE" up
done
SSH=(ssh -i "$WORK/id" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o ConnectTimeout=3 -o BatchMode=yes)
on() { # on HOST COMMAND...: as root on host HOST, over SSH from the controller
  local h=$1
  shift
  ctl "${SSH[@]}" "ops@$(host_ip "$h")" sudo "$@"
}
for i in "${HOSTS[@]}"; do
  for _ in $(seq 60); do
    on "$i" systemctl is-system-running --wait >/dev/null 2>&1 && break
    kill -0 "${NSPAWN_PIDS[i - 1]}" 2>/dev/null || fail "fleet$i did not boot"
    sleep 1
  done
  state=$(on "$i" systemctl is-system-running 2>&1) ||
    fail "fleet$i: systemd is '$state': $(on "$i" systemctl --failed --no-legend 2>&1)"
  [[ $(on "$i" readlink /proc/1/exe) == */systemd ]] || fail "fleet$i: PID 1 is not systemd"
  # PID 1 in the container takes devices from udev's database when it starts
  # but does not hear udevd's later events; once udevd has seen eth0, a
  # re-exec plugs sys-subsystem-net-devices-eth0.device, which the
  # xdpguard@ unit binds to (on a real host udev does this before).
  on "$i" udevadm settle
  on "$i" systemctl daemon-reexec
  [[ $(on "$i" systemctl is-active "sys-subsystem-net-devices-$(host_if "$i").device") == active ]] ||
    fail "fleet$i: no device unit for $(host_if "$i")"
done
log "${#HOSTS[@]} hosts up, systemd running, in $((SECONDS - T0)) s"
# The network namespace of a host, for its servers: its PID 1's.
host_ns() { nsenter --target "$(pgrep -P "${NSPAWN_PIDS[$1 - 1]}" | head -1)" --net "${@:2}"; }

phase "servers and clients"
# On every host: 443 (allowed, ovoc-clients) and 5555 (no rule), run in the
# host's network namespace; each accepted connection's bytes go to a file.
for i in "${HOSTS[@]}"; do
  for port in 443 5555; do
    host_ns "$i" socat -u "TCP-LISTEN:$port,reuseaddr,fork" "OPEN:$WORK/h$i.$port.in,creat,append" \
      2>"$WORK/h$i.$port.log" &
    PIDS+=($!)
  done
done

# The inventory: one group, the peer sets everyone shares, each host's
# interface and admin set. $1: ovoc-clients (a YAML flow list's items);
# $2: fleet2's admin-hosts.
CONFIRM=45
inventory() {
  local i s admin
  {
    printf 'xdpguard:\n  hosts:\n'
    for i in "${HOSTS[@]}"; do
      admin=$CTL_IP/32
      ((i == 2)) && admin=$2
      printf '    fleet%s:\n      ansible_host: %s\n      xdpguard_interfaces: [%s]\n' \
        "$i" "$(host_ip "$i")" "$(host_if "$i")"
      printf '      xdpguard_host_peer_sets: {admin-hosts: [%s]}\n' "$admin"
      # fleet2's admin set may be narrowed on purpose: the gate is not to
      # judge the SSH rule there.
      ((i == 2)) && printf '      xdpguard_gate_ignore_rules: [admin-ssh]\n'
    done
    printf '  vars:\n'
    printf '    %s\n' "ansible_user: ops" "ansible_ssh_private_key_file: $WORK/id" \
      "ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null" \
      "ansible_python_interpreter: /usr/bin/python3" "xdpguard_deb: $DEB" \
      "xdpguard_gate_seconds: 5" "xdpguard_confirm_seconds: $CONFIRM" \
      "xdpguard_reconnect_timeout: 15" "xdpguard_peer_sets:" "  ovoc-clients: [$1]"
    # Every other set: addresses nothing here uses (TEST-NET-1), so a
    # client is admitted by ovoc-clients or not at all.
    for s in teams managed-devices endpoints sharefile azure-blob floating-license-service \
      ldap-servers mail-servers syslog-servers debug-recording-servers rdp-devices \
      ntp-servers dns-resolvers; do
      printf '      %s: [192.0.2.0/24]\n' "$s"
    done
  } >"$WORK/inventory.yml"
}

# playbook FILE NAME [ARGS...]: ansible-playbook from the controller's
# namespace; its output in $WORK/NAME.log, with a time stamp per task.
playbook() {
  ctl env ANSIBLE_CONFIG="$E2E_SRC/deploy/ansible/ansible.cfg" ANSIBLE_NOCOLOR=1 \
    ANSIBLE_LOCAL_TEMP="$WORK/ansible-tmp" ANSIBLE_SSH_CONTROL_PATH_DIR="$WORK/cp" \
    ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks \
    ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=30s -o ServerAliveInterval=2 -o ServerAliveCountMax=3" \
    ansible-playbook -i "$WORK/inventory.yml" "$E2E_SRC/deploy/ansible/$1" "${@:3}" \
    >"$WORK/$2.log" 2>&1
}
# recap NAME HOST FIELD: a number from the play recap of $WORK/NAME.log
recap() {
  sed -n "s/^fleet$2 *:.* $3=\([0-9]*\).*/\1/p" "$WORK/$1.log" | tail -1
}
stats() { on "$1" /usr/sbin/xdpguard stats --iface "$(host_if "$1")" --json; }
policy_mode() { stats "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["policy"]["mode"])'; }
# reach FROM HOST PORT [SECONDS]: a TCP connection from a client address
# opens (within SECONDS, default 1)
reach() {
  ctl socat -u /dev/null "TCP:$(host_ip "$2"):$3,bind=$1,connect-timeout=${4:-1}" 2>/dev/null
}

phase "site.yml in check mode on fresh hosts"
inventory "$NET.0/24" "$CTL_IP/32"
T0=$SECONDS
playbook site.yml check --check || fail "site.yml --check failed: $(tail -30 "$WORK/check.log")"
for i in "${HOSTS[@]}"; do
  (($(recap check "$i" changed) > 0)) || fail "check mode on fresh fleet$i reports no change"
  ! on "$i" dpkg-query -W xdpguard >/dev/null 2>&1 || fail "check mode installed the package on fleet$i"
done
log "check mode: $((SECONDS - T0)) s"

phase "site.yml: apply"
T0=$SECONDS
playbook site.yml apply || fail "site.yml failed"
for i in "${HOSTS[@]}"; do
  [[ $(on "$i" systemctl is-active "xdpguard@$(host_if "$i")") == active ]] ||
    fail "xdpguard@$(host_if "$i") is not active on fleet$i"
  [[ $(policy_mode "$i") == enforce ]] || fail "fleet$i does not enforce"
  reach "$CLIENT_A" "$i" 443 || fail "client A cannot reach fleet$i:443"
  ! reach "$CLIENT_A" "$i" 5555 || fail "fleet$i:5555 is open"
done
log "apply: $((SECONDS - T0)) s"

phase "site.yml: apply again, no change"
T0=$SECONDS
playbook site.yml again || fail "site.yml (second run) failed"
for i in "${HOSTS[@]}"; do
  [[ $(recap again "$i" changed) == 0 ]] ||
    fail "second run changed fleet$i: $(grep -B3 "^changed: \[fleet$i" "$WORK/again.log" | head -20)"
done
log "apply again: $((SECONDS - T0)) s, changed=0 on every host"

phase "systemctl restart under traffic"
unit1="xdpguard@$(host_if 1)"
pid_before=$(on 1 systemctl show -p MainPID --value "$unit1")
# A numbered line every 10 ms from client A to fleet1:443, on one
# connection; on SIGTERM the number of lines sent goes to stream.sent. A send
# that fails ends the process (exit 1). nsenter itself, not the function
# ctl: $! must be the client (nsenter execs it), not a subshell around it.
nsenter --net="/run/netns/$CTL_NS" "$PY" -c '
import signal, socket, sys, time
host, client, out = sys.argv[1:]
s = socket.socket()
s.bind((client, 0))
s.connect((host, 443))
n = 0
def stop(*_):
    open(out, "w").write("%d\n" % n)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    s.sendall(b"s%d\n" % (n + 1))
    n += 1
    time.sleep(0.01)
' "$(host_ip 1)" "$CLIENT_A" "$WORK/stream.sent" 2>"$WORK/stream.log" &
STREAM=$!
PIDS+=($STREAM)
# Connections to the blocked port, back to back, during the restart.
(while :; do
  if reach "$CLIENT_A" 1 5555 0.2; then echo open; else echo closed; fi
done) >"$WORK/blocked.probes" &
PROBE=$!
PIDS+=($PROBE)
# Restart only once the stream flows (a loaded machine starts it slowly).
lines() { grep -c '^s' "$WORK/h1.443.in" 2>/dev/null || true; }
for _ in $(seq 100); do
  (($(lines) > 10)) && break
  sleep 0.1
done
before=$(lines)
((before > 10)) || fail "the stream does not flow before the restart: $(cat "$WORK/stream.log")"
on 1 systemctl restart "$unit1"
[[ $(on 1 systemctl is-active "$unit1") == active ]] || fail "$unit1 is not active after restart"
pid_after=$(on 1 systemctl show -p MainPID --value "$unit1")
[[ $pid_after != "$pid_before" && $pid_after != 0 ]] ||
  fail "the daemon was not restarted ($pid_before -> $pid_after)"
sleep 1
after=$(lines)
kill "$PROBE"
wait "$PROBE" 2>/dev/null || true
kill -0 "$STREAM" 2>/dev/null || fail "the stream broke during the restart: $(cat "$WORK/stream.log")"
kill "$STREAM"
wait "$STREAM" || fail "the stream client failed: $(cat "$WORK/stream.log")"
sleep 0.5
sent=$(cat "$WORK/stream.sent")
received=$(lines)
probes=$(wc -l <"$WORK/blocked.probes")
opened=$(grep -c open "$WORK/blocked.probes" || true)
log "restart: stream $before -> $after lines across it, sent $sent, received $received;" \
  "$probes probes of :5555, $opened open"
((after > before)) || fail "the stream stalled across the restart"
((received >= sent - 1)) || fail "the stream lost lines: sent $sent, received $received"
((probes > 0 && opened == 0)) || fail "the blocked port answered $opened of $probes probes"
[[ ! -s $WORK/h1.5555.in ]] || fail "fleet1:5555 received data"

# Clients A and B, a connection each to every host's 443 every 0.3 s, until
# the end: the traffic the gate sees.
for c in "$CLIENT_A" "$CLIENT_B"; do
  (while :; do
    for i in "${HOSTS[@]}"; do
      printf 'c %s\n' "$c" |
        ctl socat -u - "TCP:$(host_ip "$i"):443,bind=$c,connect-timeout=0.3" 2>/dev/null || true
    done
    sleep 0.3
  done) &
  PIDS+=($!)
done

phase "rollout: a policy that misses client B stops at the gate"
T0=$SECONDS
inventory "$CLIENT_A/32" "$CTL_IP/32"
if playbook rollout.yml gate-stops; then fail "the rollout went through a gate that should stop it"; fi
grep -q 'gate: .*would-drops' "$WORK/gate-stops.log" ||
  fail "the gate did not say why: $(tail -30 "$WORK/gate-stops.log")"
log "$(grep -o 'gate: [^"]*' "$WORK/gate-stops.log" | head -1)"
if grep -q "TASK \[xdpguard : Enforce the new policy" "$WORK/gate-stops.log"; then
  fail "a host was enforced past the gate"
fi
for i in "${HOSTS[@]}"; do
  [[ $(policy_mode "$i") == audit ]] || fail "fleet$i is not in audit mode after the gate stopped"
done
log "the gate stopped the rollout after $((SECONDS - T0)) s; every host in audit"

phase "rollout: client B added, fleet2 cut off by its new policy"
T0=$SECONDS
inventory "$CLIENT_A/32, $CLIENT_B/32" 192.0.2.1/32
if playbook rollout.yml rollout; then fail "the rollout went through although fleet2 was cut off"; fi
T_END=$SECONDS
[[ $(policy_mode 1) == enforce ]] || fail "fleet1 (batch 1) does not enforce"
on 1 cmp /etc/xdpguard/policy.yaml /etc/xdpguard/rollout.yaml ||
  fail "fleet1's daemon policy is not the new one"
[[ $(policy_mode 3) == audit ]] || fail "fleet3 (batch 3) was touched"
if sed -n '/PLAY \[Enforce/,/PLAY RECAP/p' "$WORK/rollout.log" | grep -q "\[fleet3\]"; then
  fail "fleet3 was in an enforce batch after fleet2 failed"
fi
(($(recap rollout 2 failed) + $(recap rollout 2 unreachable) > 0)) || fail "fleet2 did not fail"
# fleet2 enforces the policy that cuts it off until its watcher rolls it back.
if ctl "${SSH[@]}" "ops@$(host_ip 2)" true 2>/dev/null; then
  fail "fleet2 was reachable under the policy that cuts it off"
fi
for _ in $(seq $((CONFIRM + 15))); do
  on 2 true 2>/dev/null && break
  sleep 1
done
T_BACK=$SECONDS
on 2 true || fail "fleet2 did not roll back: unreachable $((CONFIRM + 15)) s after the rollout"
[[ $(policy_mode 2) == audit ]] || fail "fleet2 is back but not in audit mode"
[[ $(on 2 systemctl is-active "xdpguard@$(host_if 2)") == active ]] || fail "fleet2's unit is not active"
for i in 1 3; do
  reach "$CLIENT_A" "$i" 443 || fail "client A cannot reach fleet$i after the rollout"
  reach "$CLIENT_B" "$i" 443 || fail "client B cannot reach fleet$i after the rollout"
done
! reach "$CLIENT_A" 1 5555 || fail "fleet1:5555 is open"
log "rollout stopped after $((T_END - T0)) s; fleet2 reachable again (rolled back) $((T_BACK - T_END)) s later"
log "timeline (profile_tasks: wall clock, task time, time since start):"
grep -E -A1 '^(PLAY \[|TASK \[(xdpguard : )?(Put|Stop|Enforce|Reach|Confirm|Watch|Gate))' "$WORK/rollout.log" |
  grep -v '^--$' | sed 's/^/  /' >&2 || true
