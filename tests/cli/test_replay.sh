#!/usr/bin/env bash
# `xdpguard replay` on the command line (no root): a capture written with
# scapy (Debian's /usr/bin/python3) holding both directions of an LDAP query
# the host makes, a spoofed answer, HTTPS clients, an unsecured device's HTTP,
# ARP both ways and a 50-port scan.
# - the per-rule and per-reason counts of --json are the known ones, ingress
#   and egress (the host's frames found by its address);
# - against the secured-only profile (OLD), the default lists exactly the
#   unsecured rows' flows, both directions: the device's HTTP and the host's
#   LDAP query, drop no_rule -> pass; not the spoofed answer, refused by both;
# - no --host is a usage error (2); pcapng and a cut-short capture are
#   refused (1) with the reason;
# - --json stays valid JSON whatever the names of the files, policy and rules.
set -euo pipefail
: "${XDPGUARD:?path of the xdpguard binary}" "${XDPGUARD_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
work=$(mktemp -d /tmp/xdpguard-cli-replay.XXXXXX)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work" <<'EOF'
import sys
from scapy.all import Ether, ARP, IP, TCP, wrpcap
from scapy.utils import PcapNgWriter
work = sys.argv[1]
HOST, HMAC, PMAC = "192.0.2.1", "02:00:00:00:00:0a", "02:00:00:00:00:0b"
out = lambda dst, l4: Ether(src=HMAC, dst=PMAC) / IP(src=HOST, dst=dst) / l4
inn = lambda src, l4: Ether(src=PMAC, dst=HMAC) / IP(src=src, dst=HOST) / l4
frames = [
    out("198.51.100.7", TCP(sport=50000, dport=389, flags="S")),
    inn("198.51.100.7", TCP(sport=389, dport=50000, flags="SA")),
    inn("198.51.100.8", TCP(sport=389, dport=50000, flags="SA")),   # no flow
    Ether(src=HMAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc=HOST, pdst="198.51.100.7"),
    Ether(src=PMAC, dst=HMAC) / ARP(op=2, psrc="198.51.100.7", pdst=HOST),
    inn("203.0.113.50", TCP(sport=41000, dport=80, flags="S")),     # device HTTP (not secured)
    out("203.0.113.50", TCP(sport=80, dport=41000, flags="SA")),
]
for i in range(3):
    frames.append(inn("203.0.113.9", TCP(sport=40000 + i, dport=443, flags="S")))
frames += [inn("203.0.113.66", TCP(sport=55555, dport=p, flags="S")) for p in range(1000, 1050)]
for i, f in enumerate(frames):
    f.time = 1_700_000_000 + i / 10
wrpcap(f"{work}/lab.pcap", frames)
w = PcapNgWriter(f"{work}/lab.pcapng")
w.write(frames[0]); w.close()
EOF

out=$("$XDPGUARD" replay --host 192.0.2.1 --json "$work/lab.pcap") || fail "replay exited $?"
/usr/bin/python3 - "$out" <<'EOF' || fail "replay counts: $out"
import json, sys
r = json.loads(sys.argv[1])
def rule(table, rid, field):
    return next(x[field] for x in r[table] if x["id"] == rid)
def reason(table, name):
    return next(x["packets"] for x in r[table] if x["reason"] == name)
want = [
    (r["frames"], 60), (r["egress_frames"], 3), (r["ingress_frames"], 57),
    (rule("rules", "ldap-389", "pass_packets"), 1),
    (rule("egress_rules", "ldap-389", "pass_packets"), 1),
    (rule("rules", "ldap-389", "drop_packets"), 1),
    (reason("drop_reasons", "no_flow"), 1),
    (rule("rules", "arp", "pass_packets"), 1),
    (rule("egress_rules", "arp", "pass_packets"), 1),
    (rule("rules", "device-http-80", "pass_packets"), 1),
    (rule("egress_rules", "device-http-80", "pass_packets"), 1),
    (rule("rules", "nbif-clients-https", "pass_packets"), 3),
    (reason("drop_reasons", "no_rule"), 50),
    (sum(x["packets"] for x in r["egress_drop_reasons"]), 0),
]
bad = [(i, got, exp) for i, (got, exp) in enumerate(want) if got != exp]
if bad:
    sys.exit("check #, got, expected: %s" % bad)
