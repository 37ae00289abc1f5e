#!/usr/bin/env bash
# Directions (issue 3) with the embedded default policy on a real interface:
# XDP ingress and TC egress on the server's veth, real peers in the client
# namespace, real clients in the server namespace.
# - the server's own connections work: LDAP 389 and LDAPS 636 (ldapsearch ->
#   slapd), SMTP 25 (swaks -> aiosmtpd), syslog over TCP 514 (logger), NTP 123
#   (chronyd -Q -> chronyd), SNMP get 161 (snmpget -> snmpd), TCP 3389, and
#   the both-ways rows' outbound half (TCP 80, 443) and UDP 925; each leaves
#   a tracked flow, and no reply is refused;
# - peer-initiated rows still work: TCP 80 and 5000 to the server, NTP
#   queries to the server's own NTP server;
# - the server-initiated ports cannot be used inbound: a connection to the
#   server's 389 is refused (no_rule), and "replies" from 389, 123, 161 and
#   925 that belong to no flow are dropped as no_flow on the rule that would
#   have admitted them;
# - egress is enforced: the server cannot open TCP 6667, nor TCP 5000 (a
#   port it only serves) (egress no_rule);
# - a 3000-byte SIP PUBLISH to 5060 arrives whole (fragments follow their
#   first fragment) and is answered; fragments without a first are dropped
#   as fragment_orphan;
# - traps to 162 and keep-alives to 1161 arrive, but nothing leaves from
#   those ports (egress receive_only).
# Counters move by exactly the number of crafted frames or single datagrams.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NETPROBE="$E2E_SRC/tests/e2e/netprobe.py"
probe_srv() { in_srv "$PY" "$NETPROBE" "$@"; }
probe_cli() { in_cli "$PY" "$NETPROBE" "$@"; }

e2e_setup

# ---- peers in the client namespace -------------------------------------------

start_smtp_peer() {  # aiosmtpd prints every message it accepts
  start_peer smtp env PYTHONUNBUFFERED=1 "$PY" -m aiosmtpd -n -l "$CLI_IP4:25" \
    -c aiosmtpd.handlers.Debugging
  wait_listen_peer tcp 25
}
start_syslog_peer() {  # TCP syslog collector: every byte to syslog.data
  start_peer syslog socat -u TCP-LISTEN:514,bind="$CLI_IP4",reuseaddr,fork \
    OPEN:"$E2E_WORK/syslog.data",creat,append
  wait_listen_peer tcp 514
}
start_ntp_peer() {
  peer_config chrony-server.conf.in "$E2E_WORK/chrony-peer.conf" \
    BIND_IP4="$CLI_IP4" PIDFILE="$E2E_WORK/chronyd-peer.pid"
  # -x: never touch the clock (shared by all namespaces); -u root: no
  # privilege drop, the run's files are root's.
  start_peer ntp chronyd -d -x -u root -f "$E2E_WORK/chrony-peer.conf"
  wait_listen_peer udp 123
}
start_banner_peer() {  # NAME PORT: a one-line banner on TCP PORT
  start_peer "$1" socat -U TCP6-LISTEN:"$2",fork,reuseaddr,ipv6only=0 SYSTEM:"echo $1-banner"
  wait_listen_peer tcp "$2"
}

# ---- the server's clients (in the server namespace) --------------------------

send_mail() {  # MARKER: one message through the peer's SMTP server
  in_srv swaks --server "$CLI_IP4" --port 25 --timeout 5 --from ovoc@xdpguard.test \
    --to ops@xdpguard.test --header "Subject: $1" --body "trap forwarded: $1" &&
    wait_until 3 grep -q "$1" "$E2E_WORK/smtp.log"
}
send_syslog() {  # MARKER: one message over TCP syslog
  in_srv logger --tcp -n "$CLI_IP4" -P 514 -t xdpguard-e2e "$1" &&
    wait_until 3 grep -q "$1" "$E2E_WORK/syslog.data"
}
ntp_query() {  # NS SERVER: one NTP measurement from NS, clock left alone
  # Polling every 1/16 s: a measurement in well under a second; exit 1
  # ("No suitable source") when no answer came within -t.
  nsenter --net="/run/netns/$1" chronyd -Q -u root -t 10 \
    "server $2 iburst minpoll -4 maxpoll -4" "pidfile $E2E_WORK/chronyd-query.pid" "cmdport 0"
}
srv_banner() {  # HOST PORT EXPECTED: a TCP connection from the server
  local out
  out=$(in_srv nc -w 2 "$1" "$2" </dev/null 2>&1) || true
  [[ $out == *"$3"* ]]
}
cli_banner() { tcp_banner "$@"; }  # the same, from the peer to the server

