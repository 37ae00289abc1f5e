#!/usr/bin/env bash
# Several NICs, one policy (docs/policy-format.md, "Interfaces"): the server
# namespace has three veth "NICs", clients (the lib's pair), devices and
# management, each to a namespace of its own; the default policy is split
# over them by `interfaces:` (managed devices' rows on the devices NIC, the
# clients', Teams' and endpoints' rows on the clients NIC, admin SSH on the
# management NIC; everything else unscoped), and one `xdpguard run` holds
# all three.
# - check prints the view of each interface; explain --iface decides a trap
#   per interface;
# - a device's SNMP trap arrives on the devices NIC (counted on
#   device-snmp-traps-162 there) and is dropped no_rule on the clients NIC;
# - SSH works from the management network only (dropped no_rule on the
#   clients NIC); HTTPS from clients works on the clients NIC and is dropped
#   on the management NIC;
# - stats and metrics are per interface;
# - a SIGHUP with a policy that one interface refuses changes none of them
#   (every program id stays), and a good one reloads all three.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup

DEV_NS="xdpg-interfaces-$$-dev"
MGT_NS="xdpg-interfaces-$$-mgt"
DEV_IF="x${E2E_TAG}${$}d"   # the server's devices NIC
DEV_PEER="x${E2E_TAG}${$}e"
MGT_IF="x${E2E_TAG}${$}m"   # the server's management NIC
MGT_PEER="x${E2E_TAG}${$}n"
DEV_SRV_IP4="10.201.${E2E_NET}.1"
DEV_CLI_IP4="10.201.${E2E_NET}.2"
MGT_SRV_IP4="10.202.${E2E_NET}.1"
MGT_CLI_IP4="10.202.${E2E_NET}.2"
E2E_EXTRA_NS+=("$DEV_NS" "$MGT_NS")

phase "three NICs"
# NS SRV_IF PEER_IF SRV_IP PEER_IP: one more network for the server.
add_nic() {
  ip netns add "$1"
  ip netns exec "$1" sysctl -qw net.ipv6.conf.default.router_solicitations=0 \
    net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$1" link set lo up
  ip link add "$2" netns "$SRV_NS" type veth peer name "$3" netns "$1"
  ip -n "$SRV_NS" addr add "$4/24" dev "$2"
  ip -n "$1" addr add "$5/24" dev "$3"
  ip -n "$SRV_NS" link set "$2" up
  ip -n "$1" link set "$3" up
  wait_until 5 nsenter --net="/run/netns/$1" ping -c1 -W1 -q "$4" >/dev/null ||
    fail "no connectivity to $4 from $1"
}
add_nic "$DEV_NS" "$DEV_IF" "$DEV_PEER" "$DEV_SRV_IP4" "$DEV_CLI_IP4"
add_nic "$MGT_NS" "$MGT_IF" "$MGT_PEER" "$MGT_SRV_IP4" "$MGT_CLI_IP4"
log "clients $SRV_IF, devices $DEV_IF, management $MGT_IF"

# The default policy with rules scoped by their peers and a role per NIC.
POLICY="$E2E_WORK/three-nics.yaml"
scope_policy() {  # OUT [ROLE_OF_ADMIN_SSH...]
  "$PY" - "$E2E_SRC/policy/ovoc-single-node.yaml" "$@" "$SRV_IF" "$DEV_IF" "$MGT_IF" <<'EOF'
import re, sys
src, out, *ssh_roles = sys.argv[1:-3]
clients, devices, mgmt = sys.argv[-3:]
roles_of = {"managed-devices": "devices", "ovoc-clients": "clients", "teams": "clients",
            "endpoints": "clients"}
lines, rule = [], None
for line in open(src):
    m = re.match(r"  - id: (\S+)", line)
    if m:
        rule = m.group(1)
    lines.append(line)
    m = re.match(r"    peers: (\S+)", line)
    if m and (m.group(1) in roles_of or rule == "admin-ssh"):
        role = ", ".join(ssh_roles or ["management"]) if rule == "admin-ssh" else roles_of[m.group(1)]
        lines.append(f"    interfaces: [{role}]\n")
lines.append(f"interfaces:\n  clients: [{clients}]\n  devices: [{devices}]\n  management: [{mgmt}]\n")
open(out, "w").write("".join(lines))
EOF
}
scope_policy "$POLICY"
grep -q "interfaces: \[devices\]" "$POLICY" || fail "no rule was scoped to devices"

