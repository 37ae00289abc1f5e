#!/usr/bin/env bash
# A hostile peer scans the protected server with nmap (TCP SYN, connect,
# ACK, FIN, Xmas, null, UDP; IPv4 and IPv6; plus ACK and UDP scans from the
# "trusted" source ports 443 and 53) while the embedded default policy is
# attached, with real listeners on documented ports (443, 22, 162/udp,
# 5060/udp) and on undocumented ones (8080, 3306, 9999/udp):
# - only documented inbound ports ever answer: every port nmap reports as
#   open, closed or unfiltered is one that `xdpguard explain` passes under
#   the policy; 443 and 22 are found open; 8080 and 3306 are filtered;
#   a documented UDP port with no listener is closed (its ICMP error gets
#   out) while undocumented UDP ports stay open|filtered;
# - Xmas and null probes are dropped as bad_tcp_flags, and nothing answers;
# - source-port tricks (ACK from 443, UDP from 53) earn no_flow drops, not
#   passes: no flow was opened to the scanner;
# - every probe is accounted for: for each scan, the frames the client's
#   veth transmitted equal the ingress pass and drop counters' growth
#   (native XDP sees every frame the peer transmits). The server veth's
#   rx_packets is logged too: on veth it counts XDP-dropped frames as well
#   (seen equal on 6.x), but the client's tx side is the reference here.
# Prints, per scan, probes that reached the veth and how many were dropped.
# Also: stats refuse pins of another layout (an older info map planted before
# attach), attach replaces them whole, and the pins are root-only (directory
# 0700, files 0600).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v nmap >/dev/null || fail "nmap is not installed (scripts/install-deps.sh)"
e2e_setup

phase "servers"
start_https
start_fake_ssh
start_closed_listeners
start_snmptrapd
start_server sip socat -u UDP6-RECV:5060,ipv6only=0 OPEN:/dev/null
wait_listen udp 5060
# Deterministic UDP verdicts: every closed port answers with an ICMP error.
ip netns exec "$SRV_NS" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv6.icmp.ratelimit=0

phase "stale pins of another layout"
# What an older xdpguard may have left: pins whose info map has another shape.
mkdir -p "$E2E_PIN_DIR"
bpftool map create "$E2E_PIN_DIR/info" type array key 4 value 96 entries 1 name info ||
  fail "cannot plant a stale info map"
if xg stats --iface "$SRV_IF" >"$E2E_WORK/stale.out" 2>&1; then
  fail "stats read pins of another layout"
fi
grep -q "not this xdpguard's layout" "$E2E_WORK/stale.out" ||
  fail "stats on stale pins did not say why: $(cat "$E2E_WORK/stale.out")"
log "ok: stats refuse stale pins: $(grep -m1 layout "$E2E_WORK/stale.out")"

phase "attach default policy"
# Nothing is attached, so attach replaces the stale pins whole.
xg_attach
grep -q "removing stale pins" "$E2E_WORK/xdpguard.log" ||
  fail "attach did not report the stale pins it replaced"
# The pins hold the policy's maps and counters: root only.
[[ $(stat -c %a "$E2E_PIN_DIR") == 700 ]] ||
  fail "pin directory $E2E_PIN_DIR has mode $(stat -c %a "$E2E_PIN_DIR"), expected 700"
loose=$(find "$E2E_PIN_DIR" -mindepth 1 -perm /077 -printf '%p %m\n')
[[ -z $loose ]] || fail "pins readable or writable by others than root: $loose"
log "ok: pins are root-only (directory 0700, $(find "$E2E_PIN_DIR" -mindepth 1 | wc -l) pins 0600)"
wait_quiet

TCP_PORTS="1-1100,3306,5000,5001,5060,8080,9999"
UDP_PORTS="53,123,161,162,1161,5060,7777,9999"
FLAG_PORTS="1-25,79-81,440-445,900-920,3306,5000,5001,8080"
NMAP_OPTS=(-n -Pn -T4 --max-retries 1 --initial-rtt-timeout 100ms --max-rtt-timeout 300ms
  --host-timeout 300s)

# /sys belongs to the namespace that mounted it; /proc/net/dev follows nsenter.
# Its transmit fields are bytes, packets, errs, drop, ...
_client_dev() { in_cli awk -v dev="$CLI_IF:" -v col="$1" '$1 == dev { print $col }' /proc/net/dev; }
client_tx() { _client_dev 11; }
client_tx_dropped() { _client_dev 13; }
server_rx() { in_srv awk -v dev="$SRV_IF:" '$1 == dev { print $3 }' /proc/net/dev; }

