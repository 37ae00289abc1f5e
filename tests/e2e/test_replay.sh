#!/usr/bin/env bash
# `xdpguard replay` (issue 13) on a capture of real traffic: tcpdump records
# the lab's link from the client's end while the embedded default policy is
# attached and real clients and peers work.
# - traffic: HTTPS (curl, IPv4 and IPv6; openssl s_client), SNMP traps
#   (snmptrap), a SIP call (sipp), admin SSH, the host asking LDAP (ldapsearch
#   -> slapd) and polling SNMP (snmpget -> snmpd), blocked connections to
#   undocumented listeners (8080, 3306) and a small SYN scan (nmap);
# - the replay of that capture (the host's frames told by its MAC) counts,
#   rule by rule and drop reason by drop reason, both directions, packets and
#   bytes, exactly what the live datapath's counters grew by meanwhile
#   (`xdpguard stats --json`), and the capture has traffic on at least 8 rules;
# - `replay --datapath` runs the same frames through the BPF programs and
#   reports zero disagreements;
# - and it can disagree: a capture where an SNMP answer comes 200 s after the
#   poll (the UDP flow expired by the capture's clock, not by the kernel's)
#   is reported as one disagreement, exit 1.
# The capture is taken on the client's end (lib.sh start_capture says why).
# Frames the TC program drops would be missing from any capture; the live
# egress drop counters are compared too, so any such drop fails the test.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v tcpdump >/dev/null || fail "tcpdump is not installed (scripts/install-deps.sh)"
command -v nmap >/dev/null || fail "nmap is not installed (scripts/install-deps.sh)"
e2e_setup

phase "servers and peers"
start_https
start_fake_ssh
start_snmptrapd
start_closed_listeners
start_ldap_peer
start_snmp_peer

phase "attach"
xg_attach
wait_quiet

phase "capture"
CAPTURE="$E2E_WORK/lab.pcap"
start_capture "$CAPTURE"
BEFORE="$E2E_WORK/before.json"
stats_snapshot "$BEFORE"

expect_ok "HTTPS over IPv4 (curl)" https_get "$SRV_IP4"
expect_ok "HTTPS over IPv6 (curl)" https_get "[$SRV_IP6]"
s_client() { echo | in_cli timeout 5 openssl s_client -connect "$SRV_IP4:443" -brief; }
expect_ok "HTTPS (openssl s_client)" s_client
expect_ok "SNMP trap" send_trap "$SRV_IP4" "replay-trap"
expect_ok "SIP call" sip_call replay
expect_ok "admin SSH" tcp_banner "$SRV_IP4" 22 SSH-2.0-e2e
expect_ok "the host asks LDAP" ldap_root_dse "ldap://$CLI_IP4"
expect_ok "the host polls SNMP" snmp_get
expect_fail "TCP 8080 (undocumented)" tcp_banner "$SRV_IP4" 8080 open-8080
expect_fail "TCP 3306 (undocumented)" tcp_banner "$SRV_IP4" 3306 open-3306
in_cli nmap -n -Pn -sS --max-retries 0 -p 20-25,80,443,3000-3010,5000-5001,8080 "$SRV_IP4" \
  >"$E2E_WORK/nmap.log" 2>&1 || fail "nmap failed: $(tail -3 "$E2E_WORK/nmap.log")"
log "ok: nmap SYN scan of 22 ports"

wait_quiet
AFTER="$E2E_WORK/after.json"
stats_snapshot "$AFTER"
stop_capture

phase "replay equals the live counters"
REPLAY="$E2E_WORK/replay.json"
replay_args=(replay --host "$SRV_IP4" --host "$SRV_IP6" --host-mac "$SRV_MAC" "$CAPTURE")
start=$(date +%s%N)
"$XDPGUARD" "${replay_args[@]}" --json >"$REPLAY" 2>>"$E2E_WORK/xdpguard.log" ||
  fail "xdpguard replay failed"
log "replay: $(($(date +%s%N) - start)) ns wall for the whole command"
"$XDPGUARD" "${replay_args[@]}" >"$E2E_WORK/replay.txt" 2>&1 || fail "replay (text) failed"
expect_replay_matches "$BEFORE" "$AFTER" "$REPLAY" 8

phase "the same frames through the programs"
"$XDPGUARD" "${replay_args[@]}" --datapath >"$E2E_WORK/datapath.txt" 2>&1 ||
  fail "replay --datapath reports disagreements: $(tail -25 "$E2E_WORK/datapath.txt")"
grep -q "^datapath (BPF_PROG_TEST_RUN): [1-9][0-9]* frames, 0 decided otherwise than the reference, 0 counters differ$" \
  "$E2E_WORK/datapath.txt" || fail "unexpected --datapath report: $(tail -5 "$E2E_WORK/datapath.txt")"
log "ok: $(grep '^datapath' "$E2E_WORK/datapath.txt")"

phase "a disagreement is reported"
# An SNMP poll answered 200 s later by the capture's clock: expired for the
# reference (udp timeout 60 s), still live for the programs.
"$PY" - "$E2E_WORK/late.pcap" "$SRV_IP4" "$SRV_MAC" "$CLI_IP4" "$CLI_MAC" <<'EOF'
import sys, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, UDP, wrpcap
path, host, hmac, peer, pmac = sys.argv[1:6]
poll = Ether(src=hmac, dst=pmac) / IP(src=host, dst=peer) / UDP(sport=40404, dport=161)
answer = Ether(src=pmac, dst=hmac) / IP(src=peer, dst=host) / UDP(sport=161, dport=40404)
poll.time, answer.time = 1_700_000_000, 1_700_000_200
wrpcap(path, [poll, answer])
EOF
rc=0
"$XDPGUARD" replay --host-mac "$SRV_MAC" --datapath "$E2E_WORK/late.pcap" >"$E2E_WORK/late.txt" 2>&1 || rc=$?
((rc == 1)) || fail "a disagreement exited $rc, not 1: $(cat "$E2E_WORK/late.txt")"
grep -q "^datapath (BPF_PROG_TEST_RUN): 2 frames, 1 decided otherwise than the reference" \
  "$E2E_WORK/late.txt" || fail "the late answer is not reported: $(tail -8 "$E2E_WORK/late.txt")"
grep -q "frame 2 ingress udp $SRV_IP4:40404 <-> $CLI_IP4:161: reference drop no_flow (device-snmp-161), datapath passed" \
  "$E2E_WORK/late.txt" || fail "the disagreement is not named: $(tail -8 "$E2E_WORK/late.txt")"
log "ok: the late SNMP answer is one disagreement (exit 1)"
