#!/usr/bin/env bash
# Jumbo frames (MTU 9000 on both ends of the veth), docs/datapath.md 10:
# - on Linux 5.18+ the program is loaded frags-aware (multi-buffer XDP),
#   attaches natively, and `stats` says so; before 5.18 a native attach is
#   refused with one line naming the way out (a smaller MTU, --mode generic),
#   and the test goes on in generic mode, as that line says;
# - an HTTPS upload of 8 MiB (ingress: 9014-byte frames through XDP) and a
#   download of 8 MiB (egress) arrive intact and count on the HTTPS rule,
#   ingress bytes included (the whole frame, not only its first buffer);
# - a jumbo UDP datagram (one 8042-byte frame) and the same datagram sent
#   through a 1500-byte route (6 fragments) are delivered and counted on the
#   UDP rule with their exact sizes; the same two to an undocumented port
#   are dropped and never delivered.
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

e2e_setup
ip -n "$SRV_NS" link set dev "$SRV_IF" mtu 9000
ip -n "$CLI_NS" link set dev "$CLI_IF" mtu 9000

E2E_POLICY="$E2E_WORK/jumbo.yaml"
cat >"$E2E_POLICY" <<'EOF'
version: 1
name: jumbo
peer_sets:
  anywhere: {cidrs: ["0.0.0.0/0", "::/0"]}
rules:
  - {id: https-443, section: t, row: "HTTPS | TCP | 443", protocol: tcp, local_port: 443, peers: anywhere, initiator: remote, flow: bidirectional, secured: true, purpose: web}
  - {id: bulk-7000, section: t, row: "bulk | UDP | 7000", protocol: udp, local_port: 7000, peers: anywhere, initiator: remote, flow: receive-only, secured: false, purpose: jumbo datagrams}
host_essentials:
  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: anywhere, initiator: remote, flow: bidirectional, purpose: admin}
  - {id: arp, protocol: ethertype, ethertypes: [0x0806], purpose: arp}
  - {id: ndp, protocol: icmpv6, icmp_types: [133, 134, 135, 136], peers: anywhere, purpose: ndp}
EOF

phase "servers"
mkdir -p "$E2E_WORK/www"
head -c $((8 << 20)) /dev/urandom >"$E2E_WORK/www/big.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=xdpguard-e2e -keyout "$E2E_WORK/key.pem" -out "$E2E_WORK/cert.pem" 2>/dev/null
# HTTPS: GET serves www/, PUT answers the SHA-256 of what it received.
cat >"$E2E_WORK/https.py" <<'EOF'
import hashlib, http.server, ssl, sys
work = sys.argv[1]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=work + "/www", **kw)
    def do_PUT(self):
        left, h = int(self.headers["Content-Length"]), hashlib.sha256()
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        body = h.hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("0.0.0.0", 443), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(work + "/cert.pem", work + "/key.pem")
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
EOF
start_server https "$PY" "$E2E_WORK/https.py" "$E2E_WORK"
# Python's start (http.server, ssl) takes over 10 s under the matrix's TCG.
wait_until 60 _listening "$SRV_NS" tcp 443 || fail "the HTTPS server did not start"
# UDP receivers: one line "PORT SIZE" per datagram.
cat >"$E2E_WORK/udp_recv.py" <<'EOF'
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", port))
while True:
    n = len(s.recv(65535))
    with open(out, "a") as f:
        f.write("%d %d\n" % (port, n))
EOF
for port in 7000 9999; do
  start_server "udp$port" "$PY" "$E2E_WORK/udp_recv.py" "$port" "$E2E_WORK/udp.data"
  wait_until 60 _listening "$SRV_NS" udp "$port" || fail "the UDP receiver on $port did not start"
done

phase "attach"
IFS=. read -r major minor _ <<<"$(uname -r)"
E2E_ATTACHED=1
if ((major > 5 || (major == 5 && minor >= 18))); then
  want_frags=yes mode=native
  xg_attach --policy "$E2E_POLICY"
  [[ $(xdp_mode) == 1 ]] || fail "expected a native XDP program on $SRV_IF at MTU 9000"
else
  # Before 5.18: no multi-buffer XDP, so veth takes no native program at 9000.
  want_frags=no mode=generic
  if xg attach --iface "$SRV_IF" --mode native --policy "$E2E_POLICY" >"$E2E_WORK/refused.log" 2>&1; then
    fail "kernel $(uname -r): a native attach at MTU 9000 was expected to be refused"
  fi
  lines=$(grep -c . "$E2E_WORK/refused.log")
  ((lines == 1)) || fail "the refusal is $lines lines, not one: $(cat "$E2E_WORK/refused.log")"
  for want in "MTU 9000" "--mode generic"; do
    grep -q -- "$want" "$E2E_WORK/refused.log" ||
      fail "the refusal does not say '$want': $(cat "$E2E_WORK/refused.log")"
  done
  log "ok: refused in one line: $(cat "$E2E_WORK/refused.log")"
  xg attach --iface "$SRV_IF" --mode generic --policy "$E2E_POLICY" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
    fail "generic attach at MTU 9000 failed"
  [[ $(xdp_mode) == 2 ]] || fail "expected a generic XDP program on $SRV_IF"
