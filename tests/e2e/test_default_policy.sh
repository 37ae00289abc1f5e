#!/usr/bin/env bash
# The embedded default policy on a real interface (native XDP on the server's
# veth), with real clients against real servers:
# - documented services work (HTTPS 443 over IPv4 and IPv6, SNMP traps 162,
#   SIP 5060, admin SSH 22, ping), so ARP and NDP work too;
# - undocumented ports (TCP 8080, TCP 3306, UDP 9999) are unreachable although
#   a listener runs on each, and are counted as no_rule;
# - counters move by exactly the number of crafted frames sent;
# - admin SSH narrowed to another address is unreachable and counted as
#   peer_not_in_set on the SSH rule;
# - detach restores the unfiltered link and removes the pins.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup

phase "servers"
start_https
start_snmptrapd
start_fake_ssh
start_closed_listeners

phase "baseline without xdpguard"
# The listeners on undocumented ports answer, so a later failure is the filter.
expect_ok "HTTP 8080 answers before attach" http_get "$SRV_IP4" 8080
expect_ok "TCP 3306 answers before attach" tcp_banner "$SRV_IP4" 3306 open-3306
expect_ok "TCP 3306 answers before attach (IPv6)" tcp_banner "$SRV_IP6" 3306 open-3306
expect_ok "UDP 9999 delivers before attach" udp_delivered "$SRV_IP4" before-attach

phase "attach default policy"
xg_attach
[[ -d $E2E_PIN_DIR ]] || fail "no pin directory $E2E_PIN_DIR after attach"
mode=$(xdp_mode)
[[ $mode == 1 ]] || fail "expected a native (driver) XDP program on $SRV_IF, mode=$mode"

# Rule ids come from the policy, through explain, not from this script.
rule_https=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:443 flags S")
rule_trap=$(rule_for "udp $CLI_IP4:40000 -> $SRV_IP4:162")
rule_sip=$(rule_for "udp $CLI_IP4:5061 -> $SRV_IP4:5060")
rule_ssh=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:22 flags S")
rule_ping=$(rule_for "icmp $CLI_IP4 -> $SRV_IP4 type 8")
rule_ping6=$(rule_for "icmpv6 $CLI_IP6 -> $SRV_IP6 type 128")
rule_arp=$(rule_for "arp")
rule_ndp=$(rule_for "icmpv6 $CLI_IP6 -> $SRV_IP6 type 135")
log "rules: https=$rule_https trap=$rule_trap sip=$rule_sip ssh=$rule_ssh arp=$rule_arp ndp=$rule_ndp"

phase "documented services through the filter"
# Forget the neighbours learnt before attach: address resolution (ARP, NDP)
# must now get through the filter for anything else to work.
ip -n "$SRV_NS" neigh flush dev "$SRV_IF"
ip -n "$CLI_NS" neigh flush dev "$CLI_IF"
stats_snapshot "$E2E_WORK/s0.json"
expect_ok "ping IPv4" in_cli ping -c 2 -i 0.2 -W 2 -q "$SRV_IP4"
expect_ok "ping IPv6" in_cli ping -c 2 -i 0.2 -W 2 -q "$SRV_IP6"
expect_ok "HTTPS 443 over IPv4" https_get "$SRV_IP4"
expect_ok "HTTPS 443 over IPv6" https_get "[$SRV_IP6]"
expect_ok "SNMP trap 162 over IPv4" send_trap "$SRV_IP4" trap-v4-$$
expect_ok "SNMP trap 162 over IPv6" send_trap "udp6:[$SRV_IP6]:162" trap-v6-$$
expect_ok "SIP call to 5060" sip_call 1
expect_ok "admin SSH 22 over IPv4" tcp_banner "$SRV_IP4" 22 SSH-2.0
expect_ok "admin SSH 22 over IPv6" tcp_banner "$SRV_IP6" 22 SSH-2.0
stats_snapshot "$E2E_WORK/s1.json"
# A TLS session is several segments; a trap is one datagram per trap;
# a SIP call is INVITE, ACK, BYE at least; an SSH probe is a handshake.
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_https:pass_packets" ge 6
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_trap:pass_packets" ge 2
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_sip:pass_packets" ge 3
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_ssh:pass_packets" ge 4
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_ping:pass_packets" eq 2
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_ping6:pass_packets" eq 2
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_arp:pass_packets" ge 1
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_ndp:pass_packets" ge 1
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_https:drop_packets" eq 0
expect_delta "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "rule:$rule_ssh:drop_packets" eq 0

