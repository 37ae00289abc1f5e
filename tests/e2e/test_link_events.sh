#!/usr/bin/env bash
# Interface events under `xdpguard run` (issue 5): the daemon protects the
# server's veth while
# 1. the interface goes down and up: both are logged, the same program stays
#    attached, an undocumented port (3306) is still blocked and a documented
#    one (8080) answers;
# 2. the veth pair is deleted and re-created with the same names and
#    addresses: the deletion is logged, the stale pins go, and the daemon
#    re-attaches (XDP and TC egress) to the new interface within seconds;
#    3306 is blocked again, 8080 answers;
# 3. the name comes back as an interface native XDP cannot attach to (a
#    dummy): the daemon says it cannot re-attach and why, and keeps watching;
#    the veth back under that name is protected again.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup
export XDPGUARD_STATE_DIR="$E2E_WORK/state"
# IPv6 drops static addresses on link down unless told otherwise; the checks
# after down/up need the server's address back.
ip netns exec "$SRV_NS" sysctl -qw "net.ipv6.conf.$SRV_IF.keep_addr_on_down=1"

POLICY="$E2E_WORK/links.yaml"
cat >"$POLICY" <<'EOF'
version: 1
name: link-events
peer_sets:
  anywhere: {cidrs: ["0.0.0.0/0", "::/0"]}
rules:
  - {id: web-8080, section: t, row: "Web | TCP | 8080", protocol: tcp, local_port: 8080, peers: anywhere, initiator: remote, flow: bidirectional, secured: false, purpose: web}
host_essentials:
  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: anywhere, initiator: remote, flow: bidirectional, purpose: admin}
  - {id: arp, protocol: ethertype, ethertypes: [0x0806], purpose: arp}
  - {id: ndp, protocol: icmpv6, icmp_types: [133, 134, 135, 136], peers: anywhere, purpose: ndp}
EOF

DLOG="$E2E_WORK/daemon.log"

xdp_prog_id() {  # 0 when nothing is attached (or no such interface)
  ip -n "$SRV_NS" -j -d link show dev "$SRV_IF" 2>/dev/null |
    "$PY" -c 'import json,sys; l=json.load(sys.stdin)[0]; print(l.get("xdp",{}).get("prog",{}).get("id",0))' 2>/dev/null ||
    echo 0
}
egress_attached() {
  [[ $(tc -n "$SRV_NS" filter show dev "$SRV_IF" egress 2>/dev/null) == *xdpguard_egress* ]]
}
protected() { [[ $(xdp_prog_id) != 0 ]] && egress_attached; }
logged() { grep -qF -- "$1" "$DLOG"; }
wait_log() {  # TEXT SECONDS
  wait_until "${2:-10}" logged "$1" || fail "the daemon did not log '$1'"
  log "ok: daemon logged '$1'"
}
count_log() { (($(grep -cF -- "$1" "$DLOG") >= $2)); }
daemon_alive() { kill -0 "$DAEMON" 2>/dev/null || fail "the daemon exited (see daemon.log)"; }

# The documented port answers, the undocumented one does not.
expect_enforcing() {
  # The first try may wait for ARP/NDP on a fresh link (the policy has no ping).
  wait_until 5 tcp_banner "$SRV_IP4" 8080 open-8080 || fail "$1: TCP 8080 (documented) does not answer"
  log "ok: $1: TCP 8080 (documented) answers"
  expect_ok "$1: TCP 8080 over IPv6 answers" tcp_banner "$SRV_IP6" 8080 open-8080
  expect_fail "$1: TCP 3306 (undocumented)" tcp_banner "$SRV_IP4" 3306 open-3306
  expect_fail "$1: TCP 3306 over IPv6" tcp_banner "$SRV_IP6" 3306 open-3306
}

phase "run"
start_closed_listeners
start_server daemon "$XDPGUARD" run --iface "$SRV_IF" --policy "$POLICY" --mode native
DAEMON=${E2E_PIDS[-1]}
E2E_ATTACHED=1
wait_log "$SRV_IF: attached (native mode)"
protected || fail "run did not attach XDP and TC egress"
id0=$(xdp_prog_id)
expect_enforcing "attached"

phase "down and up"
ip -n "$SRV_NS" link set dev "$SRV_IF" down
wait_log "$SRV_IF: link down"
expect_fail "TCP 8080 while the link is down" tcp_banner "$SRV_IP4" 8080 open-8080
ip -n "$SRV_NS" link set dev "$SRV_IF" up
wait_log "$SRV_IF: link up"
wait_log "$SRV_IF: xdpguard's programs are still attached"
[[ $(xdp_prog_id) == "$id0" ]] || fail "down/up changed the XDP program ($id0 -> $(xdp_prog_id))"
egress_attached || fail "the TC egress filter is gone after down/up"
expect_enforcing "after down/up"
daemon_alive

phase "delete and re-create"
ip -n "$SRV_NS" link del "$SRV_IF"
wait_log "interface $SRV_IF deleted; enforcement on it is gone; waiting for it to come back"
wait_until 5 test ! -e "$E2E_PIN_DIR" || fail "the stale pins in $E2E_PIN_DIR were not removed"
log "ok: stale pins removed"
daemon_alive
t0=$SECONDS
e2e_make_veth
wait_until 5 protected || fail "no XDP + TC egress on the re-created $SRV_IF within 5 s"
log "ok: re-attached within $((SECONDS - t0)) s (XDP id $(xdp_prog_id))"
wait_log "$SRV_IF: re-attached; enforcing again"
[[ -e $E2E_PIN_DIR ]] || fail "no pins after the re-attach"
expect_enforcing "after re-creation"
daemon_alive

phase "re-created where XDP cannot attach"
ip -n "$SRV_NS" link del "$SRV_IF"
wait_until 5 test ! -e "$E2E_PIN_DIR" || fail "the stale pins were not removed"
# A bridge (or an ifb) has no native XDP: the attach fails, whatever the timing.
kind=""
for k in bridge ifb; do
  if ip -n "$SRV_NS" link add "$SRV_IF" type "$k" 2>/dev/null; then kind=$k && break; fi
done
if [[ -n $kind ]]; then
  wait_log "$SRV_IF: cannot re-attach (reason above); it is NOT protected"
  grep -q "cannot attach in native mode to $SRV_IF" "$DLOG" || fail "the failure's reason was not logged"
  [[ $(xdp_prog_id) == 0 ]] || fail "something is attached to the $kind"
  [[ ! -e $E2E_PIN_DIR ]] || fail "a failed attach left pins behind"
  daemon_alive
  ip -n "$SRV_NS" link del "$SRV_IF"
  wait_until 5 count_log "interface $SRV_IF deleted" 3 || fail "the ${kind}'s deletion was not logged"
else
  log "SKIP: this kernel can create neither a bridge nor an ifb"
fi
e2e_make_veth
wait_until 5 protected || fail "no re-attach once the veth was back"
expect_enforcing "veth back"

phase "stop"
kill -TERM "$DAEMON"
rc=0
wait "$DAEMON" || rc=$?
((rc == 0)) || fail "daemon exited $rc on SIGTERM"
protected || fail "SIGTERM detached the programs"
# Every error line is one of the events above, nothing else went wrong.
unexpected=$(grep -E ' (error|critical): ' "$DLOG" | grep -v -e "deleted; enforcement on it is gone" \
  -e "cannot attach in native mode" -e "cannot re-attach (reason above)") || true
[[ -z $unexpected ]] || fail "unexpected errors in the daemon log: $unexpected"
xg_detach