EOF

out=$("$XDPGUARD" replay --host 192.0.2.1 --against default --against-profile secured-only \
  "$work/lab.pcap") || fail "replay --against exited $?"
expect_change() {  # FLOW DIRECTION NEW
  grep -q "^$1  *$2  *1  *drop no_rule  *$3\$" <<<"$out" || fail "no change '$1 $2 -> $3': $out"
}
expect_change "tcp 192.0.2.1:80 <-> 203.0.113.50:41000" ingress "pass device-http-80"
expect_change "tcp 192.0.2.1:80 <-> 203.0.113.50:41000" egress "pass device-http-80"
expect_change "tcp 192.0.2.1:50000 <-> 198.51.100.7:389" ingress "pass ldap-389"
expect_change "tcp 192.0.2.1:50000 <-> 198.51.100.7:389" egress "pass ldap-389"
# The spoofed answer is refused by both (no_rule, then no_flow): not listed.
[[ $(grep -c "<->" <<<"$out") == 4 ]] || fail "other flows listed as changed: $out"

rc=0
"$XDPGUARD" replay "$work/lab.pcap" >/dev/null 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "replay without --host exited $rc, not 2"

rc=0
err=$("$XDPGUARD" replay --host 192.0.2.1 "$work/lab.pcapng" 2>&1 >/dev/null) || rc=$?
[[ $rc == 1 && $err == *pcapng*"editcap -F pcap"* ]] || fail "pcapng: exit $rc, $err"

head -c 1000 "$work/lab.pcap" >"$work/cut.pcap"
rc=0
err=$("$XDPGUARD" replay --host 192.0.2.1 "$work/cut.pcap" 2>&1 >/dev/null) || rc=$?
[[ $rc == 1 && $err == *truncated* ]] || fail "cut-short capture: exit $rc, $err"
# Names JSON must escape or cannot carry, in --json: the capture's and the
# policy file's names hold a quote, a backslash, a tab, a newline and a byte
# that is not UTF-8 (\xff); the policy's name and a rule's row hold quotes,
# a backslash and control characters (rule ids cannot: a-z, 0-9, '-'). The
# output is one line that Python's strict reader takes; the names come back
# as given, \xff as U+FFFD.
odd=$'odd "q" \\ \t\n\xff'
cp "$work/lab.pcap" "$work/$odd.pcap"
/usr/bin/python3 - "$XDPGUARD_SOURCE_DIR/policy/ovoc-single-node.yaml" "$work/$odd.yaml" <<'EOF'
import sys
src = open(sys.argv[1]).read()
for old, new in (("name: ovoc-single-node\n", r'name: "ovoc \"odd\" \\ \t\u0001"' "\n"),
                 ('    row: "OVOC server ↔ Active Directory LDAP server | TCP | 389"\n',
                  r'    row: "LDAP \"x\" \\ \u0001\n"' "\n")):
    assert src.count(old) == 1, old
    src = src.replace(old, new)
open(sys.argv[2], "w").write(src)
EOF
out=$("$XDPGUARD" replay --policy "$work/$odd.yaml" --host 192.0.2.1 --json "$work/$odd.pcap") ||
  fail "replay of odd names exited $?"
[[ $(wc -l <<<"$out") == 1 ]] || fail "replay --json is not one line: $out"
/usr/bin/python3 -c '
import json, sys
work = sys.argv[1]
r = json.loads(sys.stdin.buffer.read().decode("utf-8"))
name = work + "/odd \"q\" \\ \t\n\ufffd"
rule = next(x for x in r["rules"] if x["id"] == "ldap-389")
want = [
    (r["capture"], name + ".pcap"),
    (r["policy"], "ovoc \"odd\" \\ \t\x01 (" + name + ".yaml)"),
    (rule["row"], "LDAP \"x\" \\ \x01\n"),
    (rule["pass_packets"], 1),
    (r["frames"], 60),
]
bad = [(i, got, exp) for i, (got, exp) in enumerate(want) if got != exp]
if bad:
    sys.exit("check #, got, expected: %s" % bad)
' "$work" <<<"$out" || fail "odd names: $out"
echo "replay: 6 cases passed"