phase "check and explain per interface"
xg check --policy "$POLICY" >"$E2E_WORK/check.txt" 2>&1 || fail "check refused the policy"
grep -q "^Interfaces" "$E2E_WORK/check.txt" || fail "check printed no table of interfaces"
grep -Eq "^$DEV_IF +devices +[0-9]+ +.*device-snmp-traps-162" "$E2E_WORK/check.txt" ||
  fail "check's interface table has no devices row with device-snmp-traps-162"
explain_trap() {  # IF: the verdict line for a trap arriving on IF
  xg explain --policy "$POLICY" --iface "$1" \
    --packet "udp $DEV_CLI_IP4:40000 -> $DEV_SRV_IP4:162" 2>/dev/null | grep '^verdict:'
}
[[ $(explain_trap "$DEV_IF") == "verdict: pass" ]] || fail "explain: trap not passed on $DEV_IF"
[[ $(explain_trap "$SRV_IF") == "verdict: drop (no_rule)" ]] ||
  fail "explain: trap on $SRV_IF is '$(explain_trap "$SRV_IF")', not a no_rule drop"

phase "one daemon, three interfaces"
E2E_ATTACHED=1
E2E_EXTRA_IFS+=("$DEV_IF" "$MGT_IF")
start_server daemon "$XDPGUARD" run --iface "$SRV_IF" --iface "$DEV_IF" --iface "$MGT_IF" \
  --policy "$POLICY" --mode native
DAEMON=${E2E_PIDS[-1]}
wait_until 15 grep -q "enforcing .* on 3 interface" "$E2E_WORK/daemon.log" ||
  fail "the daemon did not bring up three interfaces"
prog_id() {  # IF: the XDP program id on IF
  ip -n "$SRV_NS" -j -d link show dev "$1" |
    "$PY" -c 'import json,sys; l=json.load(sys.stdin)[0]; print(l.get("xdp",{}).get("prog",{}).get("id",0))'
}
for nic in "$SRV_IF" "$DEV_IF" "$MGT_IF"; do
  [[ $(prog_id "$nic") != 0 ]] || fail "no XDP program on $nic"
done
start_snmptrapd
start_fake_ssh
start_https

phase "traffic per interface"
for nic in "$SRV_IF" "$DEV_IF" "$MGT_IF"; do wait_quiet "$nic"; done
stats_snapshot "$E2E_WORK/cli0.json" "$SRV_IF"
stats_snapshot "$E2E_WORK/dev0.json" "$DEV_IF"
stats_snapshot "$E2E_WORK/mgt0.json" "$MGT_IF"
CLI_NS=$DEV_NS expect_ok "a device's trap on the devices NIC" send_trap "$DEV_SRV_IP4" dev-trap-$$
expect_fail "a trap from the clients network" send_trap "$SRV_IP4" cli-trap-$$
CLI_NS=$MGT_NS expect_ok "SSH from the management network" tcp_banner "$MGT_SRV_IP4" 22 SSH-2.0
expect_fail "SSH from the clients network" tcp_banner "$SRV_IP4" 22 SSH-2.0
expect_ok "HTTPS from the clients network" https_get "$SRV_IP4"
CLI_NS=$MGT_NS expect_fail "HTTPS on the management NIC" https_get "$MGT_SRV_IP4"
stats_snapshot "$E2E_WORK/cli1.json" "$SRV_IF"
stats_snapshot "$E2E_WORK/dev1.json" "$DEV_IF"
stats_snapshot "$E2E_WORK/mgt1.json" "$MGT_IF"
expect_deltas "$E2E_WORK/dev0.json" "$E2E_WORK/dev1.json" \
  "rule:device-snmp-traps-162:pass_packets eq 1" "reason:no_rule:packets eq 0"