# flow_present JSON PROTO REMOTE_PORT: `xdpguard flows --json` lists a live
# flow of the server to the peer's REMOTE_PORT, and the peer replied on it.
flow_present() {
  "$PY" - "$1" "$2" "$3" "$CLI_IP4" "$CLI_IP6" <<'EOF'
import json, sys
flows = json.load(open(sys.argv[1]))
if isinstance(flows, dict):
    flows = flows.get("flows", [])
proto, port, peers = sys.argv[2], int(sys.argv[3]), set(sys.argv[4:])
def proto_of(f):
    p = f.get("protocol", f.get("proto"))
    return {6: "tcp", 17: "udp"}.get(p, str(p))
hits = [f for f in flows if proto_of(f) == proto and int(f["remote_port"]) == port
        and f.get("remote_addr", f.get("remote")) in peers
        and f.get("live", True) and f.get("replied", True)]
sys.exit(0 if hits else "no %s flow to port %d in %d flows" % (proto, port, len(flows)))
EOF
}

phase "peers and servers"
start_ldap_peer
start_smtp_peer
start_syslog_peer
start_ntp_peer
start_snmp_peer
start_banner_peer rdp 3389
start_banner_peer http 80
start_banner_peer https 443
start_banner_peer vq 5000
start_banner_peer irc 6667
start_peer debugrec "$PY" "$NETPROBE" udp-echo 925 "$E2E_WORK/debugrec.data"
wait_listen_peer udp 925
# On the server: a directory on 389 that must stay unreachable from outside,
# services devices open (HTTP 80, voice-quality XML 5000, NTP 123), the SIP
# voice-quality collector on 5060, and receivers on 162 and 1161 that try to
# answer every datagram.
start_banner() {  # NAME PORT: a one-line banner on the server's TCP PORT
  start_server "$1" socat -U TCP6-LISTEN:"$2",fork,reuseaddr,ipv6only=0 SYSTEM:"echo $1-banner"
  wait_listen tcp "$2"
}
start_banner ldap-on-server 389
start_banner http-on-server 80
start_banner vq-on-server 5000
peer_config chrony-server.conf.in "$E2E_WORK/chrony-server.conf" \
  BIND_IP4="$SRV_IP4" PIDFILE="$E2E_WORK/chronyd-server.pid"
start_server ntp-on-server chronyd -d -x -u root -f "$E2E_WORK/chrony-server.conf"
start_server sip-uas "$PY" "$NETPROBE" sip-uas 5060 "$E2E_WORK/sip.data"
start_server trap-echo "$PY" "$NETPROBE" udp-echo 162 "$E2E_WORK/trap.data"
start_server keepalive-echo "$PY" "$NETPROBE" udp-echo 1161 "$E2E_WORK/keepalive.data"
wait_listen udp 123
wait_listen udp 5060
wait_listen udp 162
wait_listen udp 1161

phase "baseline without xdpguard"
# What must fail later works now, so a later failure is the filter.
expect_ok "peer reaches the server's 389 before attach" cli_banner "$SRV_IP4" 389 ldap-on-server-banner
expect_ok "server reaches TCP 6667 before attach" srv_banner "$CLI_IP4" 6667 irc-banner
expect_ok "server reaches TCP 5000 before attach" srv_banner "$CLI_IP4" 5000 vq-banner
expect_ok "a datagram to 162 is echoed from 162 before attach" \
  probe_cli udp-ask "$SRV_IP4" 162 1
expect_ok "a datagram to 1161 is echoed from 1161 before attach" \
  probe_cli udp-ask "$SRV_IP4" 1161 1

phase "attach default policy"
# shellcheck disable=SC2119  # no arguments: the embedded default policy
xg_attach
egress_filters=$(tc -n "$SRV_NS" filter show dev "$SRV_IF" egress 2>/dev/null)
[[ $egress_filters == *bpf* ]] ||
  fail "no TC egress BPF program on $SRV_IF after attach: ${egress_filters:-none}"
stats_snapshot "$E2E_WORK/attached.json"
"$PY" - "$E2E_WORK/attached.json" <<'EOF' || fail "the default policy must attach egress, enforcing"
import json, sys
s = json.load(open(sys.argv[1]))
attached, mode = s.get("egress_attached"), s.get("settings", {}).get("egress")
sys.exit(0 if attached is True and mode == "enforce"
         else "stats: egress_attached=%r, settings.egress=%r" % (attached, mode))
