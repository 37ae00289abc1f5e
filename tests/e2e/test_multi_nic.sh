#!/usr/bin/env bash
# `xdpguard run` with several interfaces (issue 15): three veth "NICs" in the
# server namespace (their peers in the client namespace), one policy,
# `--iface` three times:
# - the daemon attaches all three natively, and `stats` of each names the
#   policy;
# - HTTPS over each NIC passes and counts on that NIC's https rule only; an
#   undocumented UDP port is dropped no_rule on the NIC it arrived on, and
#   the other NICs' counters do not move;
# - SIGHUP with a policy that fails validation changes none of them (same
#   XDP program id on each); SIGHUP with a good one reloads all three.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup
export XDPGUARD_STATE_DIR="$E2E_WORK/state"
NS_INODE=$(stat -L -c %i "/run/netns/$SRV_NS")

# NIC n (0, 1, 2): server end, client end, server address.
NICS=("$SRV_IF")
CLIS=("$CLI_IF")
ADDRS=("$SRV_IP4")
for n in 1 2; do
  s="x${E2E_TAG}${$}${n}s" c="x${E2E_TAG}${$}${n}c"
  ip link add "$s" netns "$SRV_NS" type veth peer name "$c" netns "$CLI_NS"
  ip -n "$SRV_NS" addr add "10.20$n.${E2E_NET}.1/24" dev "$s"
  ip -n "$CLI_NS" addr add "10.20$n.${E2E_NET}.2/24" dev "$c"
  ip -n "$SRV_NS" link set "$s" up
  ip -n "$CLI_NS" link set "$c" up
  NICS+=("$s")
  CLIS+=("$c")
  ADDRS+=("10.20$n.${E2E_NET}.1")
  E2E_EXTRA_PIN_DIRS+=("/sys/fs/bpf/xdpguard/${s}@netns${NS_INODE}")
  wait_until 5 in_cli ping -c1 -W1 -q "10.20$n.${E2E_NET}.1" >/dev/null ||
    fail "no IPv4 connectivity across $s"
done

write_policy() {  # FILE NAME
  cat >"$1" <<EOF
version: 1
name: $2
peer_sets:
  anywhere: {cidrs: ["0.0.0.0/0", "::/0"]}
rules:
  - {id: https-443, section: t, row: "HTTPS | TCP | 443", protocol: tcp, local_port: 443, peers: anywhere, initiator: remote, flow: bidirectional, secured: true, purpose: web}
host_essentials:
  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: anywhere, initiator: remote, flow: bidirectional, purpose: admin}
  - {id: arp, protocol: ethertype, ethertypes: [0x0806], purpose: arp}
  - {id: ndp, protocol: icmpv6, icmp_types: [133, 134, 135, 136], peers: anywhere, purpose: ndp}
EOF
}
write_policy "$E2E_WORK/live.yaml" multi-a
write_policy "$E2E_WORK/b.yaml" multi-b
sed 's/local_port: 443/local_port: 99999/' "$E2E_WORK/b.yaml" >"$E2E_WORK/bad.yaml"

nic_stats() {  # N FILE
  xg stats --iface "${NICS[$1]}" --json >"$2" 2>>"$E2E_WORK/xdpguard.log" ||
    fail "stats --iface ${NICS[$1]} failed"
}
nic_prog() {  # N: the XDP program id on NIC N
  ip -n "$SRV_NS" -j -d link show dev "${NICS[$1]}" |
    "$PY" -c 'import json,sys; l=json.load(sys.stdin)[0]; print(l.get("xdp",{}).get("prog",{}).get("id",0))'
}
policy_on() {  # N: the policy name in force on NIC N ("" before the attach)
  local out
  out=$(xg stats --iface "${NICS[$1]}" --json 2>>"$E2E_WORK/xdpguard.log") || return 0
  "$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["policy"]["name"])' "$out"
}
all_on() {  # NAME: every NIC runs policy NAME
  local n
  for n in 0 1 2; do [[ $(policy_on "$n") == "$1" ]] || return 1; done
}

phase "servers"
start_https
start_closed_listeners

phase "run"
E2E_ATTACHED=1
start_server daemon "$XDPGUARD" run --iface "${NICS[0]}" --iface "${NICS[1]}" \
  --iface "${NICS[2]}" --mode native --policy "$E2E_WORK/live.yaml"
daemon=${E2E_PIDS[-1]}
wait_until 15 all_on multi-a || fail "the daemon did not attach multi-a to all three NICs"
for n in 0 1 2; do
  mode=$(ip -n "$SRV_NS" -j -d link show dev "${NICS[$n]}" |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0].get("xdp",{}).get("mode",0))')
  [[ $mode == 1 ]] || fail "${NICS[$n]}: expected a native XDP program, mode $mode"
done
log "ok: one daemon, three NICs attached natively"

phase "traffic per NIC"
for n in 0 1 2; do
  sleep 1  # ARP/NDP of the new links settles
  for m in 0 1 2; do nic_stats "$m" "$E2E_WORK/n$m.before.json"; done
  expect_ok "HTTPS over NIC $n" https_get "${ADDRS[$n]}"
  expect_fail "UDP 9999 over NIC $n" udp_delivered "${ADDRS[$n]}" "multi-nic-$n"
  for m in 0 1 2; do nic_stats "$m" "$E2E_WORK/n$m.after.json"; done
  expect_deltas "$E2E_WORK/n$n.before.json" "$E2E_WORK/n$n.after.json" \
    "rule:https-443:pass_packets ge 3" "reason:no_rule:packets ge 1"
  for m in 0 1 2; do
    ((m == n)) && continue
    expect_deltas "$E2E_WORK/n$m.before.json" "$E2E_WORK/n$m.after.json" \
      "rule:https-443:pass_packets eq 0" "reason:no_rule:packets eq 0"
  done
done

phase "SIGHUP"
ids_before="$(nic_prog 0) $(nic_prog 1) $(nic_prog 2)"
cp "$E2E_WORK/bad.yaml" "$E2E_WORK/live.yaml"
kill -HUP "$daemon"
wait_until 10 grep -q "reload rejected" "$E2E_WORK/daemon.log" ||
  fail "SIGHUP with a bad policy was not rejected"
ids_after="$(nic_prog 0) $(nic_prog 1) $(nic_prog 2)"
[[ $ids_after == "$ids_before" ]] || fail "a rejected reload changed programs: $ids_before -> $ids_after"
all_on multi-a || fail "a rejected reload changed the policy on some NIC"
log "ok: a rejected reload changed none of the three (programs $ids_before)"
cp "$E2E_WORK/b.yaml" "$E2E_WORK/live.yaml"
kill -HUP "$daemon"
wait_until 10 all_on multi-b || fail "SIGHUP did not reload all three NICs to multi-b"
for n in 0 1 2; do expect_ok "HTTPS over NIC $n after reload" https_get "${ADDRS[$n]}"; done
log "ok: SIGHUP reloaded all three: $ids_before -> $(nic_prog 0) $(nic_prog 1) $(nic_prog 2)"

phase "stop"
kill "$daemon"
wait "$daemon" 2>/dev/null || true
for n in 1 2; do
  xg detach --iface "${NICS[$n]}" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "detach ${NICS[$n]} failed"
done
xg_detach
phase "done"
