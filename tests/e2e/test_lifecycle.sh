#!/usr/bin/env bash
# Lifecycle (issue 4) on the veth lab, with a steady stream of numbered UDP
# datagrams from the client to the server's SIP port (an allowed flow):
# - reload under load: 100 reloads, every 5th with an invalid policy (rejected
#   with its file:line:col, the program id unchanged), the others alternating
#   between two valid policies that order the rules differently and differ by
#   a rule: not one datagram lost, and the SIP rule's pass counter equals the
#   datagrams received (counters follow the rule across reorders);
# - the `run` daemon: adopts what is attached (same program id), SIGHUP
#   reloads from its file and keeps the old policy on a bad one; SIGKILL under
#   traffic leaves enforcement in place (undocumented UDP 9999 stays blocked,
#   the stream keeps flowing); a new daemon adopts without a gap (same program
#   id, no datagram lost); SIGTERM exits 0 and leaves the programs attached;
# - audit mode: UDP 9999 is delivered and counted as no_rule exactly as in
#   enforce mode, and stats say "mode: audit";
# - anti-lock-out: a policy without an SSH rule, or one dropping the session in
#   $SSH_CONNECTION, is refused unless --force;
# - confirmed apply: confirm in time keeps the new policy; no confirm rolls
#   back by itself after the timeout;
# - without CAP_BPF, attach fails naming the missing privilege (not the kernel).
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RELOADS=${LIFECYCLE_RELOADS:-100}
RATE=${LIFECYCLE_RATE:-1000}  # datagrams per second

e2e_setup
export XDPGUARD_STATE_DIR="$E2E_WORK/state"

# ---- policies ---------------------------------------------------------------

# write_policy FILE NAME ORDER [ADMIN_PEERS]: ORDER "ab" puts sip first, "ba"
# puts https first and adds an SNMP rule between them; ADMIN_PEERS is the
# admin SSH rule's peer set (anywhere), or "none" for no SSH rule at all.
write_policy() {
  local file=$1 name=$2 order=$3 admin=${4:-anywhere}
  local sip https snmp ssh
  sip='  - {id: sip-5060, section: t, row: "SIP | UDP | 5060", protocol: udp, local_port: 5060, peers: anywhere, initiator: remote, flow: bidirectional, secured: false, purpose: stream}'
  https='  - {id: https-443, section: t, row: "HTTPS | TCP | 443", protocol: tcp, local_port: 443, peers: anywhere, initiator: remote, flow: bidirectional, secured: true, purpose: web}'
  snmp='  - {id: snmp-162, section: t, row: "SNMP | UDP | 162", protocol: udp, local_port: 162, peers: anywhere, initiator: remote, flow: receive-only, secured: true, purpose: traps}'
  ssh="  - {id: admin-ssh, protocol: tcp, local_port: 22, peers: $admin, initiator: remote, flow: bidirectional, purpose: admin}"
  [[ $admin != none ]] || ssh=""
  {
    printf 'version: 1\nname: %s\n' "$name"
    printf 'peer_sets:\n  anywhere: {cidrs: ["0.0.0.0/0", "::/0"]}\n  far-away: {cidrs: [192.0.2.0/24]}\n'
    printf 'rules:\n'
    if [[ $order == ab ]]; then printf '%s\n%s\n' "$sip" "$https"; else printf '%s\n%s\n%s\n' "$https" "$snmp" "$sip"; fi
    printf 'host_essentials:\n'
    [[ -z $ssh ]] || printf '%s\n' "$ssh"
    printf '  - {id: arp, protocol: ethertype, ethertypes: [0x0806], purpose: arp}\n'
    printf '  - {id: ndp, protocol: icmpv6, icmp_types: [133, 134, 135, 136], peers: anywhere, purpose: ndp}\n'
  } >"$file"
}
P_A="$E2E_WORK/a.yaml"
P_B="$E2E_WORK/b.yaml"
P_BAD="$E2E_WORK/bad.yaml"
write_policy "$P_A" lifecycle-a ab
write_policy "$P_B" lifecycle-b ba
sed 's/local_port: 162/local_port: 99999/' "$P_B" >"$P_BAD"
BAD_LINE=$(grep -n 'local_port: 99999' "$P_BAD" | cut -d: -f1)

# ---- helpers ----------------------------------------------------------------

xdp_prog_id() {
  ip -n "$SRV_NS" -j -d link show dev "$SRV_IF" |
    "$PY" -c 'import json,sys; l=json.load(sys.stdin)[0]; print(l.get("xdp",{}).get("prog",{}).get("id",0))'
}
policy_field() {  # FIELD of the stats JSON's "policy" object
  xg stats --iface "$SRV_IF" --json 2>>"$E2E_WORK/xdpguard.log" |
    "$PY" -c 'import json,sys; print(json.load(sys.stdin)["policy"][sys.argv[1]])' "$1"
}
policy_is() { [[ $(policy_field name) == "$1" ]]; }

