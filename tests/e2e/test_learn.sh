#!/usr/bin/env bash
# Learning the peer sets (issue 12, docs/learn.md) on a real interface: the
# deployment procedure run end to end with the embedded default policy.
# - attach in audit mode with --learn; real clients on nine addresses of the
#   client namespace, IPv4 and IPv6, in two subnets each, use the documented
#   services: HTTPS (curl), SIP (sipp), admin SSH, SNMP traps (snmptrap), and
#   the host polls a device (snmpget) and asks LDAP (ldapsearch -> slapd);
# - a spoofed-source burst (scapy) hits 443 from 50 other addresses (IPv4 and
#   IPv6) and 162 from 30 more;
# - `xdpguard learn --empty-unseen` proposes each open set holding exactly its
#   real, confirmed peers, aggregated by the default rule (2 addresses of a
#   /24 or /64 make the prefix), none of the spoofed sources, and not the
#   device that only sent traps (a peer that cannot confirm: reported, not
#   proposed); the replay preview admits every proposed sighting;
# - `reload --confirm` of the proposal, then `confirm`: every real client
#   still works, while a new address and a spoofed one are dropped as
#   peer_not_in_set (counted exactly, crafted frames) and the trap-only
#   device's traps no longer arrive, as the report said.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup

# ---- the clients' addresses ----------------------------------------------------
N=$E2E_NET
HTTPS4_A="$CLI_IP4"            # also the LDAP server the host asks
SIP4_A="10.200.$N.3"           # HTTPS and SIP: a phone
ADMIN4_A="10.200.$N.4"         # admin SSH
HTTPS4_B="10.201.$N.5"
DEVICE4_B="10.201.$N.6"        # SNMP traps, polled by the host
TRAPS_ONLY4_B="10.201.$N.7"    # SNMP traps only: can never confirm
NEW4_B="10.201.$N.9"           # appears only after the proposal is in force
HTTPS6_A="$CLI_IP6"
HTTPS6_A3="fd00:200:$N::3"
HTTPS6_B="fd00:201:$N::5"

phase "addresses"
for a in "$SIP4_A" "$ADMIN4_A"; do ip -n "$CLI_NS" addr add "$a/24" dev "$CLI_IF"; done
for a in "$HTTPS4_B" "$DEVICE4_B" "$TRAPS_ONLY4_B" "$NEW4_B"; do
  ip -n "$CLI_NS" addr add "$a/24" dev "$CLI_IF"
done
ip -n "$CLI_NS" addr add "$HTTPS6_A3/64" dev "$CLI_IF" nodad
ip -n "$CLI_NS" addr add "$HTTPS6_B/64" dev "$CLI_IF" nodad
# The second subnets are on the same link: the server reaches them directly.
ip -n "$SRV_NS" route add "10.201.$N.0/24" dev "$SRV_IF"
ip -n "$SRV_NS" route add "fd00:201:$N::/64" dev "$SRV_IF"

phase "servers"
start_https
start_fake_ssh
start_snmptrapd
start_ldap_peer
start_snmp_peer "$DEVICE4_B"

# Everything the real clients do; run while learning and again under the proposal.
real_clients_work() {
  local a
  for a in "$HTTPS4_A" "$SIP4_A" "$HTTPS4_B"; do
    expect_ok "HTTPS from $a" https_get "$SRV_IP4" "$a"
  done
  for a in "$HTTPS6_A" "$HTTPS6_A3" "$HTTPS6_B"; do
    expect_ok "HTTPS from $a" https_get "[$SRV_IP6]" "$a"
  done
  expect_ok "SIP call from $SIP4_A" sip_call "$1" "$SIP4_A"
  expect_ok "admin SSH from $ADMIN4_A" tcp_banner "$SRV_IP4" 22 SSH-2.0-e2e "$ADMIN4_A"
  expect_ok "trap from the device $DEVICE4_B" send_trap "$SRV_IP4" "device-$1" "$DEVICE4_B"
  expect_ok "the host polls the device (snmpget $DEVICE4_B)" snmp_get "$DEVICE4_B"
  expect_ok "the host asks LDAP (ldapsearch -> $CLI_IP4)" ldap_root_dse "ldap://$CLI_IP4"
}

phase "learn in audit mode"
xg_attach --audit --learn
real_clients_work learning
expect_ok "trap from the trap-only device $TRAPS_ONLY4_B" \
  send_trap "$SRV_IP4" "traps-only-learning" "$TRAPS_ONLY4_B"

# 3 SYNs from each of 40 IPv4 and 10 IPv6 sources to 443, 2 datagrams from
# each of 30 sources to 162: one scapy run.
spoofed=()
for i in $(seq 1 40); do spoofed+=("3 tcp 198.51.100.$i $SRV_IP4 40000 443 S"); done
for i in $(seq 1 10); do spoofed+=("3 tcp 2001:db8:66::$i $SRV_IP6 40000 443 S"); done
for i in $(seq 1 30); do spoofed+=("2 udp 203.0.113.$i $SRV_IP4 40000 162"); done
send_frame_batch "${spoofed[@]}" || fail "the spoofed burst could not be sent"
log "spoofed burst sent: 50 sources to 443 (150 SYNs), 30 sources to 162 (60 datagrams)"