EOF
log "ok: egress attached, enforcing"
rule_ldap=$(rule_for "tcp $CLI_IP4:389 -> $SRV_IP4:40000 flags SA")
rule_ldaps=$(rule_for "tcp $CLI_IP4:636 -> $SRV_IP4:40000 flags SA")
rule_mail=$(rule_for "tcp $CLI_IP4:25 -> $SRV_IP4:40000 flags SA")
rule_syslog=$(rule_for "tcp $CLI_IP4:514 -> $SRV_IP4:40000 flags SA")
rule_ntp=$(rule_for "udp $CLI_IP4:123 -> $SRV_IP4:40000")
rule_snmp=$(rule_for "udp $CLI_IP4:161 -> $SRV_IP4:40000")
rule_rdp=$(rule_for "tcp $CLI_IP4:3389 -> $SRV_IP4:40000 flags SA")
rule_http_out=$(rule_for "tcp $CLI_IP4:80 -> $SRV_IP4:40000 flags SA")
rule_https_out=$(rule_for "tcp $CLI_IP4:443 -> $SRV_IP4:40000 flags SA")
rule_debugrec=$(rule_for "udp $CLI_IP4:925 -> $SRV_IP4:40000")
rule_http_in=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:80 flags S")
rule_vq=$(rule_for "tcp $CLI_IP4:40000 -> $SRV_IP4:5000 flags S")
rule_ntp_in=$(rule_for "udp $CLI_IP4:40000 -> $SRV_IP4:123")
rule_keepalive=$(rule_for "udp $CLI_IP4:40000 -> $SRV_IP4:1161")
rule_sip=$(rule_for "udp $CLI_IP4:5061 -> $SRV_IP4:5060")
rule_trap=$(rule_for "udp $CLI_IP4:40000 -> $SRV_IP4:162")
log "rules: ldap=$rule_ldap ldaps=$rule_ldaps mail=$rule_mail syslog=$rule_syslog" \
  "ntp=$rule_ntp snmp=$rule_snmp rdp=$rule_rdp http-out=$rule_http_out" \
  "https-out=$rule_https_out debugrec=$rule_debugrec http-in=$rule_http_in vq=$rule_vq" \
  "ntp-in=$rule_ntp_in sip=$rule_sip trap=$rule_trap keepalive=$rule_keepalive"

phase "the server's own connections"
stats_snapshot "$E2E_WORK/s0.json"
expect_ok "LDAP 389 over IPv4 (ldapsearch -> slapd)" ldap_root_dse "ldap://$CLI_IP4"
expect_ok "LDAP 389 over IPv6" ldap_root_dse "ldap://[$CLI_IP6]"
expect_ok "LDAPS 636 over IPv4" ldap_root_dse "ldaps://$CLI_IP4"
# No LDAPS over IPv6: Debian's libldap (GnuTLS) sends an IPv6 literal as the
# TLS server name, which the server side refuses ("disallowed SNI").
expect_ok "SMTP 25 (swaks -> aiosmtpd)" send_mail "mail-$$"
expect_ok "syslog over TCP 514 (logger)" send_syslog "syslog-$$"
expect_ok "NTP 123 (chronyd -Q -> chronyd)" ntp_query "$SRV_NS" "$CLI_IP4"
expect_ok "SNMP get 161 (snmpget -> snmpd)" snmp_get
expect_ok "TCP 3389" srv_banner "$CLI_IP4" 3389 rdp-banner
expect_ok "TCP 80 to a device" srv_banner "$CLI_IP4" 80 http-banner
expect_ok "TCP 443 to a device / ShareFile / Azure Blob / license service" \
  srv_banner "$CLI_IP4" 443 https-banner
expect_ok "UDP 925 to the debug recording server, answered" probe_srv udp-ask "$CLI_IP4" 925 1
stats_snapshot "$E2E_WORK/s1.json"
# Each TCP exchange is at least the handshake's SYN-ACK and a FIN in, and
# SYN, ACK and FIN out, all on the rule of the remote port; no reply met a
# missing flow.
checks=()
for r in "$rule_ldap" "$rule_ldaps" "$rule_mail" "$rule_syslog" "$rule_rdp" \
  "$rule_http_out" "$rule_https_out"; do
  checks+=("rule:$r:pass_packets ge 2" "egress_rule:$r:pass_packets ge 3"
    "rule:$r:drop_packets eq 0" "egress_rule:$r:drop_packets eq 0")
done
for r in "$rule_ntp" "$rule_snmp"; do
  checks+=("rule:$r:pass_packets ge 1" "egress_rule:$r:pass_packets ge 1" "rule:$r:drop_packets eq 0")