# settled_snapshot FILE: the counters, taken while the client transmits
# nothing (XDP runs in the server's NAPI poll, a moment after the client's
# transmit counter moved; NDP and retransmissions may come at any time).
# Prints the client's tx_packets that the snapshot accounts for.
settled_snapshot() {
  local a b i
  for i in $(seq 1 30); do
    a=$(client_tx)
    sleep 0.3
    stats_snapshot "$1"
    b=$(client_tx)
    if ((a == b)); then
      printf '%s\n' "$a"
      return 0
    fi
  done
  fail "the client never stopped transmitting"
}

# ingress_total SNAPSHOT: every ingress pass and drop counted, and the drops alone.
ingress_totals() {
  "$PY" -c '
import json, sys
s = json.load(open(sys.argv[1]))
passed = sum(r["pass_packets"] for r in s["rules"])
dropped = sum(r["packets"] for r in s["drop_reasons"])
print(passed + dropped, dropped)
' "$1"
}

# documented PROTO PORT: does the policy pass a new connection from the
# client to PORT? (The answer comes from the policy, through explain.)
declare -A DOCUMENTED=()
documented() {
  local key="$1/$2" pkt out
  if [[ -z ${DOCUMENTED[$key]:-} ]]; then
    if [[ $1 == tcp ]]; then pkt="tcp $CLI_IP4:40000 -> $SRV_IP4:$2 flags S"
    else pkt="udp $CLI_IP4:40000 -> $SRV_IP4:$2"; fi
    out=$("$XDPGUARD" explain --packet "$pkt" 2>>"$E2E_WORK/xdpguard.log") ||
      fail "xdpguard explain --packet '$pkt' failed"
    if grep -q '^verdict: pass' <<<"$out"; then DOCUMENTED[$key]=yes; else DOCUMENTED[$key]=no; fi
  fi
  [[ ${DOCUMENTED[$key]} == yes ]]
}

# port_states GREPABLE: "PORT/STATE" lines for every port nmap listed, and
# "ignored/STATE" for the collapsed rest.
port_states() {
  "$PY" -c '
import re, sys
for line in open(sys.argv[1]):
    if "Ports:" not in line:
        continue
    ports = line.split("Ports:", 1)[1].split("\t")[0]
    for entry in ports.split(","):
        f = entry.strip().split("/")
        if len(f) > 2:
            print("%s/%s" % (f[0], f[1]))
    m = re.search(r"Ignored State: (\S+)", line)
    if m:
        print("ignored/%s" % m.group(1))
' "$1"
}

SUMMARY=()
TOTAL_PROBES=0
TOTAL_DROPPED=0

# scan NAME PROTO "EXPECT..." NMAP-ARGS...: run one scan from the client and
# check answers and accounting. EXPECT items are PORT=STATE (STATE may be
# a|b alternatives; "filtered" also accepts the collapsed ignored state).
scan() {
  local name=$1 proto=$2 expect=$3
  shift 3
  phase "scan: $name"
  local out="$E2E_WORK/scan-$name"
  local tx0 tx1 drop0 drop1 rx0 rx1 t0 t1 d0 d1
  tx0=$(settled_snapshot "$out.before.json")
  rx0=$(server_rx)
  drop0=$(client_tx_dropped)
  in_cli nmap "${NMAP_OPTS[@]}" -v -oG "$out.gnmap" "$@" >"$out.log" 2>&1 ||
    fail "nmap $* failed: $(tail -3 "$out.log")"
  tx1=$(settled_snapshot "$out.after.json")
  rx1=$(server_rx)
  drop1=$(client_tx_dropped)
  read -r t0 d0 < <(ingress_totals "$out.before.json")
  read -r t1 d1 < <(ingress_totals "$out.after.json")
  local sent=$((tx1 - tx0)) counted=$((t1 - t0)) dropped=$((d1 - d0))
  ((drop1 == drop0)) || fail "$name: the client's veth dropped $((drop1 - drop0)) frames"
  ((sent == counted)) ||
    fail "$name: the client transmitted $sent frames, xdpguard counted $counted"
  ((sent > 0)) || fail "$name: nmap sent nothing"

  local states line port state answered=()
  states=$(port_states "$out.gnmap")
  [[ -n $states ]] || fail "$name: no port list in nmap's output: $(cat "$out.gnmap")"
  while IFS=/ read -r port state; do
    [[ $port == ignored ]] && continue
    case $state in
      open | closed | unfiltered)
        documented "$proto" "$port" ||
          fail "$name: undocumented $proto port $port answered ($state)"
        answered+=("$port:$state") ;;
    esac
  done <<<"$states"
  local item want got
  for item in $expect; do
    port=${item%%=*}
    want=${item#*=}
    got=$(awk -F/ -v p="$port" '$1 == p { print $2 }' <<<"$states")
    [[ -n $got ]] || got=$(awk -F/ '$1 == "ignored" { print $2 }' <<<"$states")
    [[ "|$want|" == *"|$got|"* ]] || fail "$name: port $port is '$got', expected '$want'"
  done
  local raw
  raw=$(grep -o 'Raw packets sent: [0-9]*' "$out.log" | tail -1 | awk '{print $4}' || true)
  log "$name: answered: ${answered[*]:-none}; $sent frames reached the veth" \
    "(nmap raw probes: ${raw:-n/a}), $dropped dropped, $((sent - dropped)) passed;" \
    "server veth rx_packets +$((rx1 - rx0))"
  SUMMARY+=("$name: $sent frames, $dropped dropped")
  TOTAL_PROBES=$((TOTAL_PROBES + sent))
  TOTAL_DROPPED=$((TOTAL_DROPPED + dropped))
  cp "$out.before.json" "$E2E_WORK/last.before.json"
  cp "$out.after.json" "$E2E_WORK/last.after.json"
}
before() { printf '%s' "$E2E_WORK/last.before.json"; }
after() { printf '%s' "$E2E_WORK/last.after.json"; }