phase "undocumented ports are closed"
stats_snapshot "$E2E_WORK/s2.json"
expect_fail "HTTP 8080 over IPv4" http_get "$SRV_IP4" 8080
expect_fail "TCP 3306 over IPv4" tcp_banner "$SRV_IP4" 3306 open-3306
expect_fail "TCP 3306 over IPv6" tcp_banner "$SRV_IP6" 3306 open-3306
expect_fail "UDP 9999 over IPv4" udp_delivered "$SRV_IP4" after-attach-v4
expect_fail "UDP 9999 over IPv6" udp_delivered "$SRV_IP6" after-attach-v6
stats_snapshot "$E2E_WORK/s3.json"
# At least the first SYN of each connection attempt and each datagram.
expect_delta "$E2E_WORK/s2.json" "$E2E_WORK/s3.json" "reason:no_rule:packets" ge 5

phase "exact counts from crafted frames"
wait_quiet
stats_snapshot "$E2E_WORK/s4.json"
send_frames 4 tcp "$CLI_IP4" "$SRV_IP4" 40001 8080 S
send_frames 3 tcp "$CLI_IP6" "$SRV_IP6" 40002 3306 S
send_frames 5 udp "$CLI_IP4" "$SRV_IP4" 40003 9999
send_frames 2 udp "$CLI_IP6" "$SRV_IP6" 40004 9999
# Admitted: datagrams to the trap port (snmptrapd discards the junk).
send_frames 3 udp "$CLI_IP4" "$SRV_IP4" 40005 162
send_frames 1 udp "$CLI_IP6" "$SRV_IP6" 40006 162
# SYN+FIN to an open port: dropped before any rule is consulted.
send_frames 2 tcp "$CLI_IP4" "$SRV_IP4" 40007 443 SF
sleep 0.5
stats_snapshot "$E2E_WORK/s5.json"
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "reason:no_rule:packets" eq 14
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "rule:$rule_trap:pass_packets" eq 4
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "reason:bad_tcp_flags:packets" eq 2
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "rule:$rule_https:pass_packets" eq 0
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "rule:$rule_https:drop_packets" eq 0
expect_delta "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" "reason:peer_not_in_set:packets" eq 0
[[ ! -s $E2E_WORK/udp9999.data ]] || ! grep -q xdpguard-e2e "$E2E_WORK/udp9999.data" ||
  fail "a crafted UDP 9999 datagram reached the listener"

phase "admin SSH narrowed to another address"
# The default policy with admin-hosts narrowed to documentation prefixes that
# the client is not in; everything else unchanged.
narrow_admin_hosts() {  # IN OUT
  awk '
    /^  admin-hosts:/ { in_set = 1 }
    in_set && /^    cidrs:/ { print "    cidrs: [192.0.2.0/24, 2001:db8::/32]"; in_set = 0; done = 1; next }
    { print }
    END { exit !done }
  ' "$1" >"$2" || fail "no admin-hosts cidrs in $1"
}
narrowed="$E2E_WORK/narrowed.yaml"
narrow_admin_hosts "$E2E_SRC/policy/ovoc-single-node.yaml" "$narrowed"
xg_detach
# shellcheck disable=SC2034  # read by rule_for
E2E_POLICY=$narrowed
xg_attach --policy "$narrowed"
rule_ssh=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:22 flags S")
expect_fail "admin SSH 22 from a host outside admin-hosts" tcp_banner "$SRV_IP4" 22 SSH-2.0
expect_ok "HTTPS 443 still open under the narrowed policy" https_get "$SRV_IP4"
wait_quiet
stats_snapshot "$E2E_WORK/s6.json"
send_frames 3 tcp "$CLI_IP4" "$SRV_IP4" 40008 22 S
send_frames 2 tcp "$CLI_IP6" "$SRV_IP6" 40009 22 S
sleep 0.5
stats_snapshot "$E2E_WORK/s7.json"
expect_delta "$E2E_WORK/s6.json" "$E2E_WORK/s7.json" "reason:peer_not_in_set:packets" eq 5
expect_delta "$E2E_WORK/s6.json" "$E2E_WORK/s7.json" "rule:$rule_ssh:drop_packets" eq 5
expect_delta "$E2E_WORK/s6.json" "$E2E_WORK/s7.json" "rule:$rule_ssh:pass_packets" eq 0
expect_delta "$E2E_WORK/s6.json" "$E2E_WORK/s7.json" "reason:no_rule:packets" eq 0

phase "detach"
xg_detach
mode=$(xdp_mode)
[[ $mode == 0 ]] || fail "an XDP program is still attached to $SRV_IF after detach"
expect_ok "TCP 8080 answers again after detach" tcp_banner "$SRV_IP4" 8080 open-8080