cat >"$E2E_WORK/sender.py" <<'EOF'
# Numbered datagrams at a steady rate until STOP exists; the count goes to OUT.
import os, socket, sys, time
dst, port, rate, stop, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, t0 = 0, time.monotonic()
while not os.path.exists(stop):
    s.sendto(n.to_bytes(8, "big") + b"x" * 56, (dst, port))
    n += 1
    delay = t0 + n / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
open(out + ".tmp", "w").write("%d\n" % n)
os.rename(out + ".tmp", out)
EOF
cat >"$E2E_WORK/receiver.py" <<'EOF'
# Counts distinct datagram numbers until DONE exists and nothing came for 1 s.
import os, socket, sys
port, done, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind(("0.0.0.0", port))
s.settimeout(1.0)
seen = set()
while True:
    try:
        seen.add(int.from_bytes(s.recv(2048)[:8], "big"))
    except socket.timeout:
        if os.path.exists(done):
            break
open(out, "w").write("%d %d\n" % (len(seen), max(seen) + 1 if seen else 0))
EOF

# stream_start NAME / stream_stop NAME: the numbered UDP stream to 5060;
# stream_stop sets SENT and RECEIVED.
stream_start() {
  rm -f "$E2E_WORK/$1".{stop,sent,recv}
  start_server "recv-$1" "$PY" "$E2E_WORK/receiver.py" 5060 "$E2E_WORK/$1.sent" "$E2E_WORK/$1.recv"
  wait_listen udp 5060
  start_peer "send-$1" "$PY" "$E2E_WORK/sender.py" "$SRV_IP4" 5060 "$RATE" \
    "$E2E_WORK/$1.stop" "$E2E_WORK/$1.sent"
}
stream_stop() {
  touch "$E2E_WORK/$1.stop"
  wait_until 10 test -s "$E2E_WORK/$1.sent" || fail "sender $1 did not finish"
  wait_until 10 test -s "$E2E_WORK/$1.recv" || fail "receiver $1 did not finish"
  SENT=$(cat "$E2E_WORK/$1.sent")
  read -r RECEIVED _ <"$E2E_WORK/$1.recv"
  log "stream $1: sent $SENT, received $RECEIVED"
}

# ---- reload under load ---------------------------------------------------------

phase "attach"
# Without CAP_BPF/CAP_SYS_ADMIN the probe must name the missing privilege,
# not a missing kernel feature, and attach nothing.
if in_srv setpriv --inh-caps=-all --bounding-set=-bpf,-sys_admin,-perfmon \
    "$XDPGUARD" attach --iface "$SRV_IF" --policy "$P_A" >"$E2E_WORK/nocap.out" 2>&1; then
  fail "attach without CAP_BPF succeeded"
fi
grep -q "missing privilege" "$E2E_WORK/nocap.out" || fail "attach without CAP_BPF: $(cat "$E2E_WORK/nocap.out")"
! grep -q "lacks" "$E2E_WORK/nocap.out" || fail "blamed the kernel: $(cat "$E2E_WORK/nocap.out")"
in_srv ip link show "$SRV_IF" | grep -q "prog/xdp" && fail "attach without CAP_BPF left XDP attached"
log "ok: without CAP_BPF, attach says: $(head -1 "$E2E_WORK/nocap.out")"
xg_attach --policy "$P_A"
start_closed_listeners
wait_quiet
stats_snapshot "$E2E_WORK/r0.json"

phase "reload under load"
stream_start load
sleep 1
ok=0 rejected=0
for ((i = 1; i <= RELOADS; i++)); do
  if ((i % 5 == 0)); then
    before=$(xdp_prog_id)
    if xg reload --iface "$SRV_IF" --policy "$P_BAD" >"$E2E_WORK/bad.out" 2>&1; then
      fail "reload $i with an invalid policy succeeded"
    fi
    grep -q "^$P_BAD:$BAD_LINE:[0-9]*: " "$E2E_WORK/bad.out" ||
      fail "reload $i: no $P_BAD:$BAD_LINE:col error in: $(cat "$E2E_WORK/bad.out")"
    [[ $(xdp_prog_id) == "$before" ]] || fail "reload $i: a rejected policy changed the program"
    ((rejected += 1))
  else
    policy=$P_A
    ((i % 2 == 0)) && policy=$P_B
    xg reload --iface "$SRV_IF" --policy "$policy" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
      fail "reload $i with $policy failed"
    ((ok += 1))
  fi