done
expect_deltas "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" "${checks[@]}" \
  "rule:$rule_debugrec:pass_packets eq 1" "egress_rule:$rule_debugrec:pass_packets eq 1" \
  "reason:no_flow:packets eq 0" "egress_reason:no_rule:packets eq 0"
xg flows --iface "$SRV_IF" --json >"$E2E_WORK/flows.json" 2>>"$E2E_WORK/xdpguard.log" ||
  fail "xdpguard flows --json failed"
for f in tcp:389 tcp:636 tcp:25 tcp:514 udp:123 udp:161 tcp:3389 tcp:80 tcp:443 udp:925; do
  expect_ok "tracked flow to ${f#*:}/${f%%:*}" flow_present "$E2E_WORK/flows.json" "${f%%:*}" "${f#*:}"
done
xg flows --iface "$SRV_IF" >"$E2E_WORK/flows.txt" 2>>"$E2E_WORK/xdpguard.log" ||
  fail "xdpguard flows failed"
grep -q ":389" "$E2E_WORK/flows.txt" || fail "xdpguard flows does not list the LDAP flow"
expect_ok "stats reports flow-table occupancy" \
  test "$(counter "$E2E_WORK/s1.json" flow_table:-:entries)" -ge 10

phase "peer-initiated rows"
stats_snapshot "$E2E_WORK/sp0.json"
expect_ok "a device opens TCP 80 on the server" cli_banner "$SRV_IP4" 80 http-on-server-banner
expect_ok "a media gateway opens TCP 5000 on the server" cli_banner "$SRV_IP4" 5000 vq-on-server-banner
expect_ok "a device syncs from the server's NTP 123" ntp_query "$CLI_NS" "$SRV_IP4"
stats_snapshot "$E2E_WORK/sp1.json"
# A connection in is at least SYN, ACK, FIN; out at least SYN-ACK and FIN.
expect_deltas "$E2E_WORK/sp0.json" "$E2E_WORK/sp1.json" \
  "rule:$rule_http_in:pass_packets ge 3" "egress_rule:$rule_http_in:pass_packets ge 2" \
  "rule:$rule_vq:pass_packets ge 3" "egress_rule:$rule_vq:pass_packets ge 2" \
  "rule:$rule_ntp_in:pass_packets ge 1" "egress_rule:$rule_ntp_in:pass_packets ge 1" \
  "reason:no_rule:packets eq 0" "egress_reason:no_rule:packets eq 0"

phase "server-initiated ports inbound"
expect_fail "peer connects to the server's 389" cli_banner "$SRV_IP4" 389 ldap-on-server-banner
wait_quiet
stats_snapshot "$E2E_WORK/s2.json"
# Ports 20000-20999 are below the ephemeral range: no flow of the server's
# own can match them by chance.
send_frame_batch \
  "3 tcp $CLI_IP4 $SRV_IP4 40389 389 S" \
  "2 tcp $CLI_IP4 $SRV_IP4 389 20389 SA" \
  "1 tcp $CLI_IP6 $SRV_IP6 389 20390 A" \
  "4 udp $CLI_IP4 $SRV_IP4 123 20123" \
  "2 udp $CLI_IP6 $SRV_IP6 123 20124" \
  "3 udp $CLI_IP4 $SRV_IP4 161 20161" \
  "1 udp $CLI_IP6 $SRV_IP6 161 20162" \
  "2 udp $CLI_IP4 $SRV_IP4 925 20925"
sleep 0.5
stats_snapshot "$E2E_WORK/s3.json"
# The SYNs to 389 match no rule (a bare SYN is never a reply); the rest are
# "replies" from 389, 123, 161 and 925 without a flow.
expect_deltas "$E2E_WORK/s2.json" "$E2E_WORK/s3.json" \
  "reason:no_rule:packets eq 3" "reason:no_flow:packets eq 15" \
  "rule:$rule_ldap:drop_packets eq 3" "rule:$rule_ntp:drop_packets eq 6" \
  "rule:$rule_snmp:drop_packets eq 4" "rule:$rule_debugrec:drop_packets eq 2" \
  "rule:$rule_ldap:pass_packets eq 0" "rule:$rule_ntp:pass_packets eq 0" \
  "rule:$rule_snmp:pass_packets eq 0" "rule:$rule_debugrec:pass_packets eq 0"