phase "propose"
PROPOSAL="$E2E_WORK/proposal.yaml"
xg learn --iface "$SRV_IF" --empty-unseen --out "$PROPOSAL" >"$E2E_WORK/learn.log" 2>&1 ||
  fail "xdpguard learn failed or its preview refused a proposed peer: $(cat "$E2E_WORK/learn.log")"
log "learn report: $(wc -l <"$E2E_WORK/learn.log") lines (learn.log); proposal: $PROPOSAL"

# proposed_cidrs SET: the CIDRs the proposal lists for SET, sorted.
proposed_cidrs() {
  awk -v head="  $1:" '$0 == head { on = 1; next }
    on && /^  [^ #-]/ { exit }
    on && /^ *- "/ { gsub(/^ *- "|".*$/, ""); print }' "$PROPOSAL" | sort
}
expect_set() {  # SET CIDR...: the proposal lists exactly these for SET
  local set=$1 want got
  shift
  want=$(printf '%s\n' "$@" | sed '/^$/d' | sort)
  got=$(proposed_cidrs "$set")
  [[ $got == "$want" ]] ||
    fail "set $set: proposed [$(echo $got)], expected [$(echo $want)]"$'\n'"$(cat "$E2E_WORK/learn.log")"
  log "ok: set $set proposes [$(echo $got)]"
}
expect_set ovoc-clients "10.200.$N.0/24" "$HTTPS4_B/32" "fd00:200:$N::/64" "$HTTPS6_B/128"
expect_set admin-hosts "$ADMIN4_A/32"
expect_set managed-devices "$DEVICE4_B/32"
expect_set ldap-servers "$CLI_IP4/32"
expect_set endpoints "$SIP4_A/32"  # confirmed by its HTTPS: confirmation is the address's
for set in teams sharefile azure-blob floating-license-service mail-servers syslog-servers \
  debug-recording-servers rdp-devices ntp-servers dns-resolvers; do
  expect_set "$set"
done
grep -Eq '198\.51\.100\.|2001:db8:66:|203\.0\.113\.' <(grep -v '^ *#' "$PROPOSAL") &&
  fail "a spoofed source is in the proposal"
log "ok: no spoofed source in the proposal"
grep -q "cidrs: \[\]  # xdpguard learn: no rule of this set saw a peer" "$PROPOSAL" ||
  fail "the emptied sets carry no comment saying why"

# The report: per rule, peers seen and confirmed; what was left out and why.
report_row() {  # RULE: "peers confirmed" from the report's table
  awk -v r="$1" '$1 == r { print $3, $4; exit }' "$E2E_WORK/learn.log"
}
[[ $(report_row nbif-clients-https) == "56 6" ]] ||
  fail "nbif-clients-https: expected 56 peers seen (6 real + 50 spoofed), 6 confirmed; report: $(report_row nbif-clients-https)"
grep -q "^  not proposed, never confirmed: .* and 40 more" "$E2E_WORK/learn.log" ||
  fail "the report does not list the 50 unconfirmed sources of 443"
grep -q "^  not proposed, seen only where a peer cannot confirm .*$TRAPS_ONLY4_B" "$E2E_WORK/learn.log" ||
  fail "the report does not name the trap-only device as a peer that cannot confirm"
grep -Eq "^preview \(reference classifier, proposed policy\): [0-9]+ sightings of proposed peers replayed, ([0-9]+) admitted" \
  "$E2E_WORK/learn.log" || fail "no preview line in the report"
grep -q "REFUSED" "$E2E_WORK/learn.log" && fail "the preview refused a proposed peer"
log "ok: report: $(grep '^preview' "$E2E_WORK/learn.log")"
xg check --policy "$PROPOSAL" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "the proposal does not pass check"

phase "reload the proposal"
xg reload --iface "$SRV_IF" --policy "$PROPOSAL" --confirm 120 >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload --confirm of the proposal failed"
real_clients_work enforcing
xg confirm --iface "$SRV_IF" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "confirm failed"
expect_ok "HTTPS from $HTTPS4_A after confirm" https_get "$SRV_IP4" "$HTTPS4_A"
expect_fail "HTTPS from the new address $NEW4_B" https_get "$SRV_IP4" "$NEW4_B"
expect_fail "trap from the trap-only device $TRAPS_ONLY4_B (not proposed)" \
  send_trap "$SRV_IP4" "traps-only-enforcing" "$TRAPS_ONLY4_B"

wait_quiet
stats_snapshot "$E2E_WORK/before.json"
send_frame_batch "3 tcp $NEW4_B $SRV_IP4 40001 443 S" "2 tcp 198.51.100.7 $SRV_IP4 40001 443 S" \
  "4 udp 203.0.113.9 $SRV_IP4 40001 162"
stats_snapshot "$E2E_WORK/after.json"
expect_deltas "$E2E_WORK/before.json" "$E2E_WORK/after.json" \
  "reason:peer_not_in_set:packets eq 9" \
  "rule:nbif-clients-https:pass_packets eq 0" \
  "rule:device-snmp-traps-162:pass_packets eq 0"