done
log "reloads: $ok applied, $rejected rejected"
sleep 1
stream_stop load
stats_snapshot "$E2E_WORK/r1.json"
((SENT > RATE)) || fail "the stream sent only $SENT datagrams"
((RECEIVED == SENT)) || fail "lost $((SENT - RECEIVED)) of $SENT datagrams during $RELOADS reloads"
expect_delta "$E2E_WORK/r0.json" "$E2E_WORK/r1.json" rule:sip-5060:pass_packets eq "$RECEIVED"
expect_delta "$E2E_WORK/r0.json" "$E2E_WORK/r1.json" rule:sip-5060:drop_packets eq 0
log "ok: $RELOADS reloads under load: $SENT sent, $RECEIVED received, counter carried over"
# Nothing is left behind by the reloads: two programs of ours, the pins as after attach.
[[ -z $(find "$E2E_PIN_DIR" -name 'next_*') ]] || fail "temporary pins left in $E2E_PIN_DIR"

# ---- the daemon ------------------------------------------------------------------

phase "run adopts"
# Bring the policy in force to a known one, then the daemon finds it in force.
xg reload --iface "$SRV_IF" --policy "$P_A" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "reload to a"
cp "$P_A" "$E2E_WORK/live.yaml"
id0=$(xdp_prog_id)
start_server daemon1 "$XDPGUARD" run --iface "$SRV_IF" --policy "$E2E_WORK/live.yaml"
daemon1=${E2E_PIDS[-1]}
wait_until 10 grep -q "adopted" "$E2E_WORK/daemon1.log" || fail "daemon did not adopt"
[[ $(xdp_prog_id) == "$id0" ]] || fail "adopting changed the program ($id0 -> $(xdp_prog_id))"

phase "run: SIGHUP"
cp "$P_B" "$E2E_WORK/live.yaml"
kill -HUP "$daemon1"
wait_until 10 policy_is lifecycle-b || fail "SIGHUP did not reload to lifecycle-b"
cp "$P_BAD" "$E2E_WORK/live.yaml"
kill -HUP "$daemon1"
wait_until 10 grep -q "live.yaml:$BAD_LINE:" "$E2E_WORK/daemon1.log" ||
  fail "SIGHUP with a bad policy logged no file:line error"
policy_is lifecycle-b || fail "a bad policy on SIGHUP changed the policy in force"
cp "$P_A" "$E2E_WORK/live.yaml"
kill -HUP "$daemon1"
wait_until 10 policy_is lifecycle-a || fail "SIGHUP did not reload back to lifecycle-a"
log "ok: SIGHUP reloads, a bad policy keeps the old one"

phase "SIGKILL under traffic"
stream_start kill
sleep 1
id1=$(xdp_prog_id)
kill -KILL "$daemon1"
wait "$daemon1" 2>/dev/null || true
sleep 0.5
[[ $(xdp_prog_id) == "$id1" ]] || fail "the program changed when the daemon died"
expect_fail "UDP 9999 stays blocked with the daemon dead" udp_delivered "$SRV_IP4" after-kill
start_server daemon2 "$XDPGUARD" run --iface "$SRV_IF" --policy "$E2E_WORK/live.yaml"
daemon2=${E2E_PIDS[-1]}
wait_until 10 grep -q "adopted" "$E2E_WORK/daemon2.log" || fail "the new daemon did not adopt"
[[ $(xdp_prog_id) == "$id1" ]] || fail "the new daemon replaced the program"
sleep 1
stream_stop kill
((RECEIVED == SENT)) || fail "lost $((SENT - RECEIVED)) of $SENT datagrams across SIGKILL + adopt"
log "ok: SIGKILL + adopt: program $id1 throughout, $SENT sent, $RECEIVED received"

phase "SIGTERM leaves the firewall attached"
kill -TERM "$daemon2"
rc=0
wait "$daemon2" || rc=$?
((rc == 0)) || fail "daemon exited $rc on SIGTERM"
[[ $(xdp_prog_id) == "$id1" ]] || fail "SIGTERM detached or replaced the program"
expect_fail "UDP 9999 blocked after SIGTERM" udp_delivered "$SRV_IP4" after-term

# ---- audit mode ---------------------------------------------------------------------