# On the clients NIC: the trap (1 datagram) and the SSH SYNs (1 and its
# retries) are no_rule; HTTPS passes on the clients' rule.
expect_deltas "$E2E_WORK/cli0.json" "$E2E_WORK/cli1.json" \
  "reason:no_rule:packets ge 2" "rule:nbif-clients-https:pass_packets ge 1"
# The devices' rule is not in the clients NIC's view at all, nor SSH's.
for id in device-snmp-traps-162 admin-ssh; do
  if grep -q "\"$id\"" "$E2E_WORK/cli1.json"; then fail "$id is in force on the clients NIC"; fi
done
expect_deltas "$E2E_WORK/mgt0.json" "$E2E_WORK/mgt1.json" \
  "rule:admin-ssh:pass_packets ge 1" "reason:no_rule:packets ge 1"
log "ok: trap on devices only, SSH on management only, HTTPS on clients only"

phase "metrics per interface"
xg metrics --iface "$SRV_IF" --iface "$DEV_IF" --iface "$MGT_IF" >"$E2E_WORK/metrics.txt" 2>&1 ||
  fail "metrics failed"
grep -q "^xdpguard_rule_packets_total{.*interface=\"$DEV_IF\".*rule=\"device-snmp-traps-162\"" \
  "$E2E_WORK/metrics.txt" || fail "no devices-NIC sample of device-snmp-traps-162 in metrics"
if grep -q "interface=\"$SRV_IF\".*rule=\"device-snmp-traps-162\"" "$E2E_WORK/metrics.txt"; then
  fail "the clients NIC reports a rule that is not in force there"
fi

phase "SIGHUP: all interfaces or none"
ids_before="$(prog_id "$SRV_IF") $(prog_id "$DEV_IF") $(prog_id "$MGT_IF")"
# The management NIC falls out of every role and unlisted interfaces are
# refused: that interface refuses the policy, so no interface may change.
sed -e "s/^  management: \[$MGT_IF\]/  management: []/" \
  -e 's/^settings:$/settings:\n  unlisted_interfaces: refuse/' "$POLICY" >"$E2E_WORK/refused.yaml"
grep -q "^  unlisted_interfaces: refuse" "$E2E_WORK/refused.yaml" || fail "no settings block to extend"
cp "$POLICY" "$E2E_WORK/good.yaml"
cp "$E2E_WORK/refused.yaml" "$POLICY"
kill -HUP "$DAEMON"
wait_until 10 grep -q "reload rejected" "$E2E_WORK/daemon.log" || fail "no rejected reload logged"
grep -q "interface '$MGT_IF' is not in the policy's 'interfaces:'" "$E2E_WORK/daemon.log" ||
  fail "the log does not say which interface refused the policy"
ids_after="$(prog_id "$SRV_IF") $(prog_id "$DEV_IF") $(prog_id "$MGT_IF")"
[[ $ids_after == "$ids_before" ]] || fail "a refused reload changed programs: $ids_before -> $ids_after"
# A good one: SSH now from the clients network too.
scope_policy "$POLICY" management clients
kill -HUP "$DAEMON"
wait_until 10 grep -q "$MGT_IF: reloaded" "$E2E_WORK/daemon.log" || fail "the good reload did not happen"
for nic in "$SRV_IF" "$DEV_IF" "$MGT_IF"; do
  grep -q "$nic: reloaded" "$E2E_WORK/daemon.log" || fail "$nic was not reloaded"
done
ids_new="$(prog_id "$SRV_IF") $(prog_id "$DEV_IF") $(prog_id "$MGT_IF")"
read -r -a a <<<"$ids_before"
read -r -a b <<<"$ids_new"
for i in 0 1 2; do
  [[ ${a[$i]} != "${b[$i]}" ]] || fail "interface $i kept program ${a[$i]} after the good reload"
done
expect_ok "SSH from the clients network after the reload" tcp_banner "$SRV_IP4" 22 SSH-2.0
log "ok: refused on one interface = unchanged on all ($ids_before); good reload -> $ids_new"
