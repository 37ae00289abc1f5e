#!/usr/bin/env bash
# The paths of the datapath that every kernel of the matrix must prove with
# real traffic (tests/vm/matrix.sh runs this on 5.10, 6.1 and 6.12; ctest
# on the host's kernel):
# - the default policy attaches natively, and stats name the datapath clock
#   this kernel has (coarse from 5.11 on, precise before);
# - HTTPS 443 passes over IPv4 and IPv6 and counts on its rule; TCP 8080 and
#   UDP 9999 are dropped and counted no_rule;
# - egress flow tracking: the server's own connection to a peer's LDAP port
#   389 works (egress records the flow, ingress admits its replies); a
#   peer's SYN from port 389 opens nothing, and segments from 389 that no
#   flow explains are dropped no_flow, exactly as many as were sent;
# - drop events: `events --json` delivers the dropped 8080 SYN with its reason;
# - reload from a policy file swaps the programs, the counters carry over
#   and traffic passes and drops as before.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup

phase "servers"
start_https
start_closed_listeners
start_peer ldap socat -U TCP6-LISTEN:389,fork,reuseaddr,ipv6only=0 SYSTEM:'echo ldap-peer'
wait_listen_peer tcp 389
expect_ok "HTTP 8080 answers before attach" http_get "$SRV_IP4" 8080

phase "attach"
xg_attach
[[ $(xdp_mode) == 1 ]] || fail "expected a native XDP program on $SRV_IF"
IFS=. read -r major minor _ <<<"$(uname -r)"
want_clock=precise
((major > 5 || (major == 5 && minor >= 11))) && want_clock=coarse
xg stats --iface "$SRV_IF" >"$E2E_WORK/stats.txt" || fail "stats failed"
grep -q "clock $want_clock" "$E2E_WORK/stats.txt" ||
  fail "kernel $(uname -r): expected the $want_clock clock: $(grep clock "$E2E_WORK/stats.txt")"
log "ok: $(uname -r) uses the $want_clock clock"
rule_https=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:443 flags S")
rule_ldap=$(rule_for "tcp $CLI_IP4:389 -> $SRV_IP4:40000 flags SA")

phase "pass, drop, count"
stats_snapshot "$E2E_WORK/s0.json"
expect_ok "HTTPS 443 over IPv4" https_get "$SRV_IP4"
expect_ok "HTTPS 443 over IPv6" https_get "[$SRV_IP6]"
expect_fail "HTTP 8080 over IPv4" http_get "$SRV_IP4" 8080
expect_fail "UDP 9999 over IPv4" udp_delivered "$SRV_IP4" kernel-paths
stats_snapshot "$E2E_WORK/s1.json"
expect_deltas "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" \
  "rule:$rule_https:pass_packets ge 6" "rule:$rule_https:drop_packets eq 0" \
  "reason:no_rule:packets ge 2"

phase "egress flow tracking"
server_to_ldap() { in_srv nc -w 2 "$1" 389 </dev/null 2>&1 | grep -q ldap-peer; }
# From source port 389 to the undocumented 8080: only a reply of a flow the
# server opened could come from there.
peer_from_389() { in_cli nc -p 389 -w 2 "$SRV_IP4" 8080 </dev/null 2>&1 | grep -q open-8080; }
expect_ok "the server's own LDAP connection (IPv4)" server_to_ldap "$CLI_IP4"
expect_ok "the server's own LDAP connection (IPv6)" server_to_ldap "$CLI_IP6"
expect_fail "a peer's connection from port 389 to 8080" peer_from_389
# "Replies" from 389 that no flow of the server's explains.
send_frames 3 tcp "$CLI_IP4" "$SRV_IP4" 389 40000 A
stats_snapshot "$E2E_WORK/s2.json"
expect_deltas "$E2E_WORK/s1.json" "$E2E_WORK/s2.json" \
  "rule:$rule_ldap:pass_packets ge 4" "reason:no_flow:packets eq 3" \
  "egress_rule:$rule_ldap:pass_packets ge 4"

phase "drop events"
xg events --iface "$SRV_IF" --json --count 1000 --timeout 2 >"$E2E_WORK/events.json" 2>&1 || true
grep '"reason":"no_rule"' "$E2E_WORK/events.json" | grep -q '"dport":8080' ||
  fail "no no_rule event for TCP 8080: $(head -c 600 "$E2E_WORK/events.json")"
log "ok: events report the dropped 8080 SYN"

phase "reload"
cp "$E2E_SRC/policy/ovoc-single-node.yaml" "$E2E_WORK/policy.yaml"
xg reload --iface "$SRV_IF" --policy "$E2E_WORK/policy.yaml" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload failed: $(tail -3 "$E2E_WORK/xdpguard.log")"
stats_snapshot "$E2E_WORK/s3.json"
expect_deltas "$E2E_WORK/s2.json" "$E2E_WORK/s3.json" \
  "rule:$rule_https:pass_packets eq 0" "reason:no_rule:packets eq 0"
expect_ok "HTTPS 443 after reload" https_get "$SRV_IP4"
expect_fail "HTTP 8080 after reload" http_get "$SRV_IP4" 8080
stats_snapshot "$E2E_WORK/s4.json"
expect_deltas "$E2E_WORK/s3.json" "$E2E_WORK/s4.json" \
  "rule:$rule_https:pass_packets ge 3" "reason:no_rule:packets ge 1"

phase "detach"
xg_detach
expect_ok "HTTP 8080 answers after detach" http_get "$SRV_IP4" 8080
phase "done"