phase "audit mode"
xg reload --iface "$SRV_IF" --policy "$P_A" --audit >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload --audit failed"
[[ $(policy_field mode) == audit ]] || fail "stats JSON does not say mode audit"
xg stats --iface "$SRV_IF" | grep -q '^mode: audit' || fail "stats text has no 'mode: audit' line"
expect_ok "UDP 9999 delivered in audit mode" udp_delivered "$SRV_IP4" audit-$$
wait_quiet
stats_snapshot "$E2E_WORK/a0.json"
send_frames 25 udp "$CLI_IP4" "$SRV_IP4" 40000 9999
stats_snapshot "$E2E_WORK/a1.json"
expect_delta "$E2E_WORK/a0.json" "$E2E_WORK/a1.json" reason:no_rule:packets eq 25
xg reload --iface "$SRV_IF" --policy "$P_A" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "reload to enforce"
[[ $(policy_field mode) == enforce ]] || fail "stats JSON does not say mode enforce"
wait_quiet
stats_snapshot "$E2E_WORK/e0.json"
send_frames 25 udp "$CLI_IP4" "$SRV_IP4" 40000 9999
stats_snapshot "$E2E_WORK/e1.json"
expect_delta "$E2E_WORK/e0.json" "$E2E_WORK/e1.json" reason:no_rule:packets eq 25
expect_fail "UDP 9999 blocked again in enforce mode" udp_delivered "$SRV_IP4" enforce-$$
# The same through the policy's own settings block.
{ cat "$P_A"; printf 'settings:\n  mode: audit\n'; } >"$E2E_WORK/audit.yaml"
xg reload --iface "$SRV_IF" --policy "$E2E_WORK/audit.yaml" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload of a mode: audit policy failed"
[[ $(policy_field mode) == audit ]] || fail "settings mode: audit did not put audit in force"
expect_ok "UDP 9999 delivered under mode: audit" udp_delivered "$SRV_IP4" audit-setting-$$
xg reload --iface "$SRV_IF" --policy "$P_A" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "reload to a"

# ---- anti-lock-out -------------------------------------------------------------------

phase "anti-lock-out"
write_policy "$E2E_WORK/nossh.yaml" lifecycle-nossh ab none
write_policy "$E2E_WORK/narrow.yaml" lifecycle-narrow ab far-away
if xg reload --iface "$SRV_IF" --policy "$E2E_WORK/nossh.yaml" >"$E2E_WORK/lock.out" 2>&1; then
  fail "a policy without an SSH rule was applied"
fi
grep -q "no rule in force admits TCP to the SSH port 22" "$E2E_WORK/lock.out" ||
  fail "no reason given: $(cat "$E2E_WORK/lock.out")"
policy_is lifecycle-a || fail "a refused policy changed the policy in force"
if SSH_CONNECTION="$CLI_IP4 50022 $SRV_IP4 22" xg reload --iface "$SRV_IF" \
  --policy "$E2E_WORK/narrow.yaml" >"$E2E_WORK/lock.out" 2>&1; then
  fail "a policy dropping the operator's SSH session was applied"
fi
grep -q "drops your SSH session" "$E2E_WORK/lock.out" || fail "no reason given: $(cat "$E2E_WORK/lock.out")"
SSH_CONNECTION="192.0.2.5 50022 $SRV_IP4 22" xg reload --iface "$SRV_IF" \
  --policy "$E2E_WORK/narrow.yaml" >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "a session from inside the admin set was refused"
xg reload --iface "$SRV_IF" --policy "$E2E_WORK/nossh.yaml" --force >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "--force did not override"
policy_is lifecycle-nossh || fail "--force did not apply"
xg reload --iface "$SRV_IF" --policy "$P_A" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "reload to a"
log "ok: lock-out refused with a reason, --force overrides"

# ---- confirmed apply -------------------------------------------------------------------

phase "confirmed apply"
xg reload --iface "$SRV_IF" --policy "$P_B" --confirm 3 >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload --confirm failed"
policy_is lifecycle-b || fail "reload --confirm did not apply the new policy"
xg confirm --iface "$SRV_IF" >>"$E2E_WORK/xdpguard.log" 2>&1 || fail "confirm failed"
sleep 4
policy_is lifecycle-b || fail "a confirmed policy was rolled back"
log "ok: confirmed in time, kept"
xg reload --iface "$SRV_IF" --policy "$P_A" --confirm 3 >>"$E2E_WORK/xdpguard.log" 2>&1 ||
  fail "reload --confirm failed"
policy_is lifecycle-a || fail "reload --confirm did not apply the new policy"
wait_until 8 policy_is lifecycle-b || fail "no rollback to lifecycle-b without a confirm"
wait_until 3 test ! -e "$XDPGUARD_STATE_DIR"/*/pending || fail "pending marker left after rollback"
grep -q "rolled .* back" "$XDPGUARD_STATE_DIR"/*/watcher.log || fail "the watcher logged no rollback"
if xg confirm --iface "$SRV_IF" >/dev/null 2>&1; then fail "confirm after the rollback succeeded"; fi
log "ok: no confirm, rolled back to the previous policy"

phase "detach"
xg_detach