TCP_EXPECT="22=open 443=open 8080=filtered 3306=filtered 9999=filtered 80=closed"
for fam in 4 6; do
  target=$SRV_IP4 f=()
  if [[ $fam == 6 ]]; then target=$SRV_IP6 f=(-6); fi
  scan "syn-v$fam" tcp "$TCP_EXPECT" "${f[@]}" -sS -p "$TCP_PORTS" "$target"
  scan "connect-v$fam" tcp "$TCP_EXPECT" "${f[@]}" -sT -p "$TCP_PORTS" "$target"
  # Inbound TCP is stateless by design: an ACK to a documented port reaches
  # the host (which answers RST); to any other port it is dropped.
  scan "ack-v$fam" tcp "22=unfiltered 443=unfiltered 8080=filtered 3306=filtered" \
    "${f[@]}" -sA -p "$TCP_PORTS" "$target"
  scan "fin-v$fam" tcp "80=closed 8080=open|filtered 3306=open|filtered" \
    "${f[@]}" -sF -p "$TCP_PORTS" "$target"
  # Nothing answers these, so nmap waits on every port: fewer ports.
  scan "xmas-v$fam" tcp "80=open|filtered 443=open|filtered 8080=open|filtered" \
    "${f[@]}" -sX -p "$FLAG_PORTS" "$target"
  expect_delta "$(before)" "$(after)" "reason:bad_tcp_flags:packets" ge 60
  scan "null-v$fam" tcp "80=open|filtered 443=open|filtered 8080=open|filtered" \
    "${f[@]}" -sN -p "$FLAG_PORTS" "$target"
  expect_delta "$(before)" "$(after)" "reason:bad_tcp_flags:packets" ge 60
  scan "udp-v$fam" udp "1161=closed 7777=open|filtered 9999=open|filtered 53=open|filtered" \
    "${f[@]}" -sU -p "$UDP_PORTS" "$target"
  # Source-port tricks: a "reply" from 443 or 53 needs a flow the host opened.
  scan "ack-from-443-v$fam" tcp "8080=filtered 3306=filtered 443=unfiltered" \
    "${f[@]}" -sA -g 443 -p "$TCP_PORTS" "$target"
  expect_delta "$(before)" "$(after)" "reason:no_flow:packets" ge 1000
  scan "udp-from-53-v$fam" udp "7777=open|filtered 9999=open|filtered" \
    "${f[@]}" -sU -g 53 -p "$UDP_PORTS" "$target"
  expect_delta "$(before)" "$(after)" "reason:no_flow:packets" ge 5
done

phase "summary"
for line in "${SUMMARY[@]}"; do log "$line"; done
log "total: $TOTAL_PROBES frames from the scanner reached the veth, $TOTAL_DROPPED dropped," \
  "every one counted"
