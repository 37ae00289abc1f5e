# shellcheck shell=bash
# Shared plumbing for the end-to-end tests: a server and a client network
# namespace joined by a veth pair, servers started by PID inside the server
# namespace, xdpguard run inside it, counter assertions, and a teardown that
# removes exactly what this run created.
#
# Source it from a test script; then call e2e_setup. Needs root.
#   XDPGUARD             the xdpguard binary (ctest sets it)
#   XDPGUARD_SOURCE_DIR  the source tree (ctest sets it)
#   E2E_KEEP=1           keep the work directory after the run
set -euo pipefail
# Policies and peer-set files the tests write must be writable by their owner
# only, or xdpguard refuses them.
umask 022

# /usr/bin/python3 has scapy; python3 on PATH may be another interpreter.
PY=/usr/bin/python3

E2E_NAME=$(basename "${0%.sh}")
E2E_SRC=${XDPGUARD_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
XDPGUARD=${XDPGUARD:-$E2E_SRC/build/agent/xdpguard}

# Every name carries the test name (hashed, for the 15-byte interface limit)
# and our PID, so concurrent runs never collide and leftovers are attributable.
E2E_TAG=$(printf '%s' "$E2E_NAME" | cksum | awk '{printf "%04x", $1 % 65536}')
SRV_NS="xdpg-${E2E_NAME#test_}-$$-srv"
CLI_NS="xdpg-${E2E_NAME#test_}-$$-cli"
SRV_IF="x${E2E_TAG}${$}s"
CLI_IF="x${E2E_TAG}${$}c"
E2E_NET=$(($$ % 250 + 1))
SRV_IP4="10.200.${E2E_NET}.1"
CLI_IP4="10.200.${E2E_NET}.2"
SRV_IP6="fd00:200:${E2E_NET}::1"
CLI_IP6="fd00:200:${E2E_NET}::2"
# Fixed, locally administered MACs: crafted frames need them, and the
# namespaces are private to this run.
SRV_MAC="02:00:0a:c8:00:01"
CLI_MAC="02:00:0a:c8:00:02"

E2E_WORK=""
E2E_PIDS=()
# More namespaces and server interfaces a test adds (test_interfaces): the
# cleanup deletes the namespaces and detaches the interfaces.
E2E_EXTRA_NS=()
E2E_EXTRA_IFS=()
E2E_ATTACHED=0
E2E_PIN_DIR=""
E2E_EXTRA_PIN_DIRS=()  # pins of further interfaces a test attaches
E2E_MADE_PIN_ROOT=0
E2E_PHASE="setup"

log() { printf '[%s +%ds] %s\n' "$E2E_NAME" "$SECONDS" "$*" >&2; }
fail() {
  printf '[%s] FAIL (%s): %s\n' "$E2E_NAME" "$E2E_PHASE" "$*" >&2
  exit 1
}
phase() {
  E2E_PHASE=$1
  log "--- $1"
}

in_srv() { nsenter --net="/run/netns/$SRV_NS" "$@"; }
in_cli() { nsenter --net="/run/netns/$CLI_NS" "$@"; }
# xdpguard must run through nsenter, not `ip netns exec`: the latter mounts a
# fresh /sys without bpffs, and the pins would vanish with it.
xg() { in_srv "$XDPGUARD" "$@"; }

e2e_cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if ((E2E_ATTACHED)); then
    xg detach --iface "$SRV_IF" >/dev/null 2>&1 || log "detach failed during cleanup"
  fi
  local extra
  for extra in "${E2E_EXTRA_IFS[@]}"; do
    xg detach --iface "$extra" >/dev/null 2>&1
    rm -rf "/sys/fs/bpf/xdpguard/${extra}@netns$(stat -L -c %i "/run/netns/$SRV_NS")"
  done
  local i
  for i in "${!E2E_PIDS[@]}"; do
    kill "${E2E_PIDS[$i]}" 2>/dev/null
  done
  for i in "${!E2E_PIDS[@]}"; do
    wait "${E2E_PIDS[$i]}" 2>/dev/null
  done
  if ((rc != 0)) && [[ -n $E2E_WORK && -d $E2E_WORK ]]; then
    log "failed in phase '$E2E_PHASE' (exit $rc); logs follow"
    local f
    for f in "$E2E_WORK"/*.log; do
      [[ -s $f ]] || continue
      printf '===== %s =====\n' "$(basename "$f")" >&2
      tail -n 60 "$f" >&2
    done
    if ((E2E_ATTACHED)) || [[ -n $E2E_PIN_DIR && -d $E2E_PIN_DIR ]]; then
      printf '===== last stats =====\n' >&2
      cat "$E2E_WORK/stats.last" 2>/dev/null >&2
    fi
  fi
  # Deleting a namespace deletes its end of the veth, and with it the pair.
  ip netns del "$SRV_NS" 2>/dev/null
  ip netns del "$CLI_NS" 2>/dev/null
  for extra in "${E2E_EXTRA_NS[@]}"; do ip netns del "$extra" 2>/dev/null; done
  if [[ -n $E2E_PIN_DIR && -d $E2E_PIN_DIR ]]; then
    rm -rf "$E2E_PIN_DIR"
  fi
  # The pin root is shared with other runs: remove it only if this run
  # brought it into being and nobody else has pins there now.
  if ((E2E_MADE_PIN_ROOT)); then rmdir /sys/fs/bpf/xdpguard 2>/dev/null; fi
  if [[ -n $E2E_WORK && -d $E2E_WORK && ${E2E_KEEP:-0} != 1 ]]; then
    rm -rf "$E2E_WORK"
  fi
  if ((rc == 0)); then log "PASS"; fi
  exit "$rc"
}

# The server/client veth pair, created directly inside the namespaces so it
# takes their sysctl defaults; also used to re-create it (test_link_events).
e2e_make_veth() {
  ip link add "$SRV_IF" netns "$SRV_NS" address "$SRV_MAC" type veth \
    peer name "$CLI_IF" netns "$CLI_NS" address "$CLI_MAC"
  ip -n "$SRV_NS" addr add "$SRV_IP4/24" dev "$SRV_IF"
  ip -n "$CLI_NS" addr add "$CLI_IP4/24" dev "$CLI_IF"
  ip -n "$SRV_NS" addr add "$SRV_IP6/64" dev "$SRV_IF" nodad
  ip -n "$CLI_NS" addr add "$CLI_IP6/64" dev "$CLI_IF" nodad
  ip -n "$SRV_NS" link set "$SRV_IF" up
  ip -n "$CLI_NS" link set "$CLI_IF" up
}

e2e_setup() {
  [[ $(id -u) == 0 ]] || fail "needs root"
  [[ -x $XDPGUARD ]] || fail "xdpguard binary not found at $XDPGUARD (set XDPGUARD)"
  mountpoint -q /sys/fs/bpf || fail "bpffs is not mounted at /sys/fs/bpf"
  trap e2e_cleanup EXIT
  trap 'exit 130' INT TERM
  [[ -e /sys/fs/bpf/xdpguard ]] || E2E_MADE_PIN_ROOT=1
  E2E_WORK=$(mktemp -d "/tmp/xdpguard-e2e.${E2E_NAME}.XXXXXX")
  # net-snmp's tools keep state in SNMP_PERSISTENT_DIR: this run's, not /var/lib.
  export SNMP_PERSISTENT_DIR="$E2E_WORK/snmp"

  ip netns add "$SRV_NS"
  ip netns add "$CLI_NS"
  local ns
  for ns in "$SRV_NS" "$CLI_NS"; do
    # Quiet links: no router solicitations or DAD probes, so the only
    # packets that hit the counters are the ones the test sends, plus ARP/NDP.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.router_solicitations=0 \
      net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.accept_dad=0
    ip -n "$ns" link set lo up
  done
  # Created directly inside the namespaces so they take those defaults.
  e2e_make_veth
  E2E_PIN_DIR="/sys/fs/bpf/xdpguard/${SRV_IF}@netns$(stat -L -c %i "/run/netns/$SRV_NS")"
  wait_until 5 in_cli ping -c1 -W1 -q "$SRV_IP4" >/dev/null ||
    fail "no IPv4 connectivity across the veth"
  wait_until 5 in_cli ping -c1 -W1 -q "$SRV_IP6" >/dev/null ||
    fail "no IPv6 connectivity across the veth"
  log "lab: $SRV_NS/$SRV_IF ($SRV_IP4, $SRV_IP6) <-> $CLI_NS/$CLI_IF ($CLI_IP4, $CLI_IP6)"
}

# wait_until SECONDS CMD...: retry CMD every 0.2 s until it succeeds.
wait_until() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# start_server NAME CMD...: run CMD in the server namespace in the
# background, output to $E2E_WORK/NAME.log; its PID goes to E2E_PIDS.
start_server() {
  local name=$1
  shift
  # nsenter execs CMD, so $! is the server's own PID.
  nsenter --net="/run/netns/$SRV_NS" "$@" >"$E2E_WORK/$name.log" 2>&1 </dev/null &
  E2E_PIDS+=("$!")
}

# start_peer NAME CMD...: the same in the client namespace (the peers the
# server itself talks to: directory, mail, NTP, SNMP devices).
start_peer() {
  local name=$1
  shift
  nsenter --net="/run/netns/$CLI_NS" "$@" >"$E2E_WORK/$name.log" 2>&1 </dev/null &
  E2E_PIDS+=("$!")
}

_listening() {  # NS proto port
  [[ -n $(nsenter --net="/run/netns/$1" ss -Hln"${2:0:1}" "sport = :$3") ]]
}
_not_listening() { ! _listening "$@"; }
wait_listen() {  # tcp|udp PORT
  wait_until 10 _listening "$SRV_NS" "$1" "$2" || fail "nothing listens on $1/$2 in $SRV_NS"
}
wait_listen_peer() {  # tcp|udp PORT
  wait_until 10 _listening "$CLI_NS" "$1" "$2" || fail "nothing listens on $1/$2 in $CLI_NS"
}

# peer_config TEMPLATE OUT [NAME=VALUE...]: a config from tests/e2e/peers/
# with @WORK@ (this run's work directory) and each @NAME@ filled in.
peer_config() {
  local template=$1 out=$2 kv
  shift 2
  local args=(-e "s|@WORK@|$E2E_WORK|g")
  for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
  sed "${args[@]}" "$E2E_SRC/tests/e2e/peers/$template" >"$out" ||
    fail "cannot write $out from peers/$template"
  ! grep -q '@[A-Z0-9_]*@' "$out" || fail "unfilled placeholder in $out"
}

# expect_ok DESCRIPTION CMD... / expect_fail DESCRIPTION CMD...
expect_ok() {
  local what=$1
  shift
  if "$@" >>"$E2E_WORK/clients.log" 2>&1; then
    log "ok: $what"
  else
    fail "$what: expected success, '$*' failed"
  fi
}
expect_fail() {
  local what=$1
  shift
  if "$@" >>"$E2E_WORK/clients.log" 2>&1; then
    fail "$what: expected failure, '$*' succeeded"
  else
    log "ok: $what (blocked)"
  fi
}

# ---- xdpguard -------------------------------------------------------------

xg_attach() {  # extra attach args, e.g. --policy FILE
  E2E_ATTACHED=1
  xg attach --iface "$SRV_IF" --mode native "$@" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
    fail "xdpguard attach --iface $SRV_IF $* failed"
  log "attached xdpguard to $SRV_IF ${*:-(default policy)}"
}
xg_detach() {
  xg detach --iface "$SRV_IF" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
    fail "xdpguard detach --iface $SRV_IF failed"
  E2E_ATTACHED=0
  [[ ! -e $E2E_PIN_DIR ]] || fail "detach left $E2E_PIN_DIR behind"
}

# xdp_mode: the XDP attach mode on the server's interface as iproute2
# reports it (0 none, 1 native/driver, 2 generic).
xdp_mode() {
  ip -n "$SRV_NS" -j -d link show dev "$SRV_IF" |
    "$PY" -c 'import json,sys; l=json.load(sys.stdin)[0]; print(l.get("xdp",{}).get("mode",0))'
}

# stats_snapshot FILE [IF]: the counters as JSON (of the server's interface,
# or IF).
stats_snapshot() {
  xg stats --iface "${2:-$SRV_IF}" --json >"$1" 2>>"$E2E_WORK/xdpguard.log" ||
    fail "xdpguard stats --iface ${2:-$SRV_IF} --json failed"
  cp "$1" "$E2E_WORK/stats.last"
}

# Reading counters from snapshots: value(snapshot, KEY), where KEY is
#   rule:<id>:pass_packets | rule:<id>:drop_packets | reason:<name>:packets
#   (and the *_bytes / bytes variants); egress_rule:... and egress_reason:...
#   the same for the egress program; flow_table:-:<field> (e.g. entries).
_COUNTER_PY='
import json, sys
TABLES = {"rule": ("rules", "id"), "reason": ("drop_reasons", "reason"),
          "egress_rule": ("egress_rules", "id"),
          "egress_reason": ("egress_drop_reasons", "reason")}
def value(snap, spec):
    kind, name, field = spec.split(":")
    if kind == "flow_table":
        if "flow_table" not in snap:
            raise LookupError("no flow_table in stats")
        return snap["flow_table"][field]
    if kind not in TABLES:
        raise LookupError("bad counter kind %r in %r" % (kind, spec))
    table, key = TABLES[kind]
    if table not in snap:
        raise LookupError("no %r in stats (have: %s)" % (table, ", ".join(snap)))
    rows = [r for r in snap[table] if r[key] == name]
    if not rows:
        raise LookupError("no %s %r in %s (have: %s)" % (
            key, name, table, ", ".join(r[key] for r in snap[table])))
    return rows[0][field]
'

# counter FILE KEY: one counter from a snapshot.
counter() {
  "$PY" -c "$_COUNTER_PY"'
try:
    print(value(json.load(open(sys.argv[1])), sys.argv[2]))
except LookupError as e:
    sys.exit(str(e))
' "$1" "$2"
}

# expect_deltas BEFORE AFTER "KEY OP N"...: for each check, counter(AFTER) -
# counter(BEFORE) OP N, OP one of eq, ge. One process for all of them.
expect_deltas() {
  local out rc=0
  out=$("$PY" -c "$_COUNTER_PY"'
before, after = (json.load(open(f)) for f in sys.argv[1:3])
for check in sys.argv[3:]:
    spec, op, n = check.split()
    try:
        d = value(after, spec) - value(before, spec)
    except LookupError as e:
        print("reading %s: %s" % (spec, e)); sys.exit(1)
    if op not in ("eq", "ge"):
        print("expect_deltas: bad operator %s" % op); sys.exit(1)
    if (d != int(n)) if op == "eq" else (d < int(n)):
        print("%s grew by %d, expected %s %s" % (
            spec, d, "exactly" if op == "eq" else "at least", n)); sys.exit(1)
    print("ok: %s +%d (%s %s)" % (spec, d, op, n))
' "$@") || rc=$?
  local line
  while IFS= read -r line; do
    [[ $line == ok:* ]] && log "$line"
  done <<<"$out"
  ((rc == 0)) || fail "${out##*$'\n'}"
}

# expect_delta BEFORE AFTER KEY OP N: one such check.
expect_delta() { expect_deltas "$1" "$2" "$3 $4 $5"; }

# wait_quiet: wait until the counters stop moving (ARP/NDP/MLD chatter after
# a link comes up), so exact deltas measure only what the test sends.
wait_quiet() {  # [IF] (default: the server's interface)
  local a="$E2E_WORK/quiet.a" b="$E2E_WORK/quiet.b" i
  stats_snapshot "$a" "${1:-}"
  for i in $(seq 1 20); do
    sleep 1
    stats_snapshot "$b" "${1:-}"
    if cmp -s "$a" "$b"; then return 0; fi
    mv "$b" "$a"
  done
  fail "counters never settled"
}

# rule_for PACKET: the id of the rule `xdpguard explain` names for PACKET
# (e.g. "tcp 10.0.0.2:40000 -> 10.0.0.1:443 flags S"), under the policy in
# $E2E_POLICY (default: the embedded one). Its "rule:" line is "rule: INDEX ID ...".
rule_for() {
  local args=(explain --packet "$1") out id
  [[ -z ${E2E_POLICY:-} ]] || args+=(--policy "$E2E_POLICY")
  out=$("$XDPGUARD" "${args[@]}" 2>>"$E2E_WORK/xdpguard.log") ||
    fail "xdpguard explain --packet '$1' failed"
  id=$(awk '$1 == "rule:" { print $3; exit }' <<<"$out")
  [[ -n $id ]] || fail "xdpguard explain names no rule for: $1"$'\n'"$out"
  printf '%s\n' "$id"
}

# ---- captures and `xdpguard replay` -------------------------------------------

# start_capture FILE: tcpdump on the client's end of the veth, where every
# frame shows, those XDP drops on the server's end too (they never reach a tap
# there). Caps the server's TCP at one segment per skb: a GSO superframe is
# one packet for the TC program but is cut into segments after it, so the
# capture would hold several frames where the program counted one.
# (Offloads off is not enough: TCP builds GSO skbs regardless.)
start_capture() {
  ip -n "$SRV_NS" link set dev "$SRV_IF" gso_max_segs 1
  # -Z root: keep writing into this run's root-only work directory.
  start_peer tcpdump tcpdump -i "$CLI_IF" -n -U -Z root -w "$1"
  E2E_TCPDUMP_PID=${E2E_PIDS[-1]}
  wait_until 5 grep -q "listening on" "$E2E_WORK/tcpdump.log" || fail "tcpdump did not start"
}
stop_capture() {
  kill -INT "$E2E_TCPDUMP_PID"
  wait "$E2E_TCPDUMP_PID" 2>/dev/null || true
  log "capture: $(grep -o '[0-9]* packets captured' "$E2E_WORK/tcpdump.log")"
}

# expect_replay_matches BEFORE AFTER REPLAY MIN_RULES: the counters of
# `replay --json` (REPLAY) equal what the live counters grew by from the stats
# snapshot BEFORE to AFTER: every rule and drop reason, ingress and egress,
# packets and bytes; at least MIN_RULES rule rows saw traffic. The rows that
# did are logged side by side (also in $E2E_WORK/replay-vs-live.txt).
expect_replay_matches() {
  "$PY" - "$@" <<'EOF' >"$E2E_WORK/replay-vs-live.txt" ||
import json, sys
before, after, replay = (json.load(open(f)) for f in sys.argv[1:4])
bad, rows, used = [], [], 0
RULE = ("pass_packets", "drop_packets", "pass_bytes", "drop_bytes")
for table, key, fields in (("rules", "id", RULE), ("egress_rules", "id", RULE),
                           ("drop_reasons", "reason", ("packets", "bytes")),
                           ("egress_drop_reasons", "reason", ("packets", "bytes"))):
    b = {r[key]: r for r in before[table]}
    rep = {r[key]: r for r in replay[table]}
    if set(rep) != {r[key] for r in after[table]}:
        bad.append("%s: the replay names other rows than stats" % table)
        continue
    for row in after[table]:
        live = {f: row[f] - b[row[key]][f] for f in fields}
        got = {f: rep[row[key]][f] for f in fields}
        if live != got:
            bad.append("%s %s: live %s, replay %s" % (table, row[key], live, got))
        if any(live.values()) or any(got.values()):
            rows.append("%-20s %-30s live %-40s replay %s" % (table, row[key],
                        " ".join("%s=%d" % kv for kv in live.items()),
                        " ".join("%s=%d" % kv for kv in got.items())))
            used += table in ("rules", "egress_rules")
print("\n".join(rows))
print("frames replayed: %d (%d ingress, %d egress) in %.3f ms" % (
    replay["frames"], replay["ingress_frames"], replay["egress_frames"],
    replay["replay_seconds"] * 1e3))
if bad:
    print("MISMATCH:\n" + "\n".join(bad)); sys.exit(1)
if used < int(sys.argv[4]):
    print("only %d rule rows saw traffic" % used); sys.exit(1)
EOF
    fail "the replay differs from the live counters: $(cat "$E2E_WORK/replay-vs-live.txt")"
  cat "$E2E_WORK/replay-vs-live.txt" >&2
  log "ok: every rule and drop reason, both directions, equals the live counters"
}

# ---- crafted packets --------------------------------------------------------

# send_frames COUNT PROTO SRC DST SPORT DPORT [TCPFLAGS]: COUNT crafted frames
# from the client namespace, straight onto its veth (no kernel socket, so no
# retransmissions: the counters must move by exactly COUNT).
send_frames() { send_frame_batch "$*"; }

# send_frame_batch "COUNT PROTO SRC DST SPORT DPORT [TCPFLAGS]"...: several
# send_frames in one go (scapy takes a second or two to start).
send_frame_batch() {
  in_cli "$PY" - "$CLI_IF" "$CLI_MAC" "$SRV_MAC" "$@" <<'EOF'
import sys, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, IPv6, TCP, UDP, Raw, sendp
iface, smac, dmac = sys.argv[1:4]
for spec in sys.argv[4:]:
    count, proto, src, dst, sport, dport, *rest = spec.split()
    flags = rest[0] if rest else "S"
    l3 = IPv6(src=src, dst=dst) if ":" in dst else IP(src=src, dst=dst)
    if proto == "tcp":
        l4 = TCP(sport=int(sport), dport=int(dport), flags=flags, seq=1000)
    else:
        l4 = UDP(sport=int(sport), dport=int(dport)) / Raw(b"xdpguard-e2e")
    sendp([Ether(src=smac, dst=dmac) / l3 / l4] * int(count), iface=iface, verbose=False)
EOF
}

# send_orphan_fragments COUNT SRC DST [COUNT SRC DST...]: COUNT non-first
# fragments of UDP datagrams whose first fragments never come (a fresh IP ID
# each), from the client namespace.
send_orphan_fragments() {
  in_cli "$PY" - "$CLI_IF" "$CLI_MAC" "$SRV_MAC" "$@" <<'EOF'
import sys, random, logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import Ether, IP, IPv6, IPv6ExtHdrFragment, Raw, sendp
iface, smac, dmac = sys.argv[1:4]
args = sys.argv[4:]
frames = []
for count, src, dst in zip(args[0::3], args[1::3], args[2::3]):
    for _ in range(int(count)):
        # Where a 1500-MTU sender's second fragment starts (1480 / 1448 bytes in).
        if ":" in dst:
            l3 = IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(
                nh=17, offset=181, m=1, id=random.randrange(1, 2**32))
        else:
            l3 = IP(src=src, dst=dst, proto=17, id=random.randrange(1, 2**16),
                    frag=185, flags="MF")
        frames.append(Ether(src=smac, dst=dmac) / l3 / Raw(b"F" * 512))
sendp(frames, iface=iface, verbose=False)
EOF
}

# ---- servers (in the server namespace) and client probes ---------------------

start_https() {  # openssl s_server on 443, IPv4 and IPv6, self-signed cert
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=xdpguard-e2e -keyout "$E2E_WORK/key.pem" -out "$E2E_WORK/cert.pem" 2>/dev/null
  start_server https openssl s_server -accept 443 -www -quiet \
    -cert "$E2E_WORK/cert.pem" -key "$E2E_WORK/key.pem"
  wait_listen tcp 443
}
start_snmptrapd() {  # logs every v2c trap to $E2E_WORK/traps.log
  start_server snmptrapd snmptrapd -f -C -m '' -c "$E2E_SRC/tests/e2e/snmptrapd.conf" \
    -Lf "$E2E_WORK/traps.log" -p "$E2E_WORK/snmptrapd.pid" udp:162 udp6:162
  wait_listen udp 162
}
# The banner listeners are one-way (-U): they never read the client's bytes,
# so a request arriving after the banner process exits cannot break the reply.
start_fake_ssh() {  # a banner on 22 stands in for sshd
  start_server ssh socat -U TCP6-LISTEN:22,fork,reuseaddr,ipv6only=0 SYSTEM:'echo SSH-2.0-e2e'
  wait_listen tcp 22
}
start_closed_listeners() {  # services the policy does not document
  start_server tcp8080 socat -U TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=0 SYSTEM:'echo open-8080'
  start_server tcp3306 socat -U TCP6-LISTEN:3306,fork,reuseaddr,ipv6only=0 SYSTEM:'echo open-3306'
  start_server udp9999 socat -u UDP6-RECV:9999,ipv6only=0 \
    OPEN:"$E2E_WORK/udp9999.data",creat,append
  wait_listen tcp 8080
  wait_listen tcp 3306
  wait_listen udp 9999
}

# Client probes from the client namespace; each fails when nothing answered.
tcp_banner() {  # HOST PORT EXPECTED [SOURCE]
  local out
  out=$(in_cli nc -w 2 ${4:+-s "$4"} "$1" "$2" </dev/null 2>&1) || true
  [[ $out == *"$3"* ]]
}
https_get() {  # HOST [SOURCE]
  in_cli curl -ksS --max-time 3 ${2:+--interface "$2"} -o /dev/null "https://$1/"
}
# --http0.9: the stand-in listeners answer a bare line, not HTTP.
http_get() { in_cli curl -sS --http0.9 --max-time 2 -o /dev/null "http://$1:$2/"; }
udp_delivered() {  # HOST MARKER: send MARKER to UDP 9999, see if it arrived
  printf '%s\n' "$2" | in_cli nc -u -w 1 "$1" 9999 >/dev/null 2>&1 || true
  sleep 0.3
  grep -q "$2" "$E2E_WORK/udp9999.data" 2>/dev/null
}
send_trap() {  # TARGET MARKER [SOURCE]: a v2c trap, then look for it in the receiver's log
  in_cli snmptrap -m '' ${3:+--clientaddr="$3"} -v 2c -c public "$1" '' \
    1.3.6.1.4.1.8072.2.3.0.1 1.3.6.1.4.1.8072.2.3.2.1 s "$2" &&
    wait_until 3 grep -q "$2" "$E2E_WORK/traps.log"
}
sip_call() {  # NAME [SOURCE]: one INVITE/180/200/ACK/BYE call against a fresh sipp UAS
  # The previous call's UAS lingers a few seconds after its call: wait for
  # 5060 to be free, or the new one cannot bind and the old one answers.
  wait_until 10 _not_listening "$SRV_NS" udp 5060 || fail "the previous SIP UAS never left 5060"
  start_server "sipp-uas-$1" sipp -sn uas -i "$SRV_IP4" -p 5060 -m 1 -nostdin
  wait_listen udp 5060
  in_cli sipp -sn uac "$SRV_IP4:5060" -i "${2:-$CLI_IP4}" -p 5061 -m 1 -nostdin \
    -timeout 10s -timeout_error
}

# ---- peers in the client namespace (the servers the host itself talks to) ----

start_ldap_peer() {  # slapd: 389 over IPv4 and IPv6, 636 over IPv4; self-signed cert
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj /CN=xdpguard-e2e-ldap -addext "subjectAltName=IP:$CLI_IP4,IP:$CLI_IP6" \
    -keyout "$E2E_WORK/peer-key.pem" -out "$E2E_WORK/peer-cert.pem" 2>/dev/null ||
    fail "cannot make the LDAP server's certificate"
  mkdir -p "$E2E_WORK/ldapdb"
  peer_config slapd.conf.in "$E2E_WORK/slapd.conf"
  # -d keeps slapd in the foreground, so its PID is ours to stop.
  start_peer slapd slapd -d 0 -f "$E2E_WORK/slapd.conf" \
    -h "ldap://$CLI_IP4/ ldaps://$CLI_IP4/ ldap://[$CLI_IP6]/"
  wait_listen_peer tcp 389
  wait_listen_peer tcp 636
}
start_snmp_peer() {  # [ADDRESS]: snmpd on UDP 161 (default: the client's IPv4 address)
  # -m '': no MIBs (Debian ships few; names are not needed).
  start_peer snmpd snmpd -f -Lo -C -m '' -c "$E2E_SRC/tests/e2e/peers/snmpd.conf" \
    -p "$E2E_WORK/snmpd.pid" "udp:${1:-$CLI_IP4}:161"
  wait_listen_peer udp 161
}

# The host's own requests to them (from the server namespace).
ldap_root_dse() {  # URI: the root DSE must name the peer's suffix
  local out
  out=$(in_srv env LDAPTLS_CACERT="$E2E_WORK/peer-cert.pem" LDAPTLS_REQCERT=demand \
    ldapsearch -x -LLL -o nettimeout=3 -l 3 -H "$1" -s base -b "" namingContexts 2>&1) || {
    printf '%s\n' "$out"
    return 1
  }
  printf '%s\n' "$out"
  [[ $out == *"namingContexts: dc=xdpguard,dc=test"* ]]
}
snmp_get() {  # [ADDRESS]: the device's sysName
  local out
  out=$(in_srv snmpget -m '' -v 2c -c public -t 2 -r 1 -On "${1:-$CLI_IP4}" 1.3.6.1.2.1.1.5.0 2>&1) || {
    printf '%s\n' "$out"
    return 1
  }
  printf '%s\n' "$out"
  [[ $out == *xdpguard-e2e-device* ]]
}

# The lab's veth never carries the session the tests are run over: xdpguard's
# anti-lock-out check must not judge the lab's policies against it.
unset SSH_CONNECTION
