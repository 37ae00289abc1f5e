#!/usr/bin/env bash
# Telemetry (issue 4) on the veth lab, with `xdpguard run` in the server
# namespace serving metrics on its loopback and logging drop events as JSON:
# - /metrics (and the textfile) follow the traffic sent: crafted frames
#   allowed by a rule, dropped by a rule whose peer set excludes the client,
#   and dropped for want of a rule move exactly the per-rule packet/byte
#   counters and the per-reason drop counters by what was sent;
# - each of those drops (fewer than the burst) comes out as one JSON event
#   line with the packet's addresses, ports, flags, reason and rule;
# - a flood of drops gives rate-limited events: emitted <= CPUs x (burst +
#   rate x seconds), suppressed == sent - emitted, every emitted event logged
#   (events_received_total), and the suppressed counts the events carry;
# - a SIGHUP reload counts in xdpguard_reloads_total;
# - settings.events {rate: 0} applied by a reload: drops emit no event, count as suppressed;
# - `stats --drops` names the flooded port and the client as top; `stats
#   --watch` redraws a per-rule table; a non-loopback --metrics is refused;
# - `promtool check metrics` passes the endpoint's and the textfile's output;
#   xdpguard_policy_info carries the hash `stats` shows; map entries/capacity;
# - with --journal, drop events reach a journald native-protocol socket (one
#   bound by the test) as structured fields, and no longer stderr.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FLOOD=${TELEMETRY_FLOOD:-3000}
PORT=9740
RATE=10 BURST=20  # the datapath defaults (kernel::DatapathOptions)

e2e_setup
export XDPGUARD_STATE_DIR="$E2E_WORK/state"

POLICY="$E2E_WORK/telemetry.yaml"
cat >"$POLICY" <<YAML
version: 1
name: telemetry
peer_sets:
  anywhere: {cidrs: ["0.0.0.0/0", "::/0"]}
  far-away: {cidrs: [192.0.2.0/24]}
rules:
  - {id: sip-5060, section: t, row: "SIP | UDP | 5060", protocol: udp, local_port: 5060, peers: anywhere, initiator: remote, flow: bidirectional, secured: false, purpose: stream}
  - {id: alt-8443, section: t, row: "Alt HTTPS | TCP | 8443", protocol: tcp, local_port: 8443, peers: far-away, initiator: remote, flow: bidirectional, secured: true, purpose: web}
host_essentials:
  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: anywhere, initiator: remote, flow: bidirectional, purpose: admin}
  - {id: arp, protocol: ethertype, ethertypes: [0x0806], purpose: arp}
  - {id: ndp, protocol: icmpv6, icmp_types: [133, 134, 135, 136], peers: anywhere, purpose: ndp}
YAML

phase "refusals"
if xg run --iface "$SRV_IF" --policy "$POLICY" --metrics 0.0.0.0:$PORT >"$E2E_WORK/remote.log" 2>&1; then
  fail "run accepted a non-loopback --metrics without --metrics-allow-remote"
fi
grep -q -- "--metrics-allow-remote" "$E2E_WORK/remote.log" || fail "no hint at --metrics-allow-remote"
[[ ! -e $E2E_PIN_DIR ]] || fail "a refused run attached anyway"
log "ok: non-loopback metrics address refused before attaching"

phase "daemon"
E2E_ATTACHED=1
start_server daemon "$XDPGUARD" run --iface "$SRV_IF" --policy "$POLICY" --mode native \
  --metrics 127.0.0.1:$PORT --metrics-textfile "$E2E_WORK/xdpguard.prom" --metrics-interval 1 \
  --log-format json
DAEMON_PID=${E2E_PIDS[-1]}
wait_until 10 grep -q '"msg":"[^"]*attached' "$E2E_WORK/daemon.log" || fail "daemon did not attach"
scrape() { in_srv curl -sf --max-time 5 "http://127.0.0.1:$PORT/metrics" >"$1"; }
wait_until 10 scrape "$E2E_WORK/m.first" || fail "no metrics on 127.0.0.1:$PORT"
grep -q '^# TYPE xdpguard_rule_packets_total counter$' "$E2E_WORK/m.first" || fail "no rule counters"
# Every daemon log line is one JSON object.
"$PY" -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' \
  "$E2E_WORK/daemon.log" || fail "a daemon log line is not JSON"