phase "egress enforced: remote ports the policy does not open"
expect_fail "server connects to TCP 6667 (nc)" srv_banner "$CLI_IP4" 6667 irc-banner
wait_quiet
stats_snapshot "$E2E_WORK/s4.json"
# A 0.5 s connect sends one SYN (the first retransmission is due at 1 s).
expect_fail "server connects to TCP 6667 over IPv4" probe_srv connect "$CLI_IP4" 6667 0.5
expect_fail "server connects to TCP 6667 over IPv4, again" probe_srv connect "$CLI_IP4" 6667 0.5
expect_fail "server connects to TCP 6667 over IPv6" probe_srv connect "$CLI_IP6" 6667 0.5
# 5000 is a port the server serves (vq-xml-5000), not one it may open.
expect_fail "server connects to TCP 5000" probe_srv connect "$CLI_IP4" 5000 0.5
stats_snapshot "$E2E_WORK/s5.json"
expect_deltas "$E2E_WORK/s4.json" "$E2E_WORK/s5.json" \
  "egress_reason:no_rule:packets eq 4" "reason:no_rule:packets eq 0"

phase "SIP PUBLISH over the MTU, and orphan fragments"
wait_quiet
stats_snapshot "$E2E_WORK/s6.json"
expect_ok "3000-byte PUBLISH to 5060 over IPv4 answered" probe_cli sip-publish "$SRV_IP4" 5060 3000
expect_ok "3000-byte PUBLISH to 5060 over IPv6 answered" probe_cli sip-publish "$SRV_IP6" 5060 3000
[[ $(grep -c "^len=3000 .*first=PUBLISH " "$E2E_WORK/sip.data") == 2 ]] ||
  fail "the collector did not receive both PUBLISH datagrams whole: $(cat "$E2E_WORK/sip.data")"
log "ok: the collector received 2 PUBLISH datagrams of 3000 bytes"
stats_snapshot "$E2E_WORK/s7.json"
# 3008 bytes of UDP: 3 IPv4 fragments (1480 per) and 3 IPv6 fragments (1448
# per); each 200 OK is one datagram out.
expect_deltas "$E2E_WORK/s6.json" "$E2E_WORK/s7.json" \
  "rule:$rule_sip:pass_packets eq 6" "egress_rule:$rule_sip:pass_packets eq 2" \
  "reason:fragment_orphan:packets eq 0"
send_orphan_fragments 3 "$CLI_IP4" "$SRV_IP4" 2 "$CLI_IP6" "$SRV_IP6"
sleep 0.5
stats_snapshot "$E2E_WORK/s8.json"
expect_deltas "$E2E_WORK/s7.json" "$E2E_WORK/s8.json" \
  "reason:fragment_orphan:packets eq 5" "rule:$rule_sip:pass_packets eq 0"

phase "traps and keep-alives are receive-only"
wait_quiet
: >"$E2E_WORK/trap.data"
: >"$E2E_WORK/keepalive.data"
stats_snapshot "$E2E_WORK/s9.json"
# A real v2c trap (snmptrap does not wait for an answer) and a probe that
# waits for the echo: both arrive, neither answer leaves.
expect_ok "SNMP trap to 162 sent" in_cli snmptrap -m '' -v 2c -c public "$SRV_IP4" '' \
  1.3.6.1.4.1.8072.2.3.0.1 1.3.6.1.4.1.8072.2.3.2.1 s "trap-$$"
expect_fail "an answer from the server's 162" probe_cli udp-ask "$SRV_IP4" 162 1
[[ $(grep -c "^len=" "$E2E_WORK/trap.data") == 2 ]] ||
  fail "the trap receiver did not get both datagrams: $(cat "$E2E_WORK/trap.data")"
log "ok: the trap receiver got both datagrams and answered each from 162"
expect_fail "an answer from the server's 1161" probe_cli udp-ask "$SRV_IP4" 1161 1
grep -q "^len=" "$E2E_WORK/keepalive.data" || fail "the keep-alive did not arrive on 1161"
stats_snapshot "$E2E_WORK/s10.json"
expect_deltas "$E2E_WORK/s9.json" "$E2E_WORK/s10.json" \
  "rule:$rule_trap:pass_packets eq 2" "rule:$rule_keepalive:pass_packets eq 1" \
  "egress_reason:receive_only:packets eq 3" \
  "egress_rule:$rule_trap:drop_packets eq 2" "egress_rule:$rule_trap:pass_packets eq 0" \
  "egress_rule:$rule_keepalive:drop_packets eq 1" "egress_rule:$rule_keepalive:pass_packets eq 0"

phase "detach"
xg_detach
egress_filters=$(tc -n "$SRV_NS" filter show dev "$SRV_IF" egress 2>/dev/null)
[[ $egress_filters != *bpf* ]] || fail "a TC egress program is still on $SRV_IF after detach"
expect_ok "server reaches TCP 6667 again after detach" srv_banner "$CLI_IP4" 6667 irc-banner