fi
xg stats --iface "$SRV_IF" >"$E2E_WORK/stats.txt" || fail "stats failed"
grep -q "multi-buffer $want_frags" "$E2E_WORK/stats.txt" ||
  fail "kernel $(uname -r): expected multi-buffer $want_frags: $(grep -i multi "$E2E_WORK/stats.txt")"
log "ok: $(uname -r), $mode mode, multi-buffer $want_frags"

phase "HTTPS upload and download"
wait_quiet
stats_snapshot "$E2E_WORK/s0.json"
want=$(sha256sum <"$E2E_WORK/www/big.bin" | cut -d' ' -f1)
# -H Expect: no 100-continue round (the server speaks HTTP/1.0).
got=$(in_cli curl -ksS --max-time 60 -H Expect: -T "$E2E_WORK/www/big.bin" "https://$SRV_IP4/up") ||
  fail "HTTPS upload failed"
[[ $got == "$want" ]] || fail "the upload arrived altered: $got, sent $want"
log "ok: 8 MiB uploaded over HTTPS intact"
stats_snapshot "$E2E_WORK/s1.json"
expect_deltas "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" \
  "rule:https-443:pass_bytes ge $((8 << 20))" "rule:https-443:drop_packets eq 0" \
  "reason:no_rule:packets eq 0"
# The upload travels in full-size frames: counted whole, they average far
# more than the ~3500 bytes a first buffer holds.
"$PY" - "$E2E_WORK/s0.json" "$E2E_WORK/s1.json" <<'EOF' || fail "the upload's frames were not counted whole"
import json, sys
b, a = ({r["id"]: r for r in json.load(open(f))["rules"]} for f in sys.argv[1:3])
pk = a["https-443"]["pass_packets"] - b["https-443"]["pass_packets"]
by = a["https-443"]["pass_bytes"] - b["https-443"]["pass_bytes"]
print("https-443 ingress: %d packets, %d bytes, %.0f bytes/packet" % (pk, by, by / pk), file=sys.stderr)
sys.exit(0 if by / pk > 6000 else 1)
EOF
in_cli curl -ksS --max-time 60 -o "$E2E_WORK/down.bin" "https://$SRV_IP4/big.bin" ||
  fail "HTTPS download failed"
cmp -s "$E2E_WORK/down.bin" "$E2E_WORK/www/big.bin" || fail "the download arrived altered"
log "ok: 8 MiB downloaded over HTTPS intact"
stats_snapshot "$E2E_WORK/s1b.json"
expect_deltas "$E2E_WORK/s1.json" "$E2E_WORK/s1b.json" \
  "egress_rule:https-443:pass_bytes ge $((8 << 20))" "rule:https-443:drop_packets eq 0" \
  "reason:no_rule:packets eq 0"

phase "UDP: jumbo and fragmented"
# One datagram of 8000 bytes: at MTU 9000 one frame of 14+20+8+8000 bytes;
# through a route of MTU 1500, 6 fragments (5 x 1480 bytes of IP payload and
# 608), each with its own 14+20 bytes of headers.
send_udp() {  # PORT
  in_cli "$PY" -c 'import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"j" * 8000, (sys.argv[1], int(sys.argv[2])))' "$SRV_IP4" "$1"
}
delivered() {  # PORT: how many datagrams of 8000 bytes arrived on PORT
  grep -c "^$1 8000\$" "$E2E_WORK/udp.data" 2>/dev/null || true
}
wait_quiet
stats_snapshot "$E2E_WORK/s2.json"
send_udp 7000
send_udp 9999
wait_until 3 test "$(delivered 7000)" -ge 1 || fail "the jumbo datagram to 7000 was not delivered"
stats_snapshot "$E2E_WORK/s3.json"
expect_deltas "$E2E_WORK/s2.json" "$E2E_WORK/s3.json" \
  "rule:bulk-7000:pass_packets eq 1" "rule:bulk-7000:pass_bytes eq 8042" \
  "reason:no_rule:packets eq 1" "reason:no_rule:bytes eq 8042"
ip -n "$CLI_NS" route add "$SRV_IP4/32" dev "$CLI_IF" mtu lock 1500
send_udp 7000
send_udp 9999
wait_until 3 test "$(delivered 7000)" -ge 2 || fail "the fragmented datagram to 7000 was not delivered"
stats_snapshot "$E2E_WORK/s4.json"
expect_deltas "$E2E_WORK/s3.json" "$E2E_WORK/s4.json" \
  "rule:bulk-7000:pass_packets eq 6" "rule:bulk-7000:pass_bytes eq $((8008 + 6 * 34))" \
  "rule:bulk-7000:drop_packets eq 0"
sleep 0.5
[[ $(delivered 9999) == 0 ]] || fail "a datagram to the undocumented port 9999 was delivered"
log "ok: nothing reached 9999"

phase "detach"
xg_detach
phase "done"