code=$(in_srv curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/nope")
[[ $code == 404 ]] || fail "GET /nope answered $code, not 404"

# metric FILE 'name{labels}': one sample's value (0 if absent from the file).
metric() {
  "$PY" - "$1" "$2" <<'PY'
import sys
want = sys.argv[2]
for line in open(sys.argv[1]):
    if line.startswith("#"): continue
    key, _, value = line.rstrip("\n").rpartition(" ")
    if key == want:
        print(value); sys.exit(0)
sys.exit("no sample %s in %s" % (want, sys.argv[1]))
PY
}
# expect_metric BEFORE AFTER 'name{labels}' N: the sample grew by exactly N
# (BEFORE/AFTER: scrapes in the work directory).
expect_metric() {
  local a b
  a=$(metric "$E2E_WORK/$1" "$3") || fail "$3 missing before"
  b=$(metric "$E2E_WORK/$2" "$3") || fail "$3 missing after"
  (( b - a == $4 )) || fail "$3 grew by $((b - a)), expected $4"
  log "ok: $3 +$4"
}
L() { printf '{interface="%s",%s}' "$SRV_IF" "$1"; }

phase "metrics follow the traffic"
wait_quiet
scrape "$E2E_WORK/m0" || fail "scrape failed"
send_frame_batch "30 udp $CLI_IP4 $SRV_IP4 40000 5060" \
  "20 tcp $CLI_IP4 $SRV_IP4 40001 8443 S" \
  "15 udp $CLI_IP4 $SRV_IP4 40002 9999"
sleep 0.5
scrape "$E2E_WORK/m1" || fail "scrape failed"
UDP_FRAME=54  # Ether 14 + IPv4 20 + UDP 8 + "xdpguard-e2e" 12
TCP_FRAME=54  # Ether 14 + IPv4 20 + TCP 20
expect_metric m0 m1 "xdpguard_rule_packets_total$(L 'rule="sip-5060",direction="ingress",verdict="pass"')" 30
expect_metric m0 m1 "xdpguard_rule_bytes_total$(L 'rule="sip-5060",direction="ingress",verdict="pass"')" $((30 * UDP_FRAME))
expect_metric m0 m1 "xdpguard_rule_packets_total$(L 'rule="alt-8443",direction="ingress",verdict="drop"')" 20
expect_metric m0 m1 "xdpguard_rule_bytes_total$(L 'rule="alt-8443",direction="ingress",verdict="drop"')" $((20 * TCP_FRAME))
expect_metric m0 m1 "xdpguard_drops_total$(L 'reason="peer_not_in_set",direction="ingress"')" 20
expect_metric m0 m1 "xdpguard_drops_total$(L 'reason="no_rule",direction="ingress"')" 15
expect_metric m0 m1 "xdpguard_drop_bytes_total$(L 'reason="no_rule",direction="ingress"')" $((15 * UDP_FRAME))
# Fewer drops than the burst: every one is an event, none suppressed.
expect_metric m0 m1 "xdpguard_events_emitted_total$(L 'reason="peer_not_in_set",direction="ingress"')" 20
expect_metric m0 m1 "xdpguard_events_emitted_total$(L 'reason="no_rule",direction="ingress"')" 15
expect_metric m0 m1 "xdpguard_events_suppressed_total$(L 'reason="no_rule",direction="ingress"')" 0
cap=$(metric "$E2E_WORK/m1" "xdpguard_flow_table_capacity{interface=\"$SRV_IF\"}")
# flow_table_size (65536 by default) entries in each family's table.
((cap == 2 * 65536)) || fail "flow table capacity $cap"
[[ $(metric "$E2E_WORK/m1" "xdpguard_interface_up{interface=\"$SRV_IF\"}") == 1 ]] || fail "interface not up"

phase "promtool, policy identity, map pressure"
# The agent's real output, the endpoint's and the textfile's, lint-clean.
promtool check metrics <"$E2E_WORK/m1" || fail "promtool check metrics: the endpoint's output"
wait_until 5 test -s "$E2E_WORK/xdpguard.prom" || fail "no textfile"
promtool check metrics <"$E2E_WORK/xdpguard.prom" || fail "promtool check metrics: the textfile"
hash=$(xg stats --iface "$SRV_IF" --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["policy"]["hash"])') ||
  fail "stats --json"
[[ $(metric "$E2E_WORK/m1" "xdpguard_policy_info$(L "policy=\"telemetry\",hash=\"$hash\",mode=\"enforce\",profile=\"\"")") == 1 ]] ||
  fail "no xdpguard_policy_info with the hash stats shows ($hash): $(grep policy_info "$E2E_WORK/m1")"
# expect_map MAP ENTRIES CAPACITY: that map's samples in m1.
expect_map() {
  local e c
  e=$(metric "$E2E_WORK/m1" "xdpguard_bpf_map_entries$(L "map=\"$1\"")") || fail "no entries of $1"
  c=$(metric "$E2E_WORK/m1" "xdpguard_bpf_map_capacity$(L "map=\"$1\"")") || fail "no capacity of $1"
  [[ $e == "$2" && $c == "$3" ]] || fail "map $1: $e/$c entries, expected $2/$3"
}
# far-away's 192.0.2.0/24 is the one IPv4 prefix (anywhere's /0 is rodata); no
# IPv6 prefix, yet a map needs a slot; nothing sent opened a flow or fragment.
expect_map peers_v4 1 1
expect_map peers_v6 0 1
expect_map frags 0 8192
expect_map flows_v4 0 65536
expect_map flows 0 65536
log "ok: promtool clean; policy_info carries hash $hash; map entries/capacity as loaded"

phase "event lines"
events_of() {  # events_of DPORT: JSON event lines for that destination port
  "$PY" - "$E2E_WORK/daemon.log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try: o = json.loads(line)
    except ValueError: continue
    if o.get("event") in ("drop", "would-drop") and o.get("dport") == int(sys.argv[2]):
        print(json.dumps(o, sort_keys=True))
PY
}
# wait_until polls a command: the count must be taken inside it.
events_at_least() { (($(events_of "$1" | wc -l) >= $2)); }
wait_until 5 events_at_least 8443 20 || fail "expected 20 events for 8443, got $(events_of 8443 | wc -l)"
[[ $(events_of 8443 | wc -l) == 20 ]] || fail "more than 20 events for 20 drops"
[[ $(events_of 9999 | wc -l) == 15 ]] || fail "expected 15 events for 9999"
[[ $(events_of 5060 | wc -l) == 0 ]] || fail "an allowed packet produced an event"
events_of 8443 >"$E2E_WORK/events.8443"
head -1 "$E2E_WORK/events.8443" | "$PY" -c '
import json, sys
e = json.loads(sys.stdin.read())
want = {"event": "drop", "interface": sys.argv[1], "direction": "ingress", "reason": "peer_not_in_set",
        "rule": "alt-8443", "family": 4, "protocol": "tcp", "src": sys.argv[2], "dst": sys.argv[3],
        "sport": 40001, "dport": 8443, "tcp_flags": "S", "length": 54, "suppressed": 0}
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
sys.exit("event fields wrong (got, want): %r" % bad if bad else 0)
' "$SRV_IF" "$CLI_IP4" "$SRV_IP4" || fail "event line does not describe the packet"
log "ok: 20 + 15 event lines, fields as sent"

phase "flood: rate-limited events"
scrape "$E2E_WORK/m2" || fail "scrape failed"
t0=$(date +%s.%N)
send_frames "$FLOOD" udp "$CLI_IP4" "$SRV_IP4" 41000 7777
t1=$(date +%s.%N)
sleep 1.5
scrape "$E2E_WORK/m3" || fail "scrape failed"
expect_metric m2 m3 "xdpguard_drops_total$(L 'reason="no_rule",direction="ingress"')" "$FLOOD"
emitted=$(( $(metric "$E2E_WORK/m3" "xdpguard_events_emitted_total$(L 'reason="no_rule",direction="ingress"')") -
            $(metric "$E2E_WORK/m2" "xdpguard_events_emitted_total$(L 'reason="no_rule",direction="ingress"')") ))
suppressed=$(( $(metric "$E2E_WORK/m3" "xdpguard_events_suppressed_total$(L 'reason="no_rule",direction="ingress"')") -
               $(metric "$E2E_WORK/m2" "xdpguard_events_suppressed_total$(L 'reason="no_rule",direction="ingress"')") ))
cpus=$(nproc --all)
bound=$("$PY" -c "import sys; print(int($cpus * ($BURST + $RATE * ($t1 - $t0 + 1.5)) + 1))")
log "flood: $FLOOD drops in $("$PY" -c "print(round($t1 - $t0, 2))") s: $emitted events, $suppressed suppressed (bound $bound)"
((emitted >= BURST)) || fail "only $emitted events for a flood (burst $BURST)"
((emitted <= bound)) || fail "$emitted events exceed the rate limit bound $bound"
((emitted + suppressed == FLOOD)) || fail "emitted $emitted + suppressed $suppressed != $FLOOD"
logged=$(events_of 7777 | wc -l)
((logged == emitted)) || fail "$emitted events emitted, $logged logged"
carried=$(events_of 7777 | "$PY" -c 'import json,sys; print(sum(json.loads(l)["suppressed"] for l in sys.stdin))')
((carried <= suppressed && carried > 0)) || fail "events carry $carried suppressed, total $suppressed"
recv=$(metric "$E2E_WORK/m3" "xdpguard_events_received_total{interface=\"$SRV_IF\"}")
emitted_all=$(grep "^xdpguard_events_emitted_total{interface=\"$SRV_IF\"" "$E2E_WORK/m3" | awk '{s += $2} END {print s}')
((recv == emitted_all)) || fail "received $recv events, the datapath emitted $emitted_all"
log "ok: events carry $carried of the $suppressed suppressed; received == emitted ($recv)"

phase "top drops"
xg stats --iface "$SRV_IF" --drops --json >"$E2E_WORK/drops.json" || fail "stats --drops failed"
"$PY" - "$E2E_WORK/drops.json" "$FLOOD" "$CLI_IP4" <<'PY' || fail "stats --drops: $(cat "$E2E_WORK/drops.json")"
import json, sys
d = json.load(open(sys.argv[1])); flood = int(sys.argv[2])
top = d["ports"][0]
assert (top["protocol"], top["port"], top["direction"], top["packets"]) == ("udp", 7777, "ingress", flood), top
ports = {(p["protocol"], p["port"]): p["packets"] for p in d["ports"]}
assert ports[("tcp", 8443)] == 20 and ports[("udp", 9999)] == 15, ports
peer = d["peers"][0]
assert peer["address"] == sys.argv[3] and peer["packets"] >= flood + 35, peer
PY
xg stats --iface "$SRV_IF" --drops >"$E2E_WORK/drops.txt" || fail "stats --drops failed"
grep -Eq "ingress +udp +7777 +$FLOOD" "$E2E_WORK/drops.txt" || fail "stats --drops text: $(cat "$E2E_WORK/drops.txt")"
log "ok: stats --drops names udp/7777 ($FLOOD) and $CLI_IP4 on top"

phase "stats --watch"
xg stats --iface "$SRV_IF" --watch --interval 0.3 --count 2 >"$E2E_WORK/watch.txt" ||
  fail "stats --watch failed"
[[ $(grep -c '^DIR' "$E2E_WORK/watch.txt") -ge 2 ]] || fail "stats --watch did not print two tables"
grep -q 'sip-5060' "$E2E_WORK/watch.txt" || fail "stats --watch lacks the rules"
log "ok: stats --watch printed two refreshes"

phase "reloads and textfile"
kill -HUP "$DAEMON_PID"
wait_until 10 grep -q 'reloaded to' "$E2E_WORK/daemon.log" || fail "SIGHUP did not reload"
scrape "$E2E_WORK/m4" || fail "scrape failed"
[[ $(metric "$E2E_WORK/m4" xdpguard_reloads_total) == 1 ]] || fail "xdpguard_reloads_total is not 1"
# The reload reused the ring buffer: events keep coming.
send_frames 3 tcp "$CLI_IP4" "$SRV_IP4" 40009 8443 S
wait_until 5 events_at_least 8443 23 || fail "no events after the reload"
wait_until 5 grep -q '^xdpguard_reloads_total 1$' "$E2E_WORK/xdpguard.prom" ||
  fail "the textfile does not follow (reloads)"
grep -q "^xdpguard_drops_total{interface=\"$SRV_IF\",reason=\"no_rule\",direction=\"ingress\"}" \
  "$E2E_WORK/xdpguard.prom" || fail "textfile lacks drop counters"
log "ok: reload counted, events after it, textfile current"

phase "events setting"
# settings.events reaches the datapath through a reload: rate 0 emits no
# event, and the drops are counted as suppressed instead.
printf 'settings:\n  events: {rate: 0, burst: 1}\n' >>"$POLICY"
xg check --policy "$POLICY" | grep -q "drop events 0/s, burst 1" || fail "check does not show the events setting"
scrape "$E2E_WORK/m5" || fail "scrape failed"
kill -HUP "$DAEMON_PID"
two_reloads() { (($(grep -c 'reloaded to' "$E2E_WORK/daemon.log") >= 2)); }
wait_until 10 two_reloads || fail "second SIGHUP did not reload"
before=$(events_of 8443 | wc -l)
send_frames 5 tcp "$CLI_IP4" "$SRV_IP4" 40010 8443 S
sleep 1.5
after=$(events_of 8443 | wc -l)
((after == before)) || fail "rate 0 still emitted $((after - before)) events"
scrape "$E2E_WORK/m6" || fail "scrape failed"
expect_metric m5 m6 "xdpguard_events_suppressed_total$(L 'reason="peer_not_in_set",direction="ingress"')" 5
log "ok: events {rate: 0} applied by reload: 5 drops, no event, 5 suppressed"

phase "stop"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "daemon exited $? on SIGTERM"
E2E_PIDS=()
in_srv curl -sf --max-time 2 "http://127.0.0.1:$PORT/metrics" >/dev/null && fail "metrics still served after exit"
log "ok: daemon stopped, metrics endpoint closed"

phase "journal"
# Drop events to journald's native protocol: a datagram socket bound here
# stands in for /run/systemd/journal/socket (a path socket is reachable from
# the server namespace); the restarted daemon adopts the pins.
JSOCK="$E2E_WORK/journal.sock"
sed -i '/^settings:/,$d' "$POLICY"  # events at the default rate again
start_server journal "$PY" -c '
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
out = open(sys.argv[2], "a")
while True:
    d = s.recv(65536)
    fields, pos = {}, 0
    while pos < len(d):  # NAME=value\n, or NAME\n<le64 size><value>\n
        nl = d.index(b"\n", pos)
        line = d[pos:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            pos = nl + 1
        else:
            n = struct.unpack("<Q", d[nl + 1:nl + 9])[0]
            k, v = line, d[nl + 9:nl + 9 + n]
            pos = nl + 9 + n + 1
        fields[k.decode()] = v.decode()
    out.write(json.dumps(fields, sort_keys=True) + "\n")
    out.flush()
' "$JSOCK" "$E2E_WORK/journal.entries"
JOURNAL_PID=${E2E_PIDS[-1]}
wait_until 5 test -S "$JSOCK" || fail "no journal socket"
start_server daemon2 "$XDPGUARD" run --iface "$SRV_IF" --policy "$POLICY" --mode native \
  --journal --journal-socket "$JSOCK"
DAEMON_PID=${E2E_PIDS[-1]}
wait_until 10 grep -q 'drop events go to the journal' "$E2E_WORK/daemon2.log" || fail "events not to the journal"
wait_until 10 grep -q 'adopted\|attached' "$E2E_WORK/daemon2.log" || fail "daemon did not start"
sleep 0.5
send_frames 2 tcp "$CLI_IP4" "$SRV_IP4" 40077 8443 S
journal_entries() { (($(grep -c '"DPORT": "8443"' "$E2E_WORK/journal.entries" 2>/dev/null) >= 2)); }
wait_until 5 journal_entries || fail "expected 2 journal entries: $(cat "$E2E_WORK/journal.entries" 2>/dev/null)"
grep '"DPORT": "8443"' "$E2E_WORK/journal.entries" | head -1 | "$PY" -c '
import json, sys
e = json.loads(sys.stdin.read())
want = {"EVENT": "drop", "IFACE": sys.argv[1], "DIRECTION": "ingress", "REASON": "peer_not_in_set",
        "RULE": "alt-8443", "PROTO": "tcp", "SRC": sys.argv[2], "DST": sys.argv[3],
        "SPORT": "40077", "DPORT": "8443", "TCP_FLAGS": "S", "PRIORITY": "5",
        "SYSLOG_IDENTIFIER": "xdpguard"}
bad = {k: (e.get(k), v) for k, v in want.items() if e.get(k) != v}
assert e["MESSAGE"].startswith("drop ingress "), e["MESSAGE"]
sys.exit("journal fields wrong (got, want): %r" % bad if bad else 0)
' "$SRV_IF" "$CLI_IP4" "$SRV_IP4" || fail "journal entry does not describe the packet"
grep -q 'DPORT\|"dport":8443' "$E2E_WORK/daemon2.log" && fail "events went to stderr as well as the journal"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID" || fail "daemon exited $? on SIGTERM"
kill "$JOURNAL_PID"
wait "$JOURNAL_PID" 2>/dev/null || true  # killed: 143
E2E_PIDS=()
xg_detach
log "ok: drop events as journal entries (RULE, REASON, SRC, DST, ports), none on stderr; detached"
